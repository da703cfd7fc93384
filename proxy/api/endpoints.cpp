// The endpoint table of endpoints.hpp and the path matching built on it.
#include "proxy/api/endpoints.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace pgshift::proxy::api {
namespace {

using boost::beast::http::verb;

constexpr std::array kEndpoints{
    EndpointSpec{Endpoint::healthz, verb::get, "/healthz", Scope::open},
    EndpointSpec{Endpoint::readyz, verb::get, "/readyz", Scope::read},
    EndpointSpec{Endpoint::metrics, verb::get, "/metrics", Scope::read},
    EndpointSpec{Endpoint::list_routes, verb::get, "/v1/routes", Scope::read},
    EndpointSpec{Endpoint::get_route, verb::get, "/v1/routes/{name}", Scope::read},
    EndpointSpec{Endpoint::put_read_percent, verb::put, "/v1/routes/{name}/read-percent",
                 Scope::operate},
    EndpointSpec{Endpoint::cutover, verb::post, "/v1/routes/{name}/cutover", Scope::operate},
    EndpointSpec{Endpoint::rollback, verb::post, "/v1/routes/{name}/rollback", Scope::operate},
    EndpointSpec{Endpoint::finalize, verb::post, "/v1/routes/{name}/finalize", Scope::operate},
    EndpointSpec{Endpoint::recover, verb::post, "/v1/routes/{name}/recover", Scope::operate},
    EndpointSpec{Endpoint::mirror_start, verb::post, "/v1/routes/{name}/mirror-start",
                 Scope::operate},
    EndpointSpec{Endpoint::mirror_stop, verb::post, "/v1/routes/{name}/mirror-stop",
                 Scope::operate},
    EndpointSpec{Endpoint::get_operation, verb::get, "/v1/routes/{name}/operation", Scope::read},
    EndpointSpec{Endpoint::get_pause, verb::get, "/v1/pause", Scope::read},
    EndpointSpec{Endpoint::pause, verb::post, "/v1/pause", Scope::operate},
    EndpointSpec{Endpoint::resume, verb::post, "/v1/resume", Scope::operate},
    EndpointSpec{Endpoint::list_pools, verb::get, "/v1/pools", Scope::read},
    EndpointSpec{Endpoint::list_members, verb::get, "/v1/members", Scope::read},
};

constexpr std::string_view kName = "{name}";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Does `path` fit `pattern`? The raw {name} segment goes to `raw_name`.
bool fits(std::string_view pattern, std::string_view path, std::string_view& raw_name) {
  const auto at = pattern.find(kName);
  if (at == std::string_view::npos) return pattern == path;
  const auto prefix = pattern.substr(0, at);
  const auto suffix = pattern.substr(at + kName.size());
  if (!path.starts_with(prefix) || !path.ends_with(suffix) ||
      path.size() < prefix.size() + suffix.size()) {
    return false;
  }
  raw_name = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  return raw_name.find('/') == std::string_view::npos;
}

}  // namespace

std::string_view to_string(Scope s) {
  switch (s) {
    case Scope::open:
      return "open";
    case Scope::read:
      return "read";
    case Scope::operate:
      return "operate";
  }
  return "?";
}

std::span<const EndpointSpec> endpoints() {
  return kEndpoints;
}

const EndpointSpec& spec(Endpoint e) {
  return kEndpoints[static_cast<std::size_t>(e)];
}

std::string encode_path_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool decode_path_segment(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

std::string path(Endpoint e, std::string_view name) {
  std::string out(spec(e).pattern);
  if (const auto at = out.find(kName); at != std::string::npos) {
    out.replace(at, kName.size(), encode_path_segment(name));
  }
  return out;
}

Match match(verb method, std::string_view target) {
  std::string_view p = target.substr(0, target.find('?'));
  if (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  Match m;
  std::string_view raw_name;
  bool has_name = false;
  for (const EndpointSpec& s : kEndpoints) {
    std::string_view raw;
    if (!fits(s.pattern, p, raw)) continue;
    // Patterns that fit one path put {name} at the same place: one raw name per path.
    has_name = s.pattern.find(kName) != std::string_view::npos;
    raw_name = raw;
    m.pattern = s.pattern;
    m.open = m.open || s.scope == Scope::open;
    m.allowed.push_back(s.method);
    if (s.method == method && m.spec == nullptr) m.spec = &s;
  }
  if (m.pattern.empty()) return m;
  if (has_name && (raw_name.empty() || !decode_path_segment(raw_name, m.name))) {
    Match bad;
    bad.kind = Match::Kind::bad_name;
    return bad;
  }
  m.kind = m.spec ? Match::Kind::found : Match::Kind::method_not_allowed;
  return m;
}

}  // namespace pgshift::proxy::api
