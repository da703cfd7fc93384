// Moving capacity between the I/O threads' pools of one key (docs/pooling.md, and
// docs/threading.md for why): a slot freed here goes to a local waiter or wakes another
// thread; a connection nobody waits for here goes to a thread whose clients wait (a
// hand-over: the socket changes io_context, the server session stays).
// Also giving idle connections up for the databases' sake: none kept to a template, and all
// closed before a command that needs the database alone ("Pools never block database
// commands" in docs/pooling.md).
#include <boost/asio/post.hpp>
#include <utility>

#include "pool/server_pool.hpp"

namespace pgshift::pool {

// A connection on its way between two threads' pools, inside the handler posted to the
// receiving thread. Its slot travels with it: if the handler is destroyed without running
// (the receiving pool or io_context went away), the descriptor is closed and the slot given
// back.
struct ServerPool::Handover {
  Handover(std::shared_ptr<PoolShared> s, std::unique_ptr<ServerConnection> c, DetachedStream d,
           Clock::time_point t)
      : shared(std::move(s)), conn(std::move(c)), stream(std::move(d)), since(t) {}
  Handover(Handover&&) noexcept = default;
  Handover& operator=(Handover&&) = delete;
  ~Handover() {
    if (!conn) return;
    stream = DetachedStream{};  // closes the socket
    conn.reset();
    // No wake-up from here (this may run while an io_context is destroyed): a waiter finds
    // the slot at its next look (rebalance_after).
    shared->return_slot();
  }

  std::shared_ptr<PoolShared> shared;
  std::unique_ptr<ServerConnection> conn;  // its stream closed; `stream` is its connection
  DetachedStream stream;
  Clock::time_point since;  // idle since (health_check_after counts from here)
};

// Also used to pass on a wake-up for a free slot that its waiter did not use.
void ServerPool::after_slot_freed() {
  if (!waiters_.empty()) {
    wake_first_waiter();
    return;
  }
  // return_slot() came before this read (both sequentially consistent): see add_waiter().
  if (shared_->waiters() > waiting_.load()) shared_->wake_waiting_thread(this);
}

void ServerPool::on_slot_available() {
  if (closed_) return;
  after_slot_freed();
}

void ServerPool::on_handover_request() {
  if (closed_ || !waiters_.empty() || idle_.empty()) return;
  // The most recently used: the least likely to be due for a health check.
  IdleEntry entry = std::move(idle_.back());
  idle_.pop_back();
  gauges_.idle.add(-1);
  unwatch(*entry.conn);
  if (expired(*entry.conn, Clock::now())) {
    retire(std::move(entry.conn), true);  // frees a slot: a waiter elsewhere can open one
    return;
  }
  if (hand_over(entry.conn, entry.since)) return;
  // Nobody waits any more: back where it was.
  idle_.push_back(std::move(entry));
  gauges_.idle.add(1);
  watch(*idle_.back().conn);
}

bool ServerPool::hand_over(std::unique_ptr<ServerConnection>& conn, Clock::time_point since) {
  auto to = shared_->waiting_thread(this);
  if (!to) return false;
  error_code ec;
  DetachedStream stream = conn->stream.detach(ec);
  if (!stream) {
    // Bytes waiting on an idle connection: out of step with its server, never reused.
    counters_.dead.add(1);
    retire(std::move(conn), false);
    return true;
  }
  counters_.handovers.add(1);
  asio::post(to->executor,
             [weak = std::move(to->pool),
              h = Handover(shared_, std::move(conn), std::move(stream), since)]() mutable {
               if (auto pool = weak.lock()) pool->adopt(std::move(h));
             });
  return true;
}

void ServerPool::adopt(Handover h) {
  error_code ec;
  h.conn->stream = Stream::adopt(executor_, std::move(h.stream), ec);
  std::unique_ptr<ServerConnection> conn = std::move(h.conn);  // the slot is ours now
  if (ec) {
    counters_.dead.add(1);
    retire(std::move(conn), false);
    return;
  }
  if (!closed_ && !waiters_.empty() && Clock::now() - h.since >= options_.health_check_after) {
    // Idle too long to go straight to a client: through the idle list, where the woken
    // waiter's acquire() checks it first.
    idle_.push_back({std::move(conn), h.since});
    gauges_.idle.add(1);
    watch(*idle_.back().conn);
    wake_first_waiter();
    return;
  }
  // Not handed on again from here: it came for this thread's waiters (if they were served
  // meanwhile, it waits in this idle list until a thread asks for it).
  place(std::move(conn), false, h.since);
}

bool ServerPool::keeps_no_idle(std::string_view database) {
  return database == "template0" || database == "template1";
}

void ServerPool::drop_idle() {
  while (!idle_.empty()) {
    auto conn = std::move(idle_.front().conn);
    idle_.pop_front();
    gauges_.idle.add(-1);
    unwatch(*conn);
    retire(std::move(conn), true);
  }
}

}  // namespace pgshift::pool
