#include "proxy/migrate/verify.hpp"

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace pgshift::migrate {

namespace {

using pgclient::Connection;
using pgclient::quote_ident;
namespace json = boost::json;

constexpr const char* kSessionOptions =
    "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 "
    "-c bytea_output=hex -c statement_timeout=0 -c client_min_messages=warning";

// How one table is hashed: the same SQL text runs on both sides.
struct TablePlan {
  TableRef table;
  std::string key_expr;  // text of the key
  std::string row_expr;  // text of the row (source's column order)
  long buckets = 1;
  double est_rows = 0;
  std::string skip;  // why the table cannot be verified ("" = it can)
};

struct Bucket {
  long long rows = 0;
  std::string sum;  // numeric sum as text (exact)
  bool operator==(const Bucket&) const = default;
};
using Buckets = std::map<long, Bucket>;

Connection connect_side(pgclient::ConnInfo info) {
  info.options = kSessionOptions;
  info.application_name = "pgshift-verify";
  return Connection::connect(info);
}

TablePlan plan_table(Connection& src, const TableRef& t, long chunk_rows) {
  TablePlan p;
  p.table = t;
  auto cols = src.exec(
      "SELECT a.attname, COALESCE(a.attnum = ANY(i.indkey), false), "
      " GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0), c.relreplident "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
      "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
      "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
      {t.schema, t.name});
  std::string row, key;
  int key_cols = 0;
  for (int i = 0; i < cols.rows(); ++i) {
    const std::string col = "t." + quote_ident(cols.get(i, 0));
    row += (row.empty() ? "" : ", ") + col;
    if (cols.get(i, 1) == "t") {
      key += (key.empty() ? "" : ", ") + col;
      ++key_cols;
    }
  }
  if (cols.rows() == 0) {
    p.skip = "table not found on the source";
    return p;
  }
  p.est_rows = std::stod(std::string(cols.get(0, 2)));
  if (p.est_rows < 1) {
    // Never analyzed and no statistics yet: count once, or every row would land in one
    // bucket (and the drill-down would have to read the whole table).
    p.est_rows =
        std::stod(std::string(src.exec("SELECT count(*) FROM " + t.qualified()).get(0, 0)));
  }
  if (key_cols == 0) {
    if (cols.get(0, 3) != "f") {
      p.skip = "no primary key (add one, or REPLICA IDENTITY FULL to compare whole rows)";
      return p;
    }
    key = row;  // REPLICA IDENTITY FULL: the whole row is the key
    key_cols = 2;
  }
  p.row_expr = "ROW(" + row + ")::text";
  p.key_expr = key_cols == 1 ? "(" + key + ")::text" : "ROW(" + key + ")::text";
  p.buckets = std::max<long>(1, static_cast<long>(std::ceil(p.est_rows / chunk_rows)));
  return p;
}

std::string bucket_expr(const TablePlan& p) {
  return "abs(hashtext(" + p.key_expr + ")::bigint) % " + std::to_string(p.buckets);
}

std::string in_list(const std::set<long>& buckets) {
  std::string s;
  for (long b : buckets) s += (s.empty() ? "" : ",") + std::to_string(b);
  return s;
}

// Per-bucket counts and sums of one table on one side; `only` restricts to some buckets.
Buckets hash_table(Connection& c, const TablePlan& p, const std::set<long>* only) {
  std::string sql = "SELECT b, count(*), sum(h)::text FROM (SELECT " + bucket_expr(p) +
                    " AS b, ('x' || substr(md5(" + p.row_expr +
                    "), 1, 16))::bit(64)::bigint AS h FROM " + p.table.qualified() + " t) s ";
  if (only) sql += "WHERE b IN (" + in_list(*only) + ") ";
  sql += "GROUP BY b";
  auto r = c.exec(sql);
  Buckets out;
  for (int i = 0; i < r.rows(); ++i) {
    out[std::stol(std::string(r.get(i, 0)))] =
        Bucket{std::stoll(std::string(r.get(i, 1))), std::string(r.get(i, 2))};
  }
  return out;
}

std::set<long> differing(const Buckets& a, const Buckets& b) {
  std::set<long> out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !(it->second == v)) out.insert(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) out.insert(k);
  }
  return out;
}

long long total_rows(const Buckets& b) {
  long long n = 0;
  for (const auto& [k, v] : b) n += v.rows;
  return n;
}

// Writes a lag marker on the source (after its snapshot was taken) and waits, bounded, until
// the target has applied it. False when there is no marker table or it did not arrive.
bool wait_target_applied_marker(const SyncSides& sides, Connection& src_auto, Connection& tgt,
                                std::chrono::seconds bound) {
  try {
    // Without a live subscription nothing will arrive: compare at once.
    auto sub = tgt.exec("SELECT 1 FROM pg_subscription WHERE subname = $1 AND subenabled",
                        {sides.subscription});
    if (sub.rows() == 0) return false;
    auto r = src_auto.exec(
        "INSERT INTO pgshift.heartbeat (route, origin, seq, origin_time) VALUES ($1, 'source', "
        "1, now()) ON CONFLICT (route, origin) DO UPDATE SET seq = pgshift.heartbeat.seq + 1, "
        "origin_time = now() RETURNING seq",
        {sides.route->name});
    const long long seq = std::stoll(std::string(r.get(0, 0)));
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = tgt.exec("SELECT seq FROM pgshift.heartbeat WHERE route = $1 AND origin = 'source'",
                        {sides.route->name});
      if (t.rows() > 0 && std::stoll(std::string(t.get(0, 0))) >= seq) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const pgclient::Error&) {
  }
  return false;
}

struct Verifier {
  Verifier(const SyncSides& s, const VerifyOptions& o) : sides(s), opt(o) {}
  const SyncSides& sides;
  const VerifyOptions& opt;
  std::vector<TablePlan> plans;
  std::atomic<double> source_rows_done{0};

  // One pass: source snapshot, marker, target snapshot, both sides hashed in parallel.
  // `only` (per table): buckets to compare again; null: every bucket of every table.
  std::pair<std::map<std::string, Buckets>, std::map<std::string, Buckets>> pass(
      const std::map<std::string, std::set<long>>* only) {
    Connection src = connect_side(sides.source), tgt = connect_side(sides.target);
    Connection src_auto = connect_side(sides.source);
    src.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    src.exec("SELECT 1");  // the snapshot is taken here
    wait_target_applied_marker(sides, src_auto, tgt, std::chrono::seconds(30));
    tgt.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    tgt.exec("SELECT 1");
    auto run = [&](Connection& c, bool is_source) {
      std::map<std::string, Buckets> res;
      for (const auto& p : plans) {
        if (!p.skip.empty()) continue;
        const std::set<long>* o = nullptr;
        if (only) {
          auto it = only->find(p.table.display());
          if (it == only->end()) continue;
          o = &it->second;
        }
        res[p.table.display()] = hash_table(c, p, o);
        if (is_source) source_rows_done = source_rows_done + std::max(1.0, p.est_rows);
      }
      c.exec("COMMIT");
      return res;
    };
    auto fut_t = std::async(std::launch::async, [&] { return run(tgt, false); });
    std::map<std::string, Buckets> s;
    std::exception_ptr err;
    try {
      s = run(src, true);
    } catch (...) {
      err = std::current_exception();
    }
    auto t = fut_t.get();  // rethrows the target's error
    if (err) std::rethrow_exception(err);
    return {std::move(s), std::move(t)};
  }
};

// Keys and row hashes of the rows of some buckets, for the drill-down.
std::map<std::string, std::string> key_hashes(Connection& c, const TablePlan& p,
                                              const std::set<long>& buckets, long limit) {
  // Ordered by a hash of the key, not the key: both sides order alike whatever their
  // collations, so a limit cuts both at (nearly) the same key.
  auto r = c.exec("SELECT " + p.key_expr + ", md5(" + p.row_expr + ") FROM " + p.table.qualified() +
                  " t WHERE " + bucket_expr(p) + " IN (" + in_list(buckets) + ") ORDER BY md5(" +
                  p.key_expr + ") LIMIT " + std::to_string(limit));
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i) out[std::string(r.get(i, 0))] = std::string(r.get(i, 1));
  return out;
}

// Runs the first pass with progress lines (rows of the source done, rows/s, ETA).
std::pair<std::map<std::string, Buckets>, std::map<std::string, Buckets>> first_pass(
    Verifier& v, bool tty, bool quiet, std::ostream& out) {
  double est_total = 0;
  for (const auto& p : v.plans) est_total += std::max(1.0, p.est_rows);
  const auto start = std::chrono::steady_clock::now();
  auto fut = std::async(std::launch::async, [&] { return v.pass(nullptr); });
  while (fut.wait_for(std::chrono::milliseconds(tty ? 250 : 2000)) != std::future_status::ready) {
    if (quiet) continue;
    const double done = v.source_rows_done.load();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = secs > 0 ? done / secs : 0;
    char line[160];
    std::snprintf(line, sizeof line, "verify: %.0f/%.0f rows, %.0f rows/s, ETA %s", done, est_total,
                  rate, format_duration(rate > 0 ? (est_total - done) / rate : -1).c_str());
    out << (tty ? "\r" : "") << line << (tty ? "   " : "\n") << std::flush;
  }
  if (tty) out << "\n";
  return fut.get();
}

// Differing keys of one table's differing buckets, read from both sides.
struct KeyDiff {
  json::array missing, extra, changed;
};
KeyDiff drill_down(Connection& src, Connection& tgt, const TablePlan& p,
                   const std::set<long>& buckets, long max_diffs) {
  constexpr long kRowLimit = 100000;  // per side; a whole differing table is not fetched
  auto sk = key_hashes(src, p, buckets, kRowLimit);
  auto tk = key_hashes(tgt, p, buckets, kRowLimit);
  KeyDiff d;
  auto add = [&](json::array& a, const std::string& k) {
    if (static_cast<long>(a.size()) < max_diffs) a.emplace_back(k);
  };
  for (const auto& [k, h] : sk) {
    auto f = tk.find(k);
    if (f == tk.end()) {
      add(d.missing, k);
    } else if (f->second != h) {
      add(d.changed, k);
    }
  }
  for (const auto& [k, h] : tk) {
    if (!sk.count(k)) add(d.extra, k);
  }
  return d;
}

// --- per-key settle ------------------------------------------------------------------
// Under continuous writes every bucket that new writes touch differs again on each pass,
// so after the bucket passes the differing keys themselves are compared at one position:
// the authoritative side's rows of those keys read now, then a lag marker, then the other
// side's rows once it has applied the marker. A key the stream had not carried yet matches
// on a later round; one that still differs after every round is a real difference.

constexpr long kSettleLimit = 100000;  // differing rows per side: above it, no settle
constexpr int kSettleRounds = 5;

// Every key of some buckets whose row is on one side only or differs; nullopt when a side
// has more than kSettleLimit rows in them (the set would be incomplete).
std::optional<std::set<std::string>> differing_keys(Connection& src, Connection& tgt,
                                                    const TablePlan& p,
                                                    const std::set<long>& buckets) {
  auto sk = key_hashes(src, p, buckets, kSettleLimit + 1);
  auto tk = key_hashes(tgt, p, buckets, kSettleLimit + 1);
  if (static_cast<long>(sk.size()) > kSettleLimit || static_cast<long>(tk.size()) > kSettleLimit) {
    return std::nullopt;
  }
  std::set<std::string> keys;
  for (const auto& [k, h] : sk) {
    auto f = tk.find(k);
    if (f == tk.end() || f->second != h) keys.insert(k);
  }
  for (const auto& [k, h] : tk) {
    if (!sk.count(k)) keys.insert(k);
  }
  return keys;
}

// The row hashes of `keys` on one side, read now.
std::map<std::string, std::string> rows_of(Connection& c, const TablePlan& p,
                                           const std::set<std::string>& keys) {
  auto r = c.exec("SELECT " + p.key_expr + ", md5(" + p.row_expr + ") FROM " + p.table.qualified() +
                      " t WHERE " + p.key_expr + " = ANY($1::text[])",
                  {pgclient::text_array({keys.begin(), keys.end()})});
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i) out[std::string(r.get(i, 0))] = std::string(r.get(i, 1));
  return out;
}

// Which way the live stream runs: the side written first (authoritative) and the marker's
// origin; nullopt when no enabled subscription of the route exists.
struct StreamDirection {
  bool forward = true;  // source -> target
};
std::optional<StreamDirection> live_stream(const SyncSides& sides, Connection& src,
                                           Connection& tgt) {
  const std::string q = "SELECT 1 FROM pg_subscription WHERE subname = $1 AND subenabled";
  if (tgt.exec(q, {sides.subscription}).rows() > 0) return StreamDirection{true};
  if (src.exec(q, {sides.subscription + "_rev"}).rows() > 0) return StreamDirection{false};
  return std::nullopt;
}

// Writes a marker on `origin_side` and waits (bounded) until `other` shows it.
bool marker_applied(const std::string& route, Connection& origin_side, Connection& other,
                    const std::string& origin) {
  auto r = origin_side.exec(
      "INSERT INTO pgshift.heartbeat (route, origin, seq, origin_time) VALUES ($1, $2, 1, "
      "now()) ON CONFLICT (route, origin) DO UPDATE SET seq = pgshift.heartbeat.seq + 1, "
      "origin_time = now() RETURNING seq",
      {route, origin});
  const long long seq = std::stoll(std::string(r.get(0, 0)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto t = other.exec("SELECT seq FROM pgshift.heartbeat WHERE route = $1 AND origin = $2",
                        {route, origin});
    if (t.rows() > 0 && std::stoll(std::string(t.get(0, 0))) >= seq) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The keys that still differ after up to kSettleRounds comparisons at one position each.
std::set<std::string> settle(const SyncSides& sides, const TablePlan& p,
                             std::set<std::string> keys) {
  Connection src = connect_side(sides.source), tgt = connect_side(sides.target);
  for (int round = 0; round < kSettleRounds && !keys.empty(); ++round) {
    auto dir = live_stream(sides, src, tgt);
    if (!dir) break;  // nothing will arrive: the differences are what they are
    Connection& first = dir->forward ? src : tgt;
    Connection& second = dir->forward ? tgt : src;
    const auto first_rows = rows_of(first, p, keys);
    if (!marker_applied(sides.route->name, first, second, dir->forward ? "source" : "target")) {
      break;
    }
    const auto second_rows = rows_of(second, p, keys);
    std::set<std::string> still;
    for (const auto& k : keys) {
      auto a = first_rows.find(k), b = second_rows.find(k);
      const bool in_a = a != first_rows.end(), in_b = b != second_rows.end();
      if (in_a != in_b || (in_a && a->second != b->second)) still.insert(k);
    }
    keys = std::move(still);
  }
  return keys;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using TableResults = std::map<std::string, Buckets>;
using Differences = std::map<std::string, std::set<long>>;  // table -> differing buckets

// The buckets that differ after the first pass and opt.retries more passes over them alone
// (while sync is live a bucket may differ only because the target had not applied yet).
Differences differing_buckets(Verifier& v, TableResults& src_res, TableResults& tgt_res,
                              int retries) {
  Differences diff;
  for (const auto& p : v.plans) {
    if (!p.skip.empty()) continue;
    auto d = differing(src_res[p.table.display()], tgt_res[p.table.display()]);
    if (!d.empty()) diff[p.table.display()] = d;
  }
  for (int attempt = 0; attempt < retries && !diff.empty(); ++attempt) {
    auto [s2, t2] = v.pass(&diff);
    Differences still;
    for (auto& [table, buckets] : diff) {
      auto d = differing(s2[table], t2[table]);
      if (!d.empty()) still[table] = d;
    }
    diff = std::move(still);
  }
  return diff;
}

// Buckets that keep differing under writes: their differing keys compared at one position;
// a table whose keys all settle is equal.
void settle_differences(const SyncSides& sides, const Verifier& v, Differences& diff) {
  if (diff.empty()) return;
  Connection src = connect_side(sides.source), tgt = connect_side(sides.target);
  for (const auto& p : v.plans) {
    auto it = diff.find(p.table.display());
    if (it == diff.end()) continue;
    auto keys = differing_keys(src, tgt, p, it->second);
    if (keys && settle(sides, p, std::move(*keys)).empty()) diff.erase(it);
  }
}

// One table's verdict: a JSON object, and its lines on `out` unless opt.json. False when the
// table is not verified equal.
bool report_table(const TablePlan& p, TableResults& src_res, TableResults& tgt_res,
                  const Differences& diff, Connection& src, Connection& tgt,
                  const VerifyOptions& opt, std::ostream& out, json::object& o) {
  const std::string name = p.table.display();
  o["table"] = name;
  if (!p.skip.empty()) {
    o["equal"] = false;
    o["skipped"] = p.skip;
    if (!opt.json) out << name << ": NOT VERIFIED: " << p.skip << "\n";
    return false;
  }
  const long long srows = total_rows(src_res[name]), trows = total_rows(tgt_res[name]);
  o["source_rows"] = srows;
  o["target_rows"] = trows;
  o["buckets"] = p.buckets;
  auto it = diff.find(name);
  o["equal"] = it == diff.end();
  if (it == diff.end()) {
    if (!opt.json) out << name << ": equal (" << srows << " rows)\n";
    return true;
  }
  o["differing_buckets"] = it->second.size();
  KeyDiff d = drill_down(src, tgt, p, it->second, opt.max_diffs);
  if (!opt.json) {
    out << name << ": DIFFERENT (source " << srows << " rows, target " << trows << " rows, "
        << it->second.size() << " of " << p.buckets << " bucket(s) differ)\n";
    for (const auto& k : d.missing)
      out << "  missing on target: key " << k.as_string().c_str() << "\n";
    for (const auto& k : d.extra)
      out << "  extra on target:   key " << k.as_string().c_str() << "\n";
    for (const auto& k : d.changed)
      out << "  changed:           key " << k.as_string().c_str() << "\n";
  }
  o["missing_on_target"] = std::move(d.missing);
  o["extra_on_target"] = std::move(d.extra);
  o["changed"] = std::move(d.changed);
  return false;
}

}  // namespace

int verify(const SyncSides& sides, const VerifyOptions& opt, std::ostream& out, VerifyRun* result) {
  Verifier v(sides, opt);
  const std::int64_t started_at_ms = unix_ms_now();
  const bool tty = !opt.json && stdout_is_tty() && &out == &std::cout;
  const auto start = std::chrono::steady_clock::now();
  {
    Connection src = connect_side(sides.source);
    config::Route r = *sides.route;
    if (!opt.tables.empty()) r.sync.tables = opt.tables;
    for (const auto& t : route_tables(src, r))
      v.plans.push_back(plan_table(src, t, opt.chunk_rows));
  }
  auto [src_res, tgt_res] = first_pass(v, tty, opt.json, out);
  Differences diff = differing_buckets(v, src_res, tgt_res, opt.retries);
  settle_differences(sides, v, diff);

  json::array tables;
  int differences = 0;
  Connection src = connect_side(sides.source), tgt = connect_side(sides.target);
  for (const auto& p : v.plans) {
    json::object o;
    if (!report_table(p, src_res, tgt_res, diff, src, tgt, opt, out, o)) ++differences;
    tables.push_back(std::move(o));
  }
  const bool all_equal = differences == 0;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long long rows = 0;
  for (const auto& [t, b] : src_res) rows += total_rows(b);
  const double rate = secs > 0 ? static_cast<double>(rows) / secs : 0.0;
  const std::string summary = std::string(all_equal ? "EQUAL" : "NOT EQUAL") + ": " +
                              std::to_string(v.plans.size()) + " table(s), " +
                              std::to_string(rows) + " source rows in " + format_duration(secs) +
                              " (" + std::to_string(static_cast<long long>(rate)) + " rows/s)";
  if (result) {
    *result = VerifyRun{sides.route->name,
                        started_at_ms,
                        unix_ms_now(),
                        all_equal,
                        static_cast<int>(v.plans.size()),
                        rows,
                        differences,
                        summary};
  }
  if (opt.json) {
    json::object o{{"route", sides.route->name},
                   {"equal", all_equal},
                   {"tables", std::move(tables)},
                   {"rows", rows},
                   {"seconds", secs},
                   {"rows_per_second", rate}};
    out << json::serialize(o) << "\n";
  } else {
    out << summary << "\n";
  }
  return all_equal ? 0 : 1;
}

}  // namespace pgshift::migrate
