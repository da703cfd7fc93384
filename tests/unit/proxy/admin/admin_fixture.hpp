#pragma once
// An admin API server on 127.0.0.1:<ephemeral> over an in-memory configuration with two
// routes ("auth" with a target, "scores" without), running on its own thread, plus a
// blocking Beast client to talk to it. runtime().pools is an empty pool registry.
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "proxy/admin/server.hpp"
#include "proxy/runtime/runtime.hpp"
#include "tests/support/files.hpp"
#include "tests/support/temp_dir.hpp"

namespace pgshift::proxy::test {

using pgshift::test::read_file;
using pgshift::test::TempDir;
using pgshift::test::write_file;

inline constexpr const char* kToken = "s3cret-admin-token";

struct HttpReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  boost::json::value json() const;  // throws if not JSON
};

struct AdminOptions {
  bool with_health = false;       // start a HealthChecker (50 ms interval)
  std::uint16_t source_port = 1;  // where the routes' sources point (TCP health probe)
};

class AdminFixture {
 public:
  explicit AdminFixture(AdminOptions options = {});
  ~AdminFixture();

  std::uint16_t port() const { return admin_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  Runtime& runtime() { return *runtime_; }
  const std::string& state_file() const { return state_file_; }
  const std::string& token_file() const { return token_file_; }

  // One request on a fresh connection. `token` empty: no Authorization header.
  HttpReply request(boost::beast::http::verb method, const std::string& target,
                    const std::string& body = {}, const std::string& token = kToken,
                    const std::map<std::string, std::string>& headers = {});
  HttpReply get(const std::string& target, const std::string& token = kToken) {
    return request(boost::beast::http::verb::get, target, {}, token);
  }

 private:
  TempDir dir_{"pgshift-admin"};
  std::string state_file_;
  std::string token_file_;
  std::shared_ptr<Runtime> runtime_;
  asio::io_context ioc_{1};
  std::shared_ptr<AdminServer> admin_;
  std::thread thread_;
};

}  // namespace pgshift::proxy::test
