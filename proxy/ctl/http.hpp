#pragma once
// The HTTP client of `pgshift ctl`: one blocking request per call, over plain HTTP/1.1 (the
// admin API listens on loopback; put TLS in front of it if it must leave the host). Blocks
// the calling thread; internally drives a private io_context so that every step (resolve,
// connect, write, read) has a deadline, which Beast only offers for asynchronous ops.
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgshift::proxy {

struct CtlUrl {
  std::string host;       // without brackets for IPv6
  std::string port;       // "9187"
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::string text;       // as given, for messages
};

// "http://host[:port][/prefix]"; host may be "[::1]". nullopt with `error` otherwise.
std::optional<CtlUrl> parse_ctl_url(std::string_view url, std::string& error);

struct CtlHttpResult {
  std::string transport_error;  // non-empty: no HTTP answer at all
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

CtlHttpResult ctl_http_request(const CtlUrl& url, boost::beast::http::verb method,
                               std::string_view path, const std::string& token,
                               const std::string& body, std::chrono::milliseconds timeout);

}  // namespace pgshift::proxy
