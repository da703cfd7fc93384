#pragma once
// The admin API's endpoints, declared once: method, path pattern and scope of every request
// the admin server answers (proxy/admin/router.cpp dispatches on it) and `pgshift ctl`
// sends (proxy/ctl builds its paths from it). docs/admin-api.md documents each row (a unit
// test checks that). Depends on nothing but Beast's verb enum, so the ctl client may include
// it without any server code. Pure, immutable data; thread-safe.
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <optional>
#include <ostream>  // before Beast: boost/core/detail/string_view.hpp needs it complete
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::proxy::api {

enum class Endpoint : std::uint8_t {
  healthz,
  readyz,
  metrics,
  list_routes,
  get_route,
  put_read_percent,
  cutover,  // POST, like rollback, finalize, recover and mirror_*: start a fleet operation
  rollback,
  finalize,
  recover,
  mirror_start,  // POST: sync.mode mirror (docs/sync.md), also a fleet operation
  mirror_stop,
  get_operation,  // the latest of those
  get_pause,
  pause,
  resume,
  list_pools,
  list_members,
};

enum class Scope : std::uint8_t {
  open,     // no bearer token (liveness probes)
  read,     // bearer token; changes nothing
  operate,  // bearer token; changes state (audited with the caller's token id)
};
std::string_view to_string(Scope s);

struct EndpointSpec {
  Endpoint endpoint;
  boost::beast::http::verb method;
  std::string_view pattern;  // "/v1/routes/{name}/cutover": also the metric label
  Scope scope;
};

// Every endpoint, one row each, in Endpoint order.
std::span<const EndpointSpec> endpoints();
const EndpointSpec& spec(Endpoint e);

// The request path of `e`, with {name} replaced by `name` percent-encoded (anything but
// unreserved characters).
std::string path(Endpoint e, std::string_view name = {});
std::string encode_path_segment(std::string_view s);
// %XX decoding of one path segment; false on a malformed escape.
bool decode_path_segment(std::string_view in, std::string& out);

// What a request target (path and query) is, for the router.
struct Match {
  enum class Kind : std::uint8_t {
    found,               // spec and name are set
    method_not_allowed,  // the path exists; `allowed` lists its methods
    bad_name,            // a {name} segment is empty or malformed
    not_found,
  };
  Kind kind = Kind::not_found;
  const EndpointSpec* spec = nullptr;
  std::string name;  // {name}, decoded
  std::vector<boost::beast::http::verb> allowed;
  std::string_view pattern;  // the matching pattern ("" when none): the metric label
  bool open = false;         // the path is one of an open-scope endpoint (no token needed)
};
// The query string and one trailing '/' are ignored.
Match match(boost::beast::http::verb method, std::string_view target);

}  // namespace pgshift::proxy::api
