#pragma once
// The two implementations of control::Fleet (fleet.hpp):
//   PgFleet     a coordinator against the control database: any process with the config (a
//               sidecar's coordinator thread or a `pgshift` CLI command). The members are
//               the sidecars whose control thread follows pgshift.routes
//               (pg_member_barrier.cpp); the protocol is in docs/control-plane.md.
//   LocalFleet  a sidecar without a control database: the fleet is this process alone; the
//               hold is its pause gate, the commit a change of its state file.
//
// Thread-safety: as Fleet: blocking calls from one coordinator thread at a time per route;
// distinct routes may be driven from distinct threads.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"
#include "proxy/control/fleet.hpp"
#include "proxy/pgclient/connection.hpp"

namespace pgshift::proxy {
class PauseGate;
class RouteStateStore;
class StateStore;
}  // namespace pgshift::proxy

namespace pgshift::control {

class PgFleet : public Fleet {
 public:
  struct Options {
    pgclient::ConnInfo conn;
    std::chrono::milliseconds member_timeout{10000};
    std::chrono::milliseconds poll{1000};  // the members' poll (bounds how late they see us)
  };
  explicit PgFleet(Options options);
  // The control database of `cfg`; throws std::runtime_error in file mode.
  static std::unique_ptr<PgFleet> from_config(const config::Config& cfg);

  HoldResult hold(const HoldRequest& request) override;
  CommitResult commit(const std::string& route, const routing::StateChange& change) override;
  void abort(const std::string& route, std::string_view reason) override;

 private:
  struct Held {
    std::uint64_t op_epoch = 0;
    std::string actor;
  };
  pgclient::Connection& connection();
  HoldResult prepare(const HoldRequest& request);
  HoldResult await_acks(const HoldRequest& request, HoldResult held);

  Options opt_;
  std::mutex mu_;  // guards conn_ (one statement at a time) and held_
  pgclient::Connection conn_;
  bool connected_ = false;
  std::map<std::string, Held, std::less<>> held_;
};

class LocalFleet : public Fleet {
 public:
  LocalFleet(std::shared_ptr<proxy::RouteStateStore> store, std::shared_ptr<proxy::PauseGate> gate);

  HoldResult hold(const HoldRequest& request) override;
  CommitResult commit(const std::string& route, const routing::StateChange& change) override;
  void abort(const std::string& route, std::string_view reason) override;

 private:
  std::shared_ptr<proxy::RouteStateStore> store_;
  std::shared_ptr<proxy::PauseGate> gate_;
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> held_;  // route -> kind
};

// The Fleet of a coordinator inside a sidecar (Runtime::states and Runtime::pause): PgFleet
// on the control database of `cfg` when there is one, else LocalFleet on this sidecar's
// state file and pause gate. Throws std::runtime_error when neither applies.
std::unique_ptr<Fleet> make_fleet(const config::Config& cfg,
                                  const std::shared_ptr<proxy::StateStore>& states,
                                  const std::shared_ptr<proxy::PauseGate>& gate);

}  // namespace pgshift::control
