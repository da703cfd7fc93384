#include "tests/integration/split_routing_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "routing/split.hpp"

namespace pgshift::test {

namespace {

using namespace std::chrono_literals;

const auto* const split_env = SharedEnvironment<SplitServers>::install();

// One HTTP request; prints the status on the first line, then the body. Non-2xx answers are
// answers too (urllib raises HTTPError for them); no answer at all exits non-zero.
constexpr const char* kHttpScript = R"(import sys, urllib.request, urllib.error
method, url, auth, body = sys.argv[1:5]
headers = {"Content-Type": "application/json"}
if auth:
    headers["Authorization"] = auth
data = body.encode() if method in ("PUT", "POST") else None
req = urllib.request.Request(url, data=data, method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, text = r.status, r.read()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read()
sys.stdout.write(str(status) + "\n" + text.decode())
)";

std::int64_t scalar_int(const PgCluster& cluster, const std::string& sql) {
  return std::stoll(cluster.exec(sql).scalar());
}

}  // namespace

SplitServers::SplitServers() {
  for (PgCluster* cluster : {&source, &target}) {
    cluster->create_role("app", "app-pw");
    cluster->exec("CREATE TABLE marker (side text NOT NULL)");
    cluster->exec("INSERT INTO marker VALUES ('" + cluster->name() + "')");
    cluster->exec("CREATE SEQUENCE marker_reads");
    cluster->exec(
        "CREATE VIEW counted_marker AS SELECT side, nextval('marker_reads') AS n FROM marker");
    cluster->exec("CREATE TABLE events (k text NOT NULL, n int NOT NULL DEFAULT 0)");
    cluster->exec(
        "GRANT SELECT ON marker, counted_marker TO app; "
        "GRANT UPDATE ON marker TO app; "  // SELECT ... FOR SHARE needs it
        "GRANT USAGE ON SEQUENCE marker_reads TO app; GRANT ALL ON events TO app");
  }
}

void SplitServers::reset() {
  if (!target.running()) target.start();  // a failed outage test may have left it stopped
  for (PgCluster* cluster : {&source, &target}) {
    cluster->exec("TRUNCATE events; ALTER SEQUENCE marker_reads RESTART");
  }
}

SplitServers& split_servers() {
  return SharedEnvironment<SplitServers>::get();
}

PgshiftOptions split_proxy_options(const SplitProxyOptions& options) {
  ConfigSpec spec;
  spec.client_auth_method = options.client_auth;
  RouteSpec route{.name = "main",
                  .client_database = "postgres",
                  .source = upstream_of(split_servers().source, "app", "postgres"),
                  .target = upstream_of(split_servers().target, "app", "postgres")};
  route.extra_yaml = "read_split:\n  read_your_writes_window_ms: " +
                     std::to_string(options.read_your_writes_window_ms) + "\n";
  spec.routes.push_back(route);
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})};
}

std::string client_conninfo(const PgshiftProcess& proxy, const std::string& extra) {
  return proxy.conninfo("app", "app-pw", "postgres", extra);
}

std::string HttpResponse::describe() const {
  return "HTTP " + std::to_string(status) + " " + body + (error.empty() ? "" : "\n" + error);
}

HttpResponse admin_request_with_auth(const PgshiftProcess& proxy, const std::string& authorization,
                                     const std::string& method, const std::string& path,
                                     const std::string& body) {
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.admin_port()) + path;
  const CommandResult r = run_command(
      {system_python().string(), "-c", kHttpScript, method, url, authorization, body}, 20s);
  HttpResponse out;
  if (!r.success()) {
    out.error = r.describe();
    return out;
  }
  const auto newline = r.out.find('\n');
  out.status = std::stoi(r.out.substr(0, newline));
  out.body = newline == std::string::npos ? "" : r.out.substr(newline + 1);
  return out;
}

HttpResponse admin_request(const PgshiftProcess& proxy, const std::string& method,
                           const std::string& path, const std::string& body) {
  return admin_request_with_auth(proxy, "Bearer " + proxy.admin_token(), method, path, body);
}

bool set_read_percent(const PgshiftProcess& proxy, const std::string& percent) {
  const HttpResponse r = admin_request(proxy, "PUT", "/v1/routes/main/read-percent",
                                       R"({"percent": )" + percent + "}");
  EXPECT_EQ(r.status, 200) << "setting the read percent to " << percent << ": " << r.describe();
  return r.status == 200;
}

boost::json::value route_view(const PgshiftProcess& proxy) {
  const HttpResponse r = admin_request(proxy, "GET", "/v1/routes/main");
  if (r.status != 200) return nullptr;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  return ec ? boost::json::value(nullptr) : v;
}

std::string target_health(const PgshiftProcess& proxy) {
  const boost::json::value v = route_view(proxy);
  const auto* status = v.is_object() ? v.as_object().if_contains("target") : nullptr;
  if (status == nullptr || !status->is_object()) return "";
  status = status->as_object().if_contains("health");
  if (status == nullptr || !status->is_object()) return "";
  status = status->as_object().if_contains("status");
  if (status == nullptr || !status->is_string()) return "";
  return std::string(status->as_string());
}

bool wait_target_healthy(const PgshiftProcess& proxy) {
  return wait_until([&] { return target_health(proxy) == "healthy"; }, 10s,
                    "the health checker to report the target healthy");
}

double metric_sum(const std::string& text, const std::string& name,
                  const std::vector<std::string>& labels) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;  // another metric with this name as prefix
    const std::string series = line.substr(0, line.rfind(' '));
    bool match = true;
    for (const std::string& label : labels)
      match = match && series.find(label) != std::string::npos;
    if (match) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string expected_side(std::string_view key, std::uint32_t percent_bp) {
  return routing::bucket(key) < percent_bp ? "target" : "source";
}

std::string key_in_buckets(const std::string& prefix, std::uint32_t low, std::uint32_t high) {
  for (int n = 1;; ++n) {
    std::string key = prefix + std::to_string(n);
    const std::uint32_t b = routing::bucket(key);
    if (b >= low && b < high) return key;
  }
}

std::string side_of(PgConnection& conn, const std::string& key) {
  return conn.scalar("SELECT side FROM marker" +
                     (key.empty() ? std::string() : " /* user_id='" + key + "' */"));
}

SideCounts counted_reads() {
  const std::string sql = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM marker_reads";
  return {scalar_int(split_servers().source, sql), scalar_int(split_servers().target, sql)};
}

std::int64_t events_on(const PgCluster& cluster, const std::string& where) {
  return scalar_int(cluster, "SELECT count(*) FROM events WHERE " + where);
}

}  // namespace pgshift::test
