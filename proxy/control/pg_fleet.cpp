// PgFleet: the coordinator's side of the fleet barrier (docs/control-plane.md, "Barrier").
//   hold:   one transaction writes prepare(route, epoch + 1, kind, deadline) + audit + NOTIFY;
//           then every live member serving the route must acknowledge in pgshift.acks
//           (LISTEN pgshift_ack, re-read every 50 ms); a refusal, or a member missing when
//           the wait ends, aborts.
//   commit: one transaction checks the operation is still prepare and before its deadline,
//           writes the new state at epoch + 1 with op_state committed + audit + NOTIFY.
//   abort:  op_state aborted + audit + NOTIFY (only if still prepare).
#include <thread>

#include "proxy/control/fleets.hpp"
#include "proxy/control/pg_schema.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::control {
namespace {

namespace pc = proxy::pgcontrol;
using proxy::f;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

PgFleet::PgFleet(Options options) : opt_(std::move(options)) {
  opt_.conn.application_name = "pgshift coordinator";
  opt_.conn.options = "-c statement_timeout=5000 -c lock_timeout=3000";
}

std::unique_ptr<PgFleet> PgFleet::from_config(const config::Config& cfg) {
  auto up = config::control_upstream(cfg);
  if (!up) {
    throw std::runtime_error(
        "no control database: control is 'file' (set control: target, or control.host)");
  }
  Options o;
  o.conn = pgclient::conninfo_for(*up);
  o.member_timeout = cfg.control.member_timeout;
  o.poll = cfg.control.poll;
  return std::make_unique<PgFleet>(std::move(o));
}

pgclient::Connection& PgFleet::connection() {
  if (!connected_ || !conn_.ok()) {
    conn_ = pgclient::Connection::connect(opt_.conn);
    pc::ensure_schema(conn_);
    conn_.exec("LISTEN " + std::string(pc::kAckChannel));
    connected_ = true;
  }
  return conn_;
}

HoldResult PgFleet::hold(const HoldRequest& request) {
  HoldResult held;
  try {
    held = prepare(request);
    if (!held.ok) return held;
    return await_acks(request, held);
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(mu_);
      connected_ = false;
    }
    held.ok = false;
    held.error = std::string("control database: ") + e.what();
    abort(request.route, held.error);
    return held;
  }
}

HoldResult PgFleet::prepare(const HoldRequest& req) {
  std::lock_guard lock(mu_);
  auto& conn = connection();
  HoldResult out;
  pc::in_transaction(conn, [&] {
    auto row = pc::read_route(conn, req.route, true);
    if (!row) {
      out.error = "route \"" + req.route +
                  "\" is not in the control database (no sidecar "
                  "serving it has started yet)";
      return;
    }
    if (row->op_open()) {
      out.error = "route \"" + req.route + "\" is already held by a " + row->op_kind +
                  " operation (epoch " + std::to_string(row->op_epoch) + ", by " +
                  row->op_coordinator + ") for " + std::to_string(row->op_remaining_ms) +
                  " ms more";
      return;
    }
    if (row->op_stale()) {
      pc::abort_operation(conn, req.route, row->op_epoch,
                          "deadline passed without commit (coordinator " + row->op_coordinator +
                              "); cleaned up by the next coordinator");
    }
    out.epoch = row->state.epoch;
    const auto op_epoch = row->state.epoch + 1;
    conn.exec(
        "UPDATE pgshift.routes SET op_kind = $2, op_state = 'prepare', op_epoch = $3, "
        "op_deadline = now() + $4::bigint * interval '1 ms', op_drain_ms = $5, "
        "op_coordinator = $6, op_reason = NULL WHERE name = $1",
        {req.route, req.kind, std::to_string(op_epoch), std::to_string(req.deadline.count()),
         std::to_string(req.drain_timeout.count()), req.actor});
    pc::audit(conn, req.route, req.actor, "hold", pc::state_json(row->state),
              "{\"kind\":\"" + req.kind + "\",\"op_epoch\":" + std::to_string(op_epoch) +
                  ",\"deadline_ms\":" + std::to_string(req.deadline.count()) + "}",
              "prepare");
    pc::notify(conn, pc::kStateChannel, req.route);
    held_[req.route] = Held{op_epoch, req.actor};
    out.ok = true;
  });
  if (out.ok) {
    proxy::log_info("barrier: prepare written; waiting for every live member",
                    {f("route", req.route), f("kind", req.kind), f("op_epoch", out.epoch + 1),
                     f("coordinator", req.actor)});
  }
  return out;
}

HoldResult PgFleet::await_acks(const HoldRequest& req, HoldResult held) {
  // Members see the prepare within one poll (NOTIFY usually much sooner), then drain.
  const auto limit = std::min<std::chrono::milliseconds>(req.deadline * 3 / 4,
                                                         req.drain_timeout + opt_.poll + 1000ms);
  const auto until = Clock::now() + limit;
  const std::string op_epoch = std::to_string(held.epoch + 1);
  std::string missing;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      auto& conn = connection();
      auto r = conn.exec(
          "SELECT m.id, a.ok, coalesce(a.detail, ''), coalesce(a.held, 0) "
          "FROM pgshift.members m LEFT JOIN pgshift.acks a "
          "ON a.route = $1 AND a.epoch = $2 AND a.member = m.id "
          "WHERE $1 = ANY(m.routes) AND m.heartbeat_at > now() - $3::bigint * interval '1 ms' "
          "ORDER BY m.id",
          {req.route, op_epoch, std::to_string(opt_.member_timeout.count())});
      missing.clear();
      std::string refused;
      std::uint64_t waiting = 0;
      for (int i = 0; i < r.rows(); ++i) {
        const std::string id(r.get(i, 0));
        if (r.is_null(i, 1)) {
          missing += (missing.empty() ? "" : ", ") + id;
        } else if (r.get(i, 1) != "t") {
          refused += (refused.empty() ? "" : "; ") + id + ": " + std::string(r.get(i, 2));
        } else {
          waiting += std::stoull(std::string(r.get(i, 3)));
        }
      }
      if (!refused.empty()) {
        held.ok = false;
        held.error = "a member could not drain the route: " + refused;
        break;
      }
      if (missing.empty()) {
        held.members = r.rows();
        held.held_transactions = waiting;
        proxy::log_info(
            "barrier: every live member holds the route",
            {f("route", req.route), f("members", held.members), f("op_epoch", held.epoch + 1)});
        return held;
      }
      if (Clock::now() >= until) {
        held.ok = false;
        held.error = "no acknowledgement within " + std::to_string(limit.count()) +
                     " ms from live member(s) " + missing;
        break;
      }
      conn.wait_notifications(50ms);
    }
  }
  abort(req.route, held.error);
  return held;
}

CommitResult PgFleet::commit(const std::string& route, const routing::StateChange& change) {
  CommitResult out;
  std::lock_guard lock(mu_);
  auto it = held_.find(route);
  if (it == held_.end()) {
    out.error = "route \"" + route + "\" is not held by this coordinator (hold() first)";
    return out;
  }
  const Held held = it->second;
  try {
    auto& conn = connection();
    pc::in_transaction(conn, [&] {
      auto row = pc::read_route(conn, route, true);
      if (!row || row->op_state != "prepare" || row->op_epoch != held.op_epoch) {
        out.error = "the hold of route \"" + route + "\" is no longer in force (" +
                    (row ? row->op_state + (row->op_reason.empty() ? "" : ": " + row->op_reason)
                         : std::string("route row missing")) +
                    "); nothing was committed";
        return;
      }
      if (row->op_remaining_ms <= 0) {
        out.error = "the hold of route \"" + route +
                    "\" passed its deadline; members have released it; nothing was committed";
        return;
      }
      auto applied = routing::apply(row->state, change, unix_ms());
      if (!applied) {
        out.error = applied.message;
        return;
      }
      routing::MigrationState next = *applied;
      next.epoch = held.op_epoch;  // the epoch every member held for, even for a no-op
      pc::write_state(conn, route, next, "committed");
      pc::audit(conn, route, held.actor, "commit", pc::state_json(row->state), pc::state_json(next),
                "committed");
      pc::notify(conn, pc::kStateChannel, route);
      out.ok = true;
      out.state = next;
    });
  } catch (const std::exception& e) {
    connected_ = false;
    // The commit may or may not have happened: the row says which. Members release at
    // the deadline either way; the caller must read the route before acting on it.
    out.error = std::string("control database: ") + e.what() +
                " (the commit may not have happened: read the route's epoch)";
    return out;
  }
  if (out.ok) {
    held_.erase(route);
    proxy::log_info("barrier: committed", {f("route", route), f("epoch", out.state.epoch)});
  }
  return out;
}

void PgFleet::abort(const std::string& route, std::string_view reason) {
  std::lock_guard lock(mu_);
  auto it = held_.find(route);
  if (it == held_.end()) return;  // idempotent
  const Held held = it->second;
  held_.erase(it);
  try {
    auto& conn = connection();
    pc::in_transaction(conn, [&] {
      if (!pc::abort_operation(conn, route, held.op_epoch, reason)) return;
      pc::audit(conn, route, held.actor, "abort",
                "{\"op_epoch\":" + std::to_string(held.op_epoch) + "}", std::nullopt,
                "aborted: " + std::string(reason));
      pc::notify(conn, pc::kStateChannel, route);
    });
    proxy::log_warn("barrier: aborted", {f("route", route), f("reason", reason)});
  } catch (const std::exception& e) {
    connected_ = false;
    proxy::log_warn("barrier: abort not written; members release at the deadline",
                    {f("route", route), f("error", e.what())});
  }
}

}  // namespace pgshift::control
