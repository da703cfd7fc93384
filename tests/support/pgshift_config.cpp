#include "pgshift_config.hpp"

#include <cstdio>
#include <sstream>

#include "pg_cluster.hpp"

namespace pgshift::test {

namespace {

void emit_upstream(std::ostringstream& out, const std::string& key, const UpstreamSpec& u) {
  out << "    " << key << ":\n";
  out << "      host: " << yaml_quote(u.host) << "\n";
  out << "      port: " << u.port << "\n";
  if (!u.database.empty()) out << "      database: " << yaml_quote(u.database) << "\n";
  if (u.passthrough) {
    out << "      credentials: passthrough\n";
  } else {
    if (!u.user.empty()) out << "      user: " << yaml_quote(u.user) << "\n";
    if (!u.password.empty()) out << "      password: " << yaml_quote(u.password) << "\n";
  }
  if (u.connect_timeout_ms > 0) out << "      connect_timeout_ms: " << u.connect_timeout_ms << "\n";
  out << "      tls:\n";
  out << "        mode: " << u.tls_mode << "\n";
  if (!u.ca_file.empty()) out << "        ca_file: " << yaml_quote(u.ca_file) << "\n";
  if (!u.server_name.empty()) out << "        server_name: " << yaml_quote(u.server_name) << "\n";
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  std::string out;
  while (std::getline(in, line)) out += (line.empty() ? "" : prefix) + line + "\n";
  return out;
}

}  // namespace

std::string yaml_quote(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned char>(c));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

UpstreamSpec upstream_of(const PgCluster& cluster, const std::string& user,
                         const std::string& database) {
  UpstreamSpec u;
  u.host = cluster.host();
  u.port = cluster.port();
  u.user = user.empty() ? cluster.superuser() : user;
  u.password = cluster.password_of(u.user);
  u.database = database;
  return u;
}

std::string ConfigSpec::to_yaml() const {
  std::ostringstream out;
  out << "listen:\n";
  out << "  host: \"{{host}}\"\n";
  out << "  port: {{port}}\n";
  out << "  tls:\n";
  out << "    mode: " << client_tls_mode << "\n";
  if (!client_cert_file.empty()) out << "    cert_file: " << yaml_quote(client_cert_file) << "\n";
  if (!client_key_file.empty()) out << "    key_file: " << yaml_quote(client_key_file) << "\n";
  out << "admin:\n";
  out << "  enabled: " << (admin_enabled ? "true" : "false") << "\n";
  out << "  host: \"127.0.0.1\"\n";
  out << "  port: {{admin_port}}\n";
  out << "  token_file: \"{{admin_token_file}}\"\n";
  out << "client_auth:\n";
  out << "  method: " << client_auth_method << "\n";
  out << "  users_file: \"{{users_file}}\"\n";
  out << "shutdown_timeout_ms: " << shutdown_timeout_ms << "\n";
  out << "state_file: \"{{dir}}/pgshift-state.json\"\n";
  if (!control.empty()) out << "control: " << control << "\n";
  out << "log_level: " << log_level << "\n";
  out << "routes:\n";
  for (const RouteSpec& route : routes) {
    out << "  - name: " << yaml_quote(route.name) << "\n";
    out << "    client_database: " << yaml_quote(route.client_database) << "\n";
    emit_upstream(out, "source", route.source);
    if (route.target) emit_upstream(out, "target", *route.target);
    out << "    pool:\n";
    out << "      mode: " << route.pool_mode << "\n";
    if (route.pool_size > 0) out << "      size: " << route.pool_size << "\n";
    if (!route.extra_yaml.empty()) out << indent(route.extra_yaml, "    ");
  }
  if (!extra_yaml.empty()) out << extra_yaml << (extra_yaml.back() == '\n' ? "" : "\n");
  return out.str();
}

}  // namespace pgshift::test
