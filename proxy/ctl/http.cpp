#include "proxy/ctl/http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace pgshift::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> exchange(const CtlUrl& url, http::request<http::string_body> req,
                               std::chrono::milliseconds timeout, CtlHttpResult& out) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, use_tuple);
  if (rec) {
    out.transport_error = "cannot resolve " + url.host + ": " + rec.message();
    co_return;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
  if (cec) {
    out.transport_error = "cannot connect to " + url.text + ": " + cec.message();
    co_return;
  }
  stream.expires_after(timeout);
  auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
  if (wec) {
    out.transport_error = "cannot send the request to " + url.text + ": " + wec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);  // /metrics of a large fleet
  stream.expires_after(timeout);
  auto [rdec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
  if (rdec) {
    out.transport_error = "no valid answer from " + url.text + ": " + rdec.message();
    co_return;
  }
  const auto& res = parser.get();
  out.status = res.result_int();
  out.content_type = std::string(res[http::field::content_type]);
  out.body = res.body();
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

std::optional<CtlUrl> parse_ctl_url(std::string_view url, std::string& error) {
  CtlUrl u;
  u.text = std::string(url);
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    error = "--url must start with http:// (got \"" + std::string(url) + "\")";
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    u.base_path = std::string(path);
  }
  std::string_view port = "9187";
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "--url: unterminated IPv6 address in \"" + std::string(url) + "\"";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (authority.starts_with(':'))
      port = authority.substr(1);
    else if (!authority.empty())
      u.host.clear();
  } else {
    const auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  const bool port_ok = !port.empty() && port.size() <= 5 &&
                       port.find_first_not_of("0123456789") == std::string_view::npos &&
                       std::stoul(std::string(port)) <= 65535;
  if (u.host.empty() || !port_ok) {
    error = "--url: expected http://HOST[:PORT] (got \"" + std::string(url) + "\")";
    return std::nullopt;
  }
  u.port = std::string(port);
  return u;
}

CtlHttpResult ctl_http_request(const CtlUrl& url, http::verb method, std::string_view path,
                               const std::string& token, const std::string& body,
                               std::chrono::milliseconds timeout) {
  http::request<http::string_body> req(method, url.base_path + std::string(path), 11);
  req.set(http::field::host, url.host.find(':') != std::string::npos
                                 ? "[" + url.host + "]:" + url.port
                                 : url.host + ":" + url.port);
  req.set(http::field::user_agent, "pgshift-ctl");
  req.set(http::field::accept, "application/json");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(false);
  req.prepare_payload();
  CtlHttpResult out;
  asio::io_context ioc(1);
  asio::co_spawn(ioc, exchange(url, std::move(req), timeout, out), [&out](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.transport_error = ex.what();
    }
  });
  ioc.run();
  return out;
}

}  // namespace pgshift::proxy
