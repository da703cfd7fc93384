#pragma once
// A small builder for the common pgshift config: listen on {{port}}, admin on {{admin_port}},
// users file auth, and routes to upstream clusters. For anything else, write the YAML in the
// test (keys mirror config/config.hpp in snake_case, durations as <name>_ms) or append it
// with extra_yaml. The output uses PgshiftProcess placeholders.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgshift::test {

class PgCluster;

struct UpstreamSpec {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5432;
  std::string database{};  // empty: omitted (the client's database name)
  std::string user{};      // fixed credentials (service account) unless passthrough
  std::string password{};
  bool passthrough = false;  // credentials: passthrough (client's user, users-file password)
  std::string tls_mode = "disable";  // disable | require | verify-ca | verify-full
  std::string ca_file{};
  std::string server_name{};
  int connect_timeout_ms = 0;  // 0: omitted
};

// Upstream pointing at a test cluster, with user (default: its superuser) and the password
// the cluster knows for it.
UpstreamSpec upstream_of(const PgCluster& cluster, const std::string& user = {},
                         const std::string& database = {});

struct RouteSpec {
  std::string name = "main";
  std::string client_database = "*";
  UpstreamSpec source{};
  std::optional<UpstreamSpec> target{};
  std::string pool_mode = "session";  // session | transaction
  int pool_size = 0;                  // 0: omitted
  std::string extra_yaml{};  // more keys of this route, e.g. "pool: {...}" (indented for you)
};

struct ConfigSpec {
  std::vector<RouteSpec> routes{};
  std::string client_auth_method = "scram-sha-256";  // scram-sha-256 | md5 | trust
  std::string client_tls_mode = "disable";           // disable | allow | require
  std::string client_cert_file{};
  std::string client_key_file{};
  int shutdown_timeout_ms = 5000;
  std::string log_level = "info";
  bool admin_enabled = true;
  // control: as written ("file", "target", or a flow mapping such as "{poll_ms: 250}");
  // empty: omitted (pgshift's default: the control plane in the first target's database
  // when it has a user and a database). "file" keeps tests that are not about the fleet
  // independent of each other's state in a shared target cluster.
  std::string control = "file";
  std::string extra_yaml{};  // appended verbatim at top level

  std::string to_yaml() const;
};

// Double-quoted YAML scalar.
std::string yaml_quote(const std::string& value);

}  // namespace pgshift::test
