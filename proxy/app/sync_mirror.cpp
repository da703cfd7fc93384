#include "proxy/app/sync_mirror.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "proxy/ctl/cutover_cmd.hpp"
#include "proxy/ctl/http.hpp"
#include "proxy/migrate/schema_copy.hpp"

namespace pgshift::proxy {

namespace {

namespace json = boost::json;

struct AdminTarget {
  CtlUrl url;
  std::string token;
};

std::optional<AdminTarget> admin_target(const config::Config& cfg) {
  if (!cfg.admin.enabled) {
    std::cerr << "admin.enabled is false: sync.mode mirror is driven through the sidecar's "
                 "admin API; enable it\n";
    return std::nullopt;
  }
  std::string host = cfg.admin.host == "0.0.0.0" ? "127.0.0.1"
                     : cfg.admin.host == "::"    ? "::1"
                                                 : cfg.admin.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string error;
  auto url = parse_ctl_url("http://" + host + ":" + std::to_string(cfg.admin.port), error);
  if (!url) {
    std::cerr << "admin: " << error << "\n";
    return std::nullopt;
  }
  std::ifstream in(cfg.admin.token_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (!in || token.empty()) {
    std::cerr << "admin.token_file: cannot read a token from " << cfg.admin.token_file << "\n";
    return std::nullopt;
  }
  return AdminTarget{*url, token};
}

void print_mirror(const json::object& m, std::ostream& out) {
  auto num = [&](const char* k) {
    auto* v = m.if_contains(k);
    return v ? json::serialize(*v) : std::string("?");
  };
  out << "mirror: " << (m.contains("state") ? std::string(m.at("state").as_string()) : "?")
      << (m.contains("detail") ? " (" + std::string(m.at("detail").as_string()) + ")" : "") << "\n"
      << "  queued " << num("queued") << " transactions, " << num("queue_bytes") << " bytes (max "
      << num("max_queue_bytes") << ", overflow " << num("overflow") << ")\n"
      << "  applied " << num("applied") << ", divergences " << num("divergences") << ", lag "
      << num("lag_seconds") << " s\n";
  if (m.contains("last_divergence")) {
    out << "  last divergence: " << std::string(m.at("last_divergence").as_string()) << "\n"
        << "  journal: " << std::string(m.at("journal").as_string()) << "\n"
        << "  a route with divergences is not cut over until pgshift verify is clean again\n";
  }
  if (m.contains("mirroring") && !m.at("mirroring").as_bool()) {
    out << "  mirroring is STOPPED: run pgshift sync stop, then pgshift sync start (the target "
           "tables are copied afresh; empty them first)\n";
  }
}

int status(const AdminTarget& admin, const std::string& route, bool as_json) {
  auto r = ctl_http_request(admin.url, boost::beast::http::verb::get, "/v1/routes/" + route,
                            admin.token, "", std::chrono::milliseconds(5000));
  if (!r.transport_error.empty() || r.status != 200) {
    std::cerr << "cannot read route " << route << " from the sidecar at " << admin.url.text << ": "
              << (r.transport_error.empty() ? r.body : r.transport_error) << "\n";
    return 1;
  }
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  const json::value* mirror = ec || !v.is_object() ? nullptr : v.as_object().if_contains("sync");
  if (mirror && mirror->is_object()) mirror = mirror->as_object().if_contains("mirror");
  if (as_json) {
    std::cout << (mirror ? json::serialize(*mirror) : std::string("null")) << "\n";
    return 0;
  }
  const auto* phase = ec || !v.is_object() ? nullptr : v.as_object().if_contains("phase");
  std::cout << "route " << route << ": sync.mode mirror, phase "
            << (phase && phase->is_string() ? std::string(phase->as_string()) : "?") << "\n";
  if (mirror && mirror->is_object()) {
    print_mirror(mirror->as_object(), std::cout);
  } else {
    std::cout << "mirror: not running in this sidecar\n";
  }
  return 0;
}

}  // namespace

int sync_mirror_command(const config::Config& config, const migrate::SyncSides& sides,
                        const std::string& sub, bool copy_schema, bool json) {
  auto admin = admin_target(config);
  if (!admin) return 2;
  const std::string& route = sides.route->name;
  if (sub == "status") return status(*admin, route, json);
  std::unique_ptr<migrate::SchemaCopy> schema;
  if (sub == "start" && copy_schema) {
    pgclient::Connection src = pgclient::Connection::connect(sides.source);
    schema = std::make_unique<migrate::SchemaCopy>(sides, migrate::route_tables(src, *sides.route));
    std::cout << "copying the schema (pg_dump --schema-only, then psql on the target)\n";
    schema->before_copy();
  }
  CtlOperation op;
  op.kind = sub == "start" ? "mirror-start" : "mirror-stop";
  op.route = route;
  std::cout << (sub == "start" ? "starting" : "stopping") << " the mirror of route " << route
            << " through the sidecar at " << admin->url.text << "\n";
  const int rc = ctl_operation(admin->url, admin->token, std::chrono::milliseconds(10000), op,
                               std::cout, std::cerr);
  if (rc == 0 && schema) {
    std::cout << "finishing the schema (indexes, constraints, triggers)\n";
    schema->after_copy();
  }
  return rc;
}

}  // namespace pgshift::proxy
