#include "tests/unit/proxy/admin/admin_fixture.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <cctype>

#include "pool/pool_shared.hpp"
#include "proxy/control/health_checker.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"

namespace pgshift::proxy::test {
namespace {

namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

config::Upstream upstream(std::uint16_t port, const std::string& database) {
  config::Upstream u;
  u.host = "127.0.0.1";
  u.port = port;
  u.database = database;
  u.passthrough = true;  // no credentials of its own: the health probe is a TCP connect
  u.connect_timeout = std::chrono::milliseconds(2000);
  return u;
}

std::shared_ptr<const config::Config> make_config(const AdminOptions& o, const std::string& state) {
  auto cfg = std::make_shared<config::Config>();
  config::Route auth;
  auth.name = "auth";
  auth.client_database = "user_management_db";
  auth.source = upstream(o.source_port, "user_management_db");
  auth.target = upstream(o.source_port, "auth_db");
  config::Route scores;
  scores.name = "scores";
  scores.client_database = "scores_db";
  scores.source = upstream(o.source_port, "scores_db");
  cfg->routes = {auth, scores};
  cfg->state_file = state;
  cfg->admin.port = 0;
  return cfg;
}

}  // namespace

boost::json::value HttpReply::json() const {
  return boost::json::parse(body);
}

AdminFixture::AdminFixture(AdminOptions options) {
  state_file_ = (dir_ / "state.json").string();
  token_file_ = (dir_ / "token").string();
  write_file(token_file_, std::string(kToken) + "\n");
  auto cfg = make_config(options, state_file_);
  auto snap = std::make_shared<Snapshot>();
  snap->config = cfg;
  for (const auto& r : cfg->routes)
    snap->routes.push_back(
        RouteRuntime{&r, nullptr, nullptr, nullptr, nullptr, std::make_shared<ClientSlots>()});
  snap->admin_token = std::make_shared<const std::string>(kToken);
  runtime_ = std::make_shared<Runtime>(snap);
  runtime_->states = std::make_shared<RouteStateStore>(state_file_);
  runtime_->states->load(*cfg);
  runtime_->pause = std::make_shared<PauseGate>();
  runtime_->pools = std::make_shared<pool::PoolRegistry>();  // empty: tests add pool keys
  if (options.with_health) {
    runtime_->health = std::make_shared<HealthChecker>(
        *runtime_, ioc_.get_executor(), HealthChecker::Options{std::chrono::milliseconds(50)});
    runtime_->health->start();
  }
  admin_ = std::make_shared<AdminServer>(*runtime_, ioc_.get_executor());
  admin_->start("127.0.0.1", 0);
  thread_ = std::thread([this]() {
    auto guard = asio::make_work_guard(ioc_);
    ioc_.run();
  });
}

AdminFixture::~AdminFixture() {
  ioc_.stop();
  thread_.join();
  runtime_->health.reset();
}

HttpReply AdminFixture::request(http::verb method, const std::string& target,
                                const std::string& body, const std::string& token,
                                const std::map<std::string, std::string>& headers) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
  http::request<http::string_body> req(method, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(false);
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  http::read(socket, buffer, parser);
  HttpReply reply;
  reply.status = parser.get().result_int();
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  reply.body = parser.get().body();
  return reply;
}

}  // namespace pgshift::proxy::test
