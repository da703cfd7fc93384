#pragma once
// Who a client is (ClientIdentity: user, database, forwarded startup parameters,
// credentials for passthrough upstream logins) and the parameters every server it is handed
// is brought to (pool::tracked_parameters). Most clients of an application have the same
// values, so once a session is logged in its profile is interned: the sessions of one thread
// with equal values share one read-only object instead of each carrying a copy (an idle
// client is mostly its session object, docs/benchmarks.md "Memory per idle client").
// Not thread-safe: intern() uses a per-thread table; a shared profile is never modified.
#include <memory>

#include "pool/server_params.hpp"
#include "proxy/runtime/route_select.hpp"

namespace pgshift::proxy {

struct ClientProfile {
  ClientIdentity identity;
  pool::StartupParams tracked;  // pool::tracked_parameters(identity.startup_params)

  // The calling thread's profile equal to `built`, or `built` itself (then remembered, for
  // as long as a session holds it). `built` must not be modified afterwards.
  static std::shared_ptr<ClientProfile> intern(std::shared_ptr<ClientProfile> built);
};

}  // namespace pgshift::proxy
