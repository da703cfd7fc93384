#include "proxy/admin/router.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "proxy/admin/api.hpp"
#include "proxy/admin/auth.hpp"
#include "proxy/api/endpoints.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

using api::Endpoint;

// The metric label: the path template, never the raw path (bounded cardinality).
std::string_view label(const api::Match& m) {
  return m.pattern.empty() ? std::string_view("other") : m.pattern;
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

AdminResponse dispatch(const AdminCall& call, const api::Match& m) {
  if (m.kind == api::Match::Kind::bad_name) {
    return error_response(http::status::bad_request, "malformed route name in the path");
  }
  if (m.kind != api::Match::Kind::found) {
    return error_response(http::status::not_found, "no such endpoint");
  }
  switch (m.spec->endpoint) {
    case Endpoint::healthz:
      return handle_healthz(call);
    case Endpoint::readyz:
      return handle_readyz(call);
    case Endpoint::metrics:
      return handle_metrics(call);
    case Endpoint::list_routes:
      return handle_list_routes(call);
    case Endpoint::get_route:
      return handle_get_route(call, m.name);
    case Endpoint::put_read_percent:
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
    case Endpoint::get_operation:
      return handle_get_operation(call, m.name);
    case Endpoint::get_pause:
      return handle_get_pause(call);
    case Endpoint::pause:
      return handle_pause(call);
    case Endpoint::resume:
      return handle_resume(call);
    case Endpoint::list_pools:
      return handle_list_pools(call);
    case Endpoint::list_members:
      return handle_list_members(call);
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
std::optional<AdminResponse> precheck(Runtime& runtime, const AdminRequest& req,
                                      const api::Match& m, std::string& actor,
                                      const std::string& peer) {
  if (!m.open) {
    const auto snap = runtime.snapshot();
    const std::string* token = snap ? snap->admin_token.get() : nullptr;
    const auto auth = check_bearer(req[http::field::authorization], token);
    if (auth != AdminAuth::ok) return unauthorized(auth);
    actor = "admin:" + token_id(token) + "@" + peer.substr(0, peer.rfind(':'));
  }
  if (m.kind == api::Match::Kind::method_not_allowed) {
    std::string allow;
    for (auto v : m.allowed) {
      allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(v));
    }
    auto res = error_response(http::status::method_not_allowed,
                              "method " + std::string(req.method_string()) + " not allowed on " +
                                  std::string(m.pattern) + " (allowed: " + allow + ")");
    res.set(http::field::allow, allow);
    return res;
  }
  return std::nullopt;
}

AdminResponse route_request(Runtime& runtime, const AdminRequest& req, const std::string& peer,
                            const api::Match& m) {
  std::string actor;
  if (auto res = precheck(runtime, req, m, actor, peer)) return std::move(*res);
  return dispatch(AdminCall{runtime, req, peer, actor}, m);
}

AdminResponse internal_error(const api::Match& m, const std::exception& e) {
  // A bug, not a client error: say so without details that could leak internals.
  log_error("admin request failed", {f("endpoint", label(m)), f("error", e.what())});
  metrics().errors(ErrorKind::internal).Increment();
  return error_response(http::status::internal_server_error, "internal error; see the pgshift log");
}

}  // namespace

AdminResponse handle_admin_request(Runtime& runtime, const AdminRequest& req,
                                   const std::string& peer) {
  const api::Match m = api::match(req.method(), req.target());
  AdminResponse res;
  try {
    res = route_request(runtime, req, peer, m);
  } catch (const std::exception& e) {
    res = internal_error(m, e);
  }
  metrics().admin_requests(label(m), res.result_int()).Increment();
  return res;
}

asio::awaitable<AdminResponse> handle_admin_request_async(Runtime& runtime, const AdminRequest& req,
                                                          const std::string& peer) {
  const api::Match m = api::match(req.method(), req.target());
  if (m.spec == nullptr || m.spec->endpoint != Endpoint::put_read_percent)
    co_return handle_admin_request(runtime, req, peer);
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
  metrics().admin_requests(label(m), res.result_int()).Increment();
  co_return res;
}

}  // namespace pgshift::proxy
