#include "proxy/migrate/sync_common.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

extern char** environ;

namespace pgshift::migrate {

namespace {

pgclient::ConnInfo side_info(const config::Route& r, const config::Upstream& u,
                             const std::string& where) {
  if (u.passthrough || u.user.empty()) {
    throw UsageError("route " + r.name + ": " + where +
                     " uses passthrough credentials; sync and verify need a fixed user and "
                     "password: set routes[]." +
                     where + ".user and its password");
  }
  std::string db = u.database;
  if (db.empty() && r.client_database != "*") db = r.client_database;
  if (db.empty()) {
    throw UsageError("route " + r.name + ": " + where +
                     ".database is empty and client_database is \"*\"; set " + where +
                     ".database to the database to sync");
  }
  auto info = pgclient::conninfo_for(u, db);
  info.application_name = "pgshift-sync";
  // The commands print what they did themselves; PostgreSQL's NOTICEs ("created replication
  // slot ...") would only repeat it on stderr.
  info.options = "-c client_min_messages=warning";
  return info;
}

}  // namespace

SyncSides sync_sides(const config::Config& config, const std::string& route_name) {
  const config::Route* r = config.find_route(route_name);
  if (!r) {
    std::string names;
    for (const auto& x : config.routes) names += (names.empty() ? "" : ", ") + x.name;
    throw UsageError("no route named '" + route_name + "' in the configuration (routes: " + names +
                     ")");
  }
  if (!r->target) {
    throw UsageError("route " + r->name + " has no target; add routes[].target to sync it");
  }
  SyncSides s;
  s.route = r;
  s.source = side_info(*r, r->source, "source");
  s.target = side_info(*r, *r->target, "target");
  s.publisher = s.source;
  if (!r->sync.publisher_host.empty()) s.publisher.host = r->sync.publisher_host;
  if (r->sync.publisher_port != 0) s.publisher.port = r->sync.publisher_port;
  s.publisher.application_name = subscription_name(r->name, Direction::forward);
  // The subscription connects from the target server, which has no copy of pgshift's CA
  // file: it encrypts (sslmode=require) but cannot verify the source's certificate.
  s.publisher.sslrootcert.clear();
  s.publisher.options.clear();
  if (s.publisher.sslmode == "verify-ca" || s.publisher.sslmode == "verify-full") {
    s.publisher.sslmode = "require";
  }
  s.publication = publication_name(r->name, Direction::forward);
  s.subscription = subscription_name(r->name, Direction::forward);
  return s;
}

std::string TableRef::qualified() const {
  return pgclient::quote_ident(schema) + "." + pgclient::quote_ident(name);
}
std::string TableRef::display() const {
  return schema + "." + name;
}

std::string user_table_condition() {
  return "c.relkind IN ('r','p') AND NOT c.relispartition AND c.relpersistence = 'p' AND "
         "n.nspname NOT IN ('pgshift','pg_catalog','information_schema') AND "
         "n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";
}

std::vector<TableRef> route_tables(pgclient::Connection& conn, const config::Route& route) {
  std::vector<TableRef> out;
  if (route.sync.tables.empty()) {
    auto res = conn.exec(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE " +
        user_table_condition() + " ORDER BY 1, 2");
    for (int i = 0; i < res.rows(); ++i) {
      out.push_back({std::string(res.get(i, 0)), std::string(res.get(i, 1))});
    }
    return out;
  }
  for (const auto& t : route.sync.tables) {
    TableRef ref;
    auto dot = t.find('.');
    ref.schema = dot == std::string::npos ? "public" : t.substr(0, dot);
    ref.name = dot == std::string::npos ? t : t.substr(dot + 1);
    auto res = conn.exec(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')",
        {ref.schema, ref.name});
    if (res.rows() == 0) {
      throw UsageError("routes[].sync.tables: table " + ref.display() + " does not exist on " +
                       pgclient::describe(conn.info()) + "; fix the name or create it");
    }
    out.push_back(ref);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::ok:
      return "ok";
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::blocker:
      return "BLOCKER";
  }
  return "?";
}

void print_finding(std::ostream& out, const Finding& f) {
  out << to_string(f.severity) << " [" << f.side << "] " << f.text;
  if (!f.fix.empty()) out << " -- fix: " << f.fix;
  out << "\n";
}

bool stdout_is_tty() {
  return ::isatty(STDOUT_FILENO) == 1;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

int run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& stdout_file) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!stdout_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc) +
                             " (is it installed and in PATH?)");
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed for " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace pgshift::migrate
