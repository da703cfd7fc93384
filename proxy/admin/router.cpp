#include "proxy/admin/router.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "proxy/admin/api.hpp"
#include "proxy/admin/auth.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

enum class Endpoint {
  healthz,
  readyz,
  metrics,
  routes,
  route,
  read_percent,
  cutover,  // POST, like rollback and finalize
  rollback,
  finalize,
  recover,
  mirror_start,  // POST: sync.mode mirror
  mirror_stop,
  operation,  // GET the latest of those
  pause,
  resume,
  pools,
  members,
  unknown,
  bad_path
};

struct Match {
  Endpoint endpoint = Endpoint::unknown;
  std::string name;  // {name}, decoded
};

// The metric label: the path template, never the raw path (bounded cardinality).
std::string_view label(Endpoint e) {
  switch (e) {
    case Endpoint::healthz:
      return "/healthz";
    case Endpoint::readyz:
      return "/readyz";
    case Endpoint::metrics:
      return "/metrics";
    case Endpoint::routes:
      return "/v1/routes";
    case Endpoint::route:
      return "/v1/routes/{name}";
    case Endpoint::read_percent:
      return "/v1/routes/{name}/read-percent";
    case Endpoint::cutover:
      return "/v1/routes/{name}/cutover";
    case Endpoint::rollback:
      return "/v1/routes/{name}/rollback";
    case Endpoint::finalize:
      return "/v1/routes/{name}/finalize";
    case Endpoint::recover:
      return "/v1/routes/{name}/recover";
    case Endpoint::mirror_start:
      return "/v1/routes/{name}/mirror-start";
    case Endpoint::mirror_stop:
      return "/v1/routes/{name}/mirror-stop";
    case Endpoint::operation:
      return "/v1/routes/{name}/operation";
    case Endpoint::pause:
      return "/v1/pause";
    case Endpoint::resume:
      return "/v1/resume";
    case Endpoint::pools:
      return "/v1/pools";
    case Endpoint::members:
      return "/v1/members";
    case Endpoint::unknown:
    case Endpoint::bad_path:
      return "other";
  }
  return "other";
}

std::vector<http::verb> allowed(Endpoint e) {
  switch (e) {
    case Endpoint::read_percent:
      return {http::verb::put};
    case Endpoint::cutover:
    case Endpoint::rollback:
    case Endpoint::finalize:
    case Endpoint::recover:
    case Endpoint::mirror_start:
    case Endpoint::mirror_stop:
      return {http::verb::post};
    case Endpoint::pause:
      return {http::verb::get, http::verb::post};
    case Endpoint::resume:
      return {http::verb::post};
    case Endpoint::unknown:
    case Endpoint::bad_path:
      return {};
    default:
      return {http::verb::get};
  }
}

Match match(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/healthz") return {Endpoint::healthz, {}};
  if (path == "/readyz") return {Endpoint::readyz, {}};
  if (path == "/metrics") return {Endpoint::metrics, {}};
  if (path == "/v1/routes") return {Endpoint::routes, {}};
  if (path == "/v1/pause") return {Endpoint::pause, {}};
  if (path == "/v1/resume") return {Endpoint::resume, {}};
  if (path == "/v1/pools") return {Endpoint::pools, {}};
  if (path == "/v1/members") return {Endpoint::members, {}};
  constexpr std::string_view kRoutes = "/v1/routes/";
  if (!path.starts_with(kRoutes)) return {};
  std::string_view rest = path.substr(kRoutes.size());
  Endpoint e = Endpoint::route;
  const auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    const auto sub = rest.substr(slash + 1);
    if (sub == "read-percent") {
      e = Endpoint::read_percent;
    } else if (sub == "cutover" || sub == "rollback" || sub == "finalize" || sub == "recover") {
      e = sub == "cutover"    ? Endpoint::cutover
          : sub == "rollback" ? Endpoint::rollback
          : sub == "finalize" ? Endpoint::finalize
                              : Endpoint::recover;
    } else if (sub == "mirror-start" || sub == "mirror-stop") {
      e = sub == "mirror-start" ? Endpoint::mirror_start : Endpoint::mirror_stop;
    } else if (sub == "operation") {
      e = Endpoint::operation;
    } else {
      return {};
    }
    rest = rest.substr(0, slash);
  }
  Match m{e, {}};
  if (rest.empty() || !url_decode(rest, m.name)) return {Endpoint::bad_path, {}};
  return m;
}

AdminResponse unauthorized(AdminAuth why) {
  auto res = error_response(
      http::status::unauthorized,
      why == AdminAuth::missing ? "missing bearer token (send Authorization: Bearer <token>)"
      : why == AdminAuth::not_configured ? "no admin token is configured (admin.token_file)"
                                         : "invalid bearer token");
  res.set(http::field::www_authenticate, why == AdminAuth::invalid
                                             ? R"(Bearer realm="pgshift", error="invalid_token")"
                                             : R"(Bearer realm="pgshift")");
  return res;
}

AdminResponse dispatch(const AdminCall& call, const Match& m) {
  const auto method = call.request.method();
  switch (m.endpoint) {
    case Endpoint::healthz:
      return handle_healthz(call);
    case Endpoint::readyz:
      return handle_readyz(call);
    case Endpoint::metrics:
      return handle_metrics(call);
    case Endpoint::routes:
      return handle_list_routes(call);
    case Endpoint::route:
      return handle_get_route(call, m.name);
    case Endpoint::read_percent:
      return handle_put_read_percent(call, m.name);
    case Endpoint::cutover:
      return handle_route_operation(call, m.name, "cutover");
    case Endpoint::rollback:
      return handle_route_operation(call, m.name, "rollback");
    case Endpoint::finalize:
      return handle_route_operation(call, m.name, "finalize");
    case Endpoint::recover:
      return handle_route_operation(call, m.name, "recover");
    case Endpoint::mirror_start:
      return handle_route_operation(call, m.name, "mirror-start");
    case Endpoint::mirror_stop:
      return handle_route_operation(call, m.name, "mirror-stop");
    case Endpoint::operation:
      return handle_get_operation(call, m.name);
    case Endpoint::pause:
      return method == http::verb::post ? handle_pause(call) : handle_get_pause(call);
    case Endpoint::resume:
      return handle_resume(call);
    case Endpoint::pools:
      return handle_list_pools(call);
    case Endpoint::members:
      return handle_list_members(call);
    case Endpoint::bad_path:
      return error_response(http::status::bad_request, "malformed route name in the path");
    case Endpoint::unknown:
      break;
  }
  return error_response(http::status::not_found, "no such endpoint");
}

// The token's id for the audit trail: a short hash prefix, never the token.
std::string token_id(const std::string* token) {
  if (!token || token->empty()) return "none";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token->data()), token->size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// Authentication and method checks; a response when the request stops here.
std::optional<AdminResponse> precheck(Runtime& runtime, const AdminRequest& req, const Match& m,
                                      std::string& actor, const std::string& peer) {
  if (m.endpoint != Endpoint::healthz) {
    const auto snap = runtime.snapshot();
    const std::string* token = snap ? snap->admin_token.get() : nullptr;
    const auto auth = check_bearer(req[http::field::authorization], token);
    if (auth != AdminAuth::ok) return unauthorized(auth);
    actor = "admin:" + token_id(token) + "@" + peer.substr(0, peer.rfind(':'));
  }
  const auto verbs = allowed(m.endpoint);
  if (!verbs.empty() && std::find(verbs.begin(), verbs.end(), req.method()) == verbs.end()) {
    std::string allow;
    for (auto v : verbs) allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(v));
    auto res = error_response(http::status::method_not_allowed,
                              "method " + std::string(req.method_string()) + " not allowed on " +
                                  std::string(label(m.endpoint)) + " (allowed: " + allow + ")");
    res.set(http::field::allow, allow);
    return res;
  }
  return std::nullopt;
}

AdminResponse route_request(Runtime& runtime, const AdminRequest& req, const std::string& peer,
                            const Match& m) {
  std::string actor;
  if (auto res = precheck(runtime, req, m, actor, peer)) return std::move(*res);
  return dispatch(AdminCall{runtime, req, peer, actor}, m);
}

AdminResponse internal_error(const Match& m, const std::exception& e) {
  // A bug, not a client error: say so without details that could leak internals.
  log_error("admin request failed", {f("endpoint", label(m.endpoint)), f("error", e.what())});
  metrics().errors(ErrorKind::internal).Increment();
  return error_response(http::status::internal_server_error, "internal error; see the pgshift log");
}

}  // namespace

AdminResponse handle_admin_request(Runtime& runtime, const AdminRequest& req,
                                   const std::string& peer) {
  const Match m = match(req.target());
  AdminResponse res;
  try {
    res = route_request(runtime, req, peer, m);
  } catch (const std::exception& e) {
    res = internal_error(m, e);
  }
  metrics().admin_requests(label(m.endpoint), res.result_int()).Increment();
  return res;
}

asio::awaitable<AdminResponse> handle_admin_request_async(Runtime& runtime, const AdminRequest& req,
                                                          const std::string& peer) {
  const Match m = match(req.target());
  if (m.endpoint != Endpoint::read_percent) co_return handle_admin_request(runtime, req, peer);
  AdminResponse res;
  std::string actor;
  std::optional<AdminResponse> early;
  try {
    early = precheck(runtime, req, m, actor, peer);
  } catch (const std::exception& e) {
    early = internal_error(m, e);
  }
  if (early) {
    res = std::move(*early);
  } else {
    // Named, not temporaries: GCC 12 may destroy a temporary of a co_await expression twice.
    AdminCall call{runtime, req, peer, actor};
    std::string name = m.name;
    try {
      res = co_await handle_put_read_percent_async(call, std::move(name));
    } catch (const std::exception& e) {
      res = internal_error(m, e);
    }
  }
  metrics().admin_requests(label(m.endpoint), res.result_int()).Increment();
  co_return res;
}

}  // namespace pgshift::proxy
