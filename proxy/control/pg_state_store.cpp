#include "proxy/control/pg_state_store.hpp"

#include <unistd.h>

#include <boost/json/parse.hpp>
#include <random>

#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace pc = pgcontrol;

constexpr auto kReconnectDelay = 1000ms;
constexpr auto kIdleWait = 50ms;  // bounds the latency of a queued admin change
constexpr auto kHoldWait = 10ms;  // while a barrier hold waits for transactions to end

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A change that could not be stored: counted as a failed state persist.
StateChangeResult unavailable(const std::string& database, const std::string& error) {
  metrics().errors(ErrorKind::state_persist).Increment();
  StateChangeResult r;
  r.error = StateChangeError::unavailable;
  r.message = "the control database " + database + " cannot be reached" +
              (error.empty() ? "" : " (" + error + ")") +
              "; every sidecar keeps serving its last state; retry once "
              "pgshift_control_connected is 1 again";
  return r;
}

}  // namespace

std::string PgStateStore::default_member_id() {
  std::string base;
  if (const char* pod = std::getenv("POD_NAME"); pod && *pod) {
    base = pod;
  } else {
    char host[256] = {};
    base = ::gethostname(host, sizeof host - 1) == 0 && host[0] ? host : "pgshift";
  }
  std::random_device rd;
  std::uniform_int_distribution<unsigned> dist(0, 0xffffff);
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%06x", dist(rd));
  return base + "-" + suffix;
}

PgStateStore::PgStateStore(Options options, std::shared_ptr<PauseGate> gate)
    : opt_(std::move(options)), gate_(std::move(gate)) {
  if (opt_.member_id.empty()) opt_.member_id = default_member_id();
  opt_.conn.application_name = "pgshift control " + opt_.member_id;
  // A statement never hangs the control thread for long (a lock held by a dead coordinator
  // session is released when its connection goes; this bounds everything else).
  opt_.conn.options = "-c statement_timeout=5000 -c lock_timeout=3000";
  metrics().control_connected().Set(0);  // until the first connection succeeds
}

PgStateStore::~PgStateStore() {
  stop(true);
}

void PgStateStore::load(const config::Config& cfg) {
  auto next = std::make_shared<RouteStates>();
  {
    std::lock_guard lock(mu_);
    served_.clear();
    for (const auto& r : cfg.routes) {
      served_.emplace(r.name, initial_route_state(r));
      next->routes.emplace(r.name, initial_route_state(r));
    }
  }
  publish(std::move(next));
}

void PgStateStore::start(std::chrono::milliseconds wait) {
  log_info("control plane: joining the fleet",
           {f("member", opt_.member_id), f("control_database", pgclient::describe(opt_.conn))});
  thread_ = std::thread([this] { run(); });
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [this] { return first_read_done_ || first_attempt_done_ || stopping_; });
  if (!first_read_done_) {
    log_warn(
        "control database not reachable at startup: serving the configured initial "
        "state until it is",
        {f("control_database", pgclient::describe(opt_.conn)), f("error", last_error_)});
  }
}

void PgStateStore::reconcile(const config::Config& cfg) {
  std::lock_guard publishing(publish_mu_);
  auto current = snapshot();
  auto next = std::make_shared<RouteStates>();
  std::lock_guard lock(mu_);
  served_.clear();
  for (const auto& r : cfg.routes) {
    served_.emplace(r.name, initial_route_state(r));
    const auto* s = current->find(r.name);
    auto node = s ? decltype(retired_)::node_type{} : retired_.extract(r.name);
    if (!node.empty()) {
      // Back in the configuration: serve the state it had (its row, unchanged in the
      // control database, is read at the next turn), never epoch 0 meanwhile.
      log_info("route state restored: the route is back in the configuration",
               {f("route", r.name), f("epoch", node.mapped().epoch)});
    }
    next->routes.emplace(r.name, s ? *s : node.empty() ? initial_route_state(r) : node.mapped());
  }
  for (const auto& [name, state] : current->routes) {
    if (next->find(name)) continue;
    log_warn(
        "route state retired: the route is no longer in the configuration; its row stays "
        "in the control database and resumes if the route comes back",
        {f("route", name), f("epoch", state.epoch)});
    retired_.insert_or_assign(name, state);
  }
  publish(std::move(next));
  reread_ = true;  // new routes get their rows at the next turn of the thread
}

void PgStateStore::stop(bool leave) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    leave_ = leave;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> PgStateStore::route_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, s] : served_) out.push_back(name);
  return out;
}

void PgStateStore::change(ChangeRequest request, Done done) {
  if (!request.expected_epoch) {
    const auto* s = snapshot()->find(request.route);
    if (s) request.expected_epoch = s->epoch;
  }
  std::unique_lock lock(mu_);
  if (!connected_ || stopping_) {
    const std::string err = last_error_;
    lock.unlock();
    done(unavailable(pgclient::describe(opt_.conn), err));
    return;
  }
  jobs_.push_back(Job{std::move(request), std::move(done)});
}

ControlStatus PgStateStore::control_status() const {
  std::lock_guard lock(mu_);
  ControlStatus s;
  s.mode = "postgres";
  s.connected = connected_;
  s.member_id = opt_.member_id;
  s.database = pgclient::describe(opt_.conn);
  s.error = connected_ ? "" : last_error_;
  s.member_timeout_ms = opt_.member_timeout.count();
  return s;
}

std::vector<MemberView> PgStateStore::members() const {
  std::lock_guard lock(mu_);
  return members_;
}

// ---- the control thread ----------------------------------------------------------------

void PgStateStore::run() {
  bool notified = false;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) break;
      if (!have_conn_) {
        // Not connected: wait for the next attempt (or stop) without spinning.
        cv_.wait_until(lock, next_connect_, [this] { return stopping_; });
        if (stopping_) break;
      }
    }
    if (!have_conn_ && !connect_once()) continue;
    try {
      loop_once(notified);
    } catch (const std::exception& e) {
      disconnected(e.what());
    }
  }
  // Release what this member holds: its transactions must not wait for a dead thread.
  for (auto it = holds_.begin(); it != holds_.end();) {
    gate_->release_route(it->first);
    it = holds_.erase(it);
  }
  if (have_conn_) {
    bool leave = false;
    {
      std::lock_guard lock(mu_);
      leave = leave_;
    }
    if (leave) leave_fleet();
  }
  std::deque<Job> left;
  {
    std::lock_guard lock(mu_);
    left.swap(jobs_);
  }
  for (auto& job : left) job.done(unavailable(pgclient::describe(opt_.conn), "pgshift stopping"));
}

bool PgStateStore::connect_once() {
  try {
    conn_ = pgclient::Connection::connect(opt_.conn);
    have_conn_ = true;
    pc::ensure_schema(conn_);
    conn_.exec("LISTEN " + std::string(pc::kStateChannel));
    conn_.exec("LISTEN " + std::string(pc::kAckChannel));
    for (const auto& name : route_names()) {
      routing::MigrationState initial;
      {
        std::lock_guard lock(mu_);
        initial = served_.at(name);
      }
      pc::insert_route_if_absent(conn_, name, initial);
    }
    heartbeat();
    refresh();
    {
      std::lock_guard lock(mu_);
      connected_ = true;
      first_read_done_ = true;
      last_error_.clear();
    }
    cv_.notify_all();
    metrics().control_connected().Set(1);
    log_info("control database connected",
             {f("member", opt_.member_id), f("control_database", pgclient::describe(opt_.conn))});
    return true;
  } catch (const std::exception& e) {
    disconnected(e.what());
    return false;
  }
}

void PgStateStore::disconnected(const std::string& why) {
  const bool was = have_conn_;
  conn_ = pgclient::Connection();
  have_conn_ = false;
  std::deque<Job> failed;
  bool log_it = false;
  {
    std::lock_guard lock(mu_);
    log_it = connected_ || last_error_ != why;
    connected_ = false;
    last_error_ = why;
    failed.swap(jobs_);
    next_connect_ = Clock::now() + kReconnectDelay;
    first_attempt_done_ = true;
  }
  cv_.notify_all();  // start() stops waiting: serve the initial state at once
  metrics().control_connected().Set(0);
  if (log_it || was) {
    log_warn(
        "control database unreachable: serving the last state, changes are refused "
        "until it is back",
        {f("member", opt_.member_id), f("control_database", pgclient::describe(opt_.conn)),
         f("error", why)});
  }
  for (auto& job : failed) job.done(unavailable(pgclient::describe(opt_.conn), why));
}

void PgStateStore::loop_once(bool& notified) {
  run_jobs();
  const auto now = Clock::now();
  if (now >= next_heartbeat_) heartbeat();
  if (notified || now >= next_poll_ || reread_.exchange(false)) refresh();
  barrier_step();
  const auto wait = holds_.empty() ? kIdleWait : kHoldWait;
  notified = !conn_.wait_notifications(wait).empty();
}

void PgStateStore::run_jobs() {
  for (;;) {
    Job job;
    {
      std::lock_guard lock(mu_);
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    StateChangeResult result;
    try {
      result = apply_change(job.request);
    } catch (const std::exception& e) {
      auto r = unavailable(pgclient::describe(opt_.conn), e.what());
      r.message +=
          " (the connection failed during the change: it may or may not have been "
          "applied; read the route's epoch before retrying)";
      job.done(std::move(r));
      throw;  // the connection is suspect: reconnect
    }
    job.done(std::move(result));
  }
}

// One change: compare-and-set on the epoch, the new state, an audit row and NOTIFY, all in
// one transaction; then published here at once (the others follow on the notification).
StateChangeResult PgStateStore::apply_change(const ChangeRequest& req) {
  StateChangeResult result;
  const auto* percent = std::get_if<routing::SetReadPercent>(&req.change);
  const std::string action = percent ? "set_read_percent" : "set_phase";
  std::string request_json;
  if (percent) {
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.2f", percent->basis_points / 100.0);
    request_json = std::string("{\"read_percent\":") + pct;
  } else {
    const auto phase = std::get<routing::SetPhase>(req.change).phase;
    request_json = "{\"phase\":\"" + std::string(routing::phase_name(phase)) + "\"";
  }
  if (req.expected_epoch) {
    request_json += ",\"expected_epoch\":" + std::to_string(*req.expected_epoch);
  }
  request_json += "}";
  pc::in_transaction(conn_, [&] {
    auto row = pc::read_route(conn_, req.route, true);
    if (!row) {
      result.error = StateChangeError::unknown_route;
      result.message = "route \"" + req.route + "\" is not in the control database";
      return;
    }
    result.before = result.after = row->state;
    auto refuse = [&](StateChangeError e, std::string message, std::string_view outcome) {
      result.error = e;
      result.message = std::move(message);
      pc::audit(conn_, req.route, req.actor, action, pc::state_json(row->state), request_json,
                outcome);
    };
    if (row->op_open()) {
      refuse(StateChangeError::busy,
             "route \"" + req.route + "\" is held by a " + row->op_kind + " operation (epoch " +
                 std::to_string(row->op_epoch) + ", by " + row->op_coordinator + ") for " +
                 std::to_string(row->op_remaining_ms) + " ms more; retry after it",
             "refused: operation in progress");
      return;
    }
    if (req.expected_epoch && *req.expected_epoch != row->state.epoch) {
      refuse(StateChangeError::conflict,
             "route \"" + req.route + "\" is at epoch " + std::to_string(row->state.epoch) +
                 ", not " + std::to_string(*req.expected_epoch) +
                 " (another change won); read it again and retry",
             "refused: epoch conflict");
      return;
    }
    auto next = routing::apply(row->state, req.change, unix_ms());
    if (!next) {
      refuse(StateChangeError::invalid, next.message, "refused: invalid");
      return;
    }
    if (next->epoch == row->state.epoch) {
      pc::audit(conn_, req.route, req.actor, action, pc::state_json(row->state),
                pc::state_json(row->state), "unchanged");
      return;
    }
    pc::write_state(conn_, req.route, *next);
    pc::audit(conn_, req.route, req.actor, action, pc::state_json(row->state),
              pc::state_json(*next), "ok");
    pc::notify(conn_, pc::kStateChannel, req.route);
    result.after = *next;
  });
  if (result.changed()) {
    log_info("audit: route state changed in the control database",
             {f("audit", action), f("who", req.actor), f("route", req.route),
              f("old_epoch", result.before.epoch), f("epoch", result.after.epoch),
              f("read_percent", result.after.read_percent.to_string()),
              f("phase", routing::phase_name(result.after.phase))});
    refresh();  // publish it here before answering, so the caller reads its own change
  }
  return result;
}

void PgStateStore::heartbeat() {
  std::string applied = "{";
  const auto snap = snapshot();
  for (const auto& [name, s] : snap->routes) {
    if (applied.size() > 1) applied += ',';
    applied += "\"" + name + "\":" + std::to_string(s.epoch);
  }
  applied += "}";
  conn_.exec(
      "INSERT INTO pgshift.members (id, version, address, routes, applied, heartbeat_at) "
      "VALUES ($1, $2, $3, $4::text[], $5::jsonb, now()) ON CONFLICT (id) DO UPDATE SET "
      "version = EXCLUDED.version, address = EXCLUDED.address, routes = EXCLUDED.routes, "
      "applied = EXCLUDED.applied, heartbeat_at = now()",
      {opt_.member_id, std::string("0.1.0"), opt_.address, pgclient::text_array(route_names()),
       applied});
  next_heartbeat_ = Clock::now() + opt_.heartbeat;
}

void PgStateStore::leave_fleet() {
  try {
    conn_.exec("DELETE FROM pgshift.members WHERE id = $1", {opt_.member_id});
    log_info("left the fleet: member row deleted", {f("member", opt_.member_id)});
  } catch (const std::exception& e) {
    log_warn("could not delete the member row; it expires after member_timeout_ms",
             {f("member", opt_.member_id), f("error", e.what())});
  }
}

void PgStateStore::refresh() {
  const auto names = route_names();
  auto r = conn_.exec(std::string("SELECT name, ") + pc::kRouteColumns +
                          " FROM pgshift.routes WHERE name = ANY($1::text[])",
                      {pgclient::text_array(names)});
  std::map<std::string, pc::RouteRow, std::less<>> rows;
  for (int i = 0; i < r.rows(); ++i) {
    rows.emplace(std::string(r.get(i, 0)), pc::parse_route_row(r, i, 1));
  }
  bool again = false;
  for (const auto& name : names) {
    if (rows.count(name)) continue;
    // A route added by a reload, or a row deleted by hand: (re)create it.
    routing::MigrationState initial;
    {
      std::lock_guard lock(mu_);
      initial = served_.at(name);
    }
    pc::insert_route_if_absent(conn_, name, initial);
    again = true;
  }
  publish_rows(rows);
  for (const auto& [name, row] : rows) follow_operation(name, row);
  for (auto it = holds_.begin(); it != holds_.end();) {
    // A held route whose row vanished, or that this sidecar no longer serves.
    if (rows.count(it->first)) {
      ++it;
      continue;
    }
    gate_->release_route(it->first);
    it = holds_.erase(it);
  }
  refresh_members();
  next_poll_ = again ? Clock::now() : Clock::now() + opt_.poll;
}

void PgStateStore::publish_rows(const std::map<std::string, pc::RouteRow, std::less<>>& rows) {
  RouteStatesPtr current;
  {
    std::lock_guard publishing(publish_mu_);
    current = snapshot();
    bool moved = false;
    auto next = std::make_shared<RouteStates>(*current);
    for (const auto& [name, row] : rows) {
      auto it = next->routes.find(name);
      if (it == next->routes.end() || it->second == row.state) continue;
      moved = true;
      it->second = row.state;
    }
    if (!moved) return;
    publish(next);
  }
  for (const auto& [name, row] : rows) {
    const auto* before = current->find(name);
    if (!before || *before == row.state) continue;
    metrics().state_changes(name).Increment();
    log_info("route state applied from the control database",
             {f("route", name), f("epoch", row.state.epoch), f("old_epoch", before->epoch),
              f("phase", routing::phase_name(row.state.phase)),
              f("read_percent", row.state.read_percent.to_string())});
    notify(name, *before, row.state);
  }
  next_heartbeat_ = {};  // report the applied epoch at once
}

void PgStateStore::refresh_members() {
  auto r = conn_.exec(
      "SELECT id, version, address, routes::text, applied::text, "
      "(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint FROM pgshift.members "
      "ORDER BY id");
  std::vector<MemberView> out;
  const auto timeout = opt_.member_timeout.count();
  for (int i = 0; i < r.rows(); ++i) {
    MemberView m;
    m.id = r.get(i, 0);
    m.version = r.get(i, 1);
    m.address = r.get(i, 2);
    std::string routes(r.get(i, 3));  // {a,b}
    if (routes.size() > 2) {
      std::string cur;
      for (char c : routes.substr(1, routes.size() - 2)) {
        if (c == ',') {
          m.routes.push_back(cur);
          cur.clear();
        } else if (c != '"') {
          cur += c;
        }
      }
      m.routes.push_back(cur);
    }
    boost::system::error_code ec;
    auto applied = boost::json::parse(std::string(r.get(i, 4)), ec);
    if (!ec && applied.is_object()) {
      for (const auto& [k, v] : applied.get_object()) {
        if (v.is_int64())
          m.applied.emplace(std::string(k), static_cast<std::uint64_t>(v.as_int64()));
      }
    }
    m.heartbeat_age_ms = std::stoll(std::string(r.get(i, 5)));
    m.live = m.heartbeat_age_ms <= timeout;
    m.self = m.id == opt_.member_id;
    out.push_back(std::move(m));
  }
  // Members gone for long are forgotten (a killed pod never deletes its row).
  conn_.exec(
      "DELETE FROM pgshift.members WHERE heartbeat_at < now() - $1::bigint * interval '1 ms'",
      {std::to_string(std::max<std::int64_t>(timeout * 10, 600000))});
  std::lock_guard lock(mu_);
  members_ = std::move(out);
}

}  // namespace pgshift::proxy
