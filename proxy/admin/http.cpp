#include "proxy/admin/http.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace pgshift::proxy {
namespace {

void write_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      return;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return;
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";  // JSON has no NaN or infinity
        return;
      }
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 2);
      out.append(buf, ec == std::errc{} ? end : buf);
      return;
    }
    case json::kind::string:
      out += json::serialize(v.get_string());
      return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, e] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(key));
        out += ':';
        write_json(out, e);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string admin_json_text(const json::value& v) {
  std::string out;
  write_json(out, v);
  return out;
}

AdminResponse json_response(http::status status, const json::value& body) {
  AdminResponse res(status, 11);
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = admin_json_text(body) + "\n";
  res.prepare_payload();
  return res;
}

AdminResponse error_response(http::status status, std::string_view message) {
  json::object o;
  o["error"] = message;
  return json_response(status, o);
}

json::value iso8601_utc(std::int64_t unix_ms) {
  if (unix_ms <= 0) return nullptr;
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return json::string(std::string(buf, n) + ms);
}

}  // namespace pgshift::proxy
