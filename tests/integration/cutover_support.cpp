#include "tests/integration/cutover_support.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "proxy/migrate/cutover_db.hpp"
#include "proxy/migrate/names.hpp"

namespace pgshift::test {
namespace {

PgClusterOptions logical(const std::string& name) {
  PgClusterOptions o;
  o.name = name;
  o.settings = {{"wal_level", "logical"},
                {"max_replication_slots", "10"},
                {"max_wal_senders", "10"},
                {"max_connections", "200"},
                {"wal_receiver_status_interval", "1s"},
                // The launcher starts at most one apply worker per interval (default 5 s); a
                // switch creates a stream whose worker should not wait that long.
                {"wal_retrieve_retry_interval", "500ms"}};
  return o;
}

const std::string kSchema = R"sql(
CREATE TABLE ledger (id bigint PRIMARY KEY, writer text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, note text);
CREATE SEQUENCE standalone_seq;
)sql";

const std::vector<std::string> kTables = {"ledger",           "orders",          "pgbench_accounts",
                                          "pgbench_branches", "pgbench_history", "pgbench_tellers"};

void run_ok(const std::vector<std::string>& argv) {
  auto r = run_command(argv, std::chrono::seconds(120));
  if (!r.success()) throw std::runtime_error(r.describe());
}

// Drops a subscription even when its slot on the publisher is already gone.
void drop_subscription_hard(const PgCluster& subscriber, const std::string& name,
                            const PgCluster& publisher) {
  auto has = subscriber.exec("SELECT 1 FROM pg_subscription WHERE subname = '" + name + "'", kDb);
  if (has.size() > 0) {
    subscriber.exec("ALTER SUBSCRIPTION " + name + " DISABLE", kDb);
    subscriber.exec("ALTER SUBSCRIPTION " + name + " SET (slot_name = NONE)", kDb);
    subscriber.exec("DROP SUBSCRIPTION " + name, kDb);
  }
  publisher.exec(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
      " WHERE slot_name = '" +
      name + "' AND NOT active");
}

}  // namespace

CutoverServers::CutoverServers() : source(logical("source")), target(logical("target")) {
  for (PgCluster* c : {&source, &target}) {
    c->create_database(kDb);
    c->exec(kSchema, kDb);
    c->exec(std::string(migrate::kHeartbeatDdl), kDb);
  }
  run_ok({pg_tool("pgbench").string(), "-i", "-q", "-s", "1", libpq(source)});
  run_ok({pg_tool("pgbench").string(), "-i", "-q", "-I", "dtp", libpq(target)});
  // pgbench_history has no primary key: compared by whole rows, so that `pgshift verify`
  // can find the route equal (the verify precondition of cutover).
  for (PgCluster* c : {&source, &target}) {
    c->exec("ALTER TABLE pgbench_history REPLICA IDENTITY FULL", kDb);
  }
  reset();
}

std::string CutoverServers::libpq(const PgCluster& c) const {
  return c.conninfo({}, std::nullopt, kDb);
}

pgclient::ConnInfo CutoverServers::conninfo(const PgCluster& c) const {
  return app_conninfo(c);
}

migrate::SwitchEndpoints CutoverServers::endpoints() const {
  migrate::SwitchEndpoints e;
  e.source = conninfo(source);
  e.target = conninfo(target);
  e.source_as_seen_from_target = pgclient::to_conninfo_string(e.source);
  e.target_as_seen_from_source = pgclient::to_conninfo_string(e.target);
  return e;
}

void CutoverServers::reset() {
  drop_subscription_hard(source, "pgshift_app_rev", target);
  drop_subscription_hard(target, "pgshift_app", source);
  target.exec("DROP PUBLICATION IF EXISTS pgshift_app_rev", kDb);
  source.exec(
      "DROP PUBLICATION IF EXISTS pgshift_app;"
      "CREATE PUBLICATION pgshift_app FOR TABLE ledger, orders, pgbench_accounts,"
      " pgbench_branches, pgbench_history, pgbench_tellers, pgshift.heartbeat",
      kDb);
  for (PgCluster* c : {&source, &target}) {
    auto conn = pgclient::Connection::connect(conninfo(*c));
    migrate::unfence_tables(conn, migrate::fenced_tables(conn));
    c->exec("TRUNCATE ledger, orders, pgshift.heartbeat", kDb);
  }
  target.exec("TRUNCATE pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", kDb);
  target.exec("CREATE SUBSCRIPTION pgshift_app CONNECTION " +
                  pgclient::quote_literal(pgclient::to_conninfo_string(conninfo(source))) +
                  " PUBLICATION pgshift_app WITH (copy_data = true)",
              kDb);
  wait_stream_ready(target, "pgshift_app");
  wait_caught_up(source, target, "source");
}

CutoverServers& cutover_servers() {
  static CutoverServers* servers = new CutoverServers();  // lives until exit
  return *servers;
}

void wait_stream_ready(const PgCluster& subscriber, const std::string& name) {
  auto conn = pgclient::Connection::connect(app_conninfo(subscriber));
  migrate::SubscriptionHealth h;
  const bool ready = wait_until(
      [&] {
        h = migrate::subscription_health(conn, name);
        return h.exists && h.worker_running && h.tables > 0 && h.ready == h.tables;
      },
      std::chrono::seconds(60), "subscription " + name + " ready on " + subscriber.name());
  if (!ready) throw std::runtime_error("subscription " + name + " not ready");
}

void wait_caught_up(const PgCluster& from, const PgCluster& to, const std::string& origin) {
  auto f = pgclient::Connection::connect(app_conninfo(from));
  auto t = pgclient::Connection::connect(app_conninfo(to));
  const auto seq = migrate::write_marker(f, kRoute, origin);
  if (!migrate::wait_for_marker(t, kRoute, origin, seq, std::chrono::seconds(30))) {
    throw std::runtime_error("marker from " + from.name() + " never reached " + to.name());
  }
}

std::vector<std::string> table_fingerprints(const PgCluster& c) {
  std::vector<std::string> out;
  for (const auto& t : kTables) {
    auto r = c.exec(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' ORDER BY"
        " x::text)), '-') FROM " +
            t + " x",
        kDb);
    out.push_back(t + "=" + r.scalar());
  }
  return out;
}

pgclient::ConnInfo app_conninfo(const PgCluster& c) {
  pgclient::ConnInfo i;
  i.host = c.host();
  i.port = c.port();
  i.dbname = kDb;
  i.user = c.superuser();
  i.password = c.superuser_password();
  i.application_name = "pgshift-cutover-test";
  return i;
}

LedgerWriter::LedgerWriter(std::string conninfo, std::int64_t first_id, int per_second)
    : conninfo_(std::move(conninfo)),
      per_second_(per_second),
      next_(first_id),
      thread_([this] { loop(); }) {}

LedgerWriter::~LedgerWriter() {
  stop();
}

void LedgerWriter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::set<std::int64_t> LedgerWriter::acknowledged() const {
  std::lock_guard lock(mu_);
  return ids_;
}

std::vector<std::string> LedgerWriter::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

void LedgerWriter::loop() {
  std::optional<PgConnection> conn;
  auto next_at = std::chrono::steady_clock::now();
  while (!stop_) {
    if (per_second_ > 0) {
      next_at += std::chrono::microseconds(1'000'000 / per_second_);
      std::this_thread::sleep_until(next_at);
    }
    try {
      if (!conn) conn.emplace(conninfo_);
      const std::int64_t id = next_;
      conn->exec_params("INSERT INTO ledger (id, writer) VALUES ($1, 'ledger')",
                        {std::to_string(id)});
      ++next_;
      std::lock_guard lock(mu_);
      ids_.insert(id);
      ++acked_;
    } catch (const std::exception& e) {
      ++next_;  // the outcome of that id is unknown: never reuse it
      std::lock_guard lock(mu_);
      errors_.push_back(e.what());
      if (!conn || !conn->ok()) conn.reset();
    }
  }
}

std::set<std::int64_t> ledger_ids(const PgCluster& c) {
  std::set<std::int64_t> out;
  auto r = c.exec("SELECT id FROM ledger", kDb);
  for (const auto& row : r.rows) out.insert(std::stoll(*row[0]));
  return out;
}

std::vector<std::int64_t> missing_on(const PgCluster& c, const std::set<std::int64_t>& acked) {
  const auto have = ledger_ids(c);
  std::vector<std::int64_t> out;
  for (auto id : acked) {
    if (!have.contains(id) && out.size() < 5) out.push_back(id);
  }
  return out;
}

}  // namespace pgshift::test
