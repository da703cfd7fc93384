// POST /v1/pause, POST /v1/resume, GET /v1/pause.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "proxy/admin/api.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/control/pause_gate.hpp"

namespace pgshift::proxy {
namespace {

json::object status_view(const PauseGate::Status& s) {
  json::object o;
  o["paused"] = s.paused;
  o["remaining_ms"] = s.paused ? json::value(s.remaining.count()) : json::value(nullptr);
  o["waiting"] = s.waiting;
  o["pause_id"] = s.pause_id;
  return o;
}

// Optional body {"timeout_ms": N}; empty body -> the default.
std::optional<std::chrono::milliseconds> parse_timeout(std::string_view body, std::string& error) {
  const auto max_ms = PauseGate::kMaxTimeout.count();
  auto is_blank = [](std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
  };
  if (is_blank(body)) return PauseGate::kDefaultTimeout;
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) {
    error = std::string(ec ? "request body is not valid JSON (" + ec.message() + "); "
                           : "request body must be a JSON object; ") +
            R"(expected nothing or {"timeout_ms": 30000})";
    return std::nullopt;
  }
  for (const auto& [key, value] : v.get_object()) {
    if (key != "timeout_ms") {
      error = "unknown member \"" + std::string(key) + R"("; expected {"timeout_ms": 30000})";
      return std::nullopt;
    }
  }
  const json::value* t = v.get_object().if_contains("timeout_ms");
  if (t == nullptr) return PauseGate::kDefaultTimeout;
  // Boost.JSON keeps integers that fit as int64; uint64 means "above INT64_MAX".
  const std::int64_t ms = t->is_int64() ? t->get_int64() : t->is_uint64() ? max_ms + 1 : -1;
  if (ms < 1 || ms > max_ms) {
    error = "\"timeout_ms\" must be an integer between 1 and " + std::to_string(max_ms) + " (got " +
            json::serialize(*t) + ")";
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

AdminResponse gate_missing() {
  return error_response(http::status::service_unavailable, "the pause gate is not available");
}

}  // namespace

AdminResponse handle_pause(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  std::string error;
  const auto timeout = parse_timeout(call.request.body(), error);
  if (!timeout) return error_response(http::status::bad_request, error);
  const bool was_paused = call.runtime.pause->status().paused;
  const auto s = call.runtime.pause->pause(*timeout);
  log_info("audit: new transactions paused",
           {f("audit", "pause"), f("who", call.peer), f("old", was_paused ? "paused" : "running"),
            f("new", "paused"), f("timeout_ms", timeout->count()), f("pause_id", s.pause_id)});
  return json_response(http::status::ok, status_view(s));
}

AdminResponse handle_resume(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  const auto before = call.runtime.pause->resume();
  log_info("audit: transactions resumed", {f("audit", "resume"), f("who", call.peer),
                                           f("old", before.paused ? "paused" : "running"),
                                           f("new", "running"), f("released", before.waiting)});
  auto o = status_view(call.runtime.pause->status());
  o["was_paused"] = before.paused;
  o["released"] = before.paused ? before.waiting : std::size_t{0};
  return json_response(http::status::ok, o);
}

AdminResponse handle_get_pause(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  return json_response(http::status::ok, status_view(call.runtime.pause->status()));
}

}  // namespace pgshift::proxy
