#pragma once
// The fleet of one sidecar without a control database (DESIGN.md §7): control::Fleet on the
// sidecar's own pause gate and route state store. It stands in until the PostgreSQL control
// plane (issue 10) provides the fleet-wide one.
//
//   hold    pauses new transactions (the process-wide pause gate, so every route of this
//           sidecar waits; they are released at commit or abort, or by the pause's own
//           deadline);
//   commit  applies the change (the state file is written with fsync before it is published)
//           and releases the held transactions onto the new state;
//   abort   releases them unchanged.
// Same contract as control::LocalFleet of the control plane (which holds per route and
// drains the route's open transactions); this one goes when that one is merged.
//
// Thread-safety: every member may be called from any thread; one operation at a time.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/control/fleet.hpp"

namespace pgshift::proxy {
class RouteStateStore;
class PauseGate;
}  // namespace pgshift::proxy

namespace pgshift::migrate {

class SidecarFleet : public control::Fleet {
 public:
  SidecarFleet(std::shared_ptr<proxy::RouteStateStore> states,
               std::shared_ptr<proxy::PauseGate> pause);
  control::HoldResult hold(const control::HoldRequest& request) override;
  control::CommitResult commit(const std::string& route,
                               const routing::StateChange& change) override;
  void abort(const std::string& route, std::string_view reason) override;

 private:
  std::shared_ptr<proxy::RouteStateStore> states_;
  std::shared_ptr<proxy::PauseGate> pause_;
  std::mutex mu_;
  std::string held_route_, held_kind_;  // empty: nothing held
  std::uint64_t held_pause_id_ = 0;     // the pause of the hold (PauseGate::Status::pause_id)
};

}  // namespace pgshift::migrate
