#pragma once
// Runs cutover, rollback and finalize for the sidecar's admin API (proxy/runtime/
// operations.hpp): each operation on a thread of its own (blocking libpq, never an I/O
// thread), its steps published as they end so that `pgshift ctl cutover` can print them live.
// One operation at a time per sidecar (the fleet's hold refuses a second one anyway).
//
// Thread-safety: every member may be called from any thread. The destructor joins the
// running operation's thread (it ends by itself: every step has a deadline).
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "proxy/control/fleet.hpp"
#include "proxy/migrate/cutover_coordinator.hpp"
#include "proxy/runtime/operations.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::migrate {

class CutoverRunner : public proxy::RouteOperations {
 public:
  CutoverRunner(proxy::Runtime& runtime, std::shared_ptr<control::Fleet> fleet);
  ~CutoverRunner() override;
  proxy::OperationStarted start(const proxy::OperationRequest& request) override;
  std::optional<boost::json::object> status(std::string_view route) const override;

  // The endpoints of a route from the config (database: upstream.database, else the route's
  // client_database); nullopt with `error` when the route cannot be switched.
  static std::optional<SwitchEndpoints> endpoints_of(const config::Route& route,
                                                     std::string& error);

 private:
  void run(proxy::OperationRequest request, SwitchKind kind, SwitchEndpoints endpoints,
           SwitchOptions options, routing::MigrationState current);
  SwitchOptions::Mirror mirror_options(const config::Route& route) const;

  proxy::Runtime& runtime_;
  std::shared_ptr<control::Fleet> fleet_;
  mutable std::mutex mu_;
  std::map<std::string, boost::json::object, std::less<>> latest_;  // by route
  bool running_ = false;
  std::uint64_t next_id_ = 1;
  std::thread thread_;
};

// The JSON of an outcome (also the final status of an operation).
boost::json::object to_json(const SwitchOutcome& out);
boost::json::object to_json(const StepRecord& step);

}  // namespace pgshift::migrate
