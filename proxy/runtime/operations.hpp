#pragma once
// Long migration operations of a route (cutover, rollback, finalize) as the admin API sees
// them: start one, read its progress. The implementation lives in proxy/migrate/
// (cutover_runner.hpp) and is set in Runtime::operations by the app; the admin API only knows
// this interface, so it does not depend on the migration engine.
//
// Thread-safety: every member may be called from any thread; start() returns at once (the
// operation runs on a thread of its own, never on an I/O thread).
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgshift::proxy {

struct OperationRequest {
  std::string route;
  std::string kind;  // "cutover", "rollback", "finalize", "recover"
  bool dry_run = false;
  bool skip_verify = false;
  std::optional<std::int64_t> max_lag_ms, drain_timeout_ms;
  std::string actor;  // the audit's "who"
};

struct OperationStarted {
  unsigned status = 202;  // 202 started; 404 unknown route; 409 busy or not possible
  std::string error;
  boost::json::object operation;  // the status right after the start (when 202)
};

class RouteOperations {
 public:
  virtual ~RouteOperations() = default;
  virtual OperationStarted start(const OperationRequest& request) = 0;
  // The route's latest operation: {"id", "route", "kind", "state": "running" | "completed" |
  // "refused" | "aborted" | "dry_run", "steps": [{"name", "status", "duration_ms",
  // "detail"}], "summary", "error", "databases"}; nullopt when none has run.
  virtual std::optional<boost::json::object> status(std::string_view route) const = 0;
};

}  // namespace pgshift::proxy
