// Moving capacity between the I/O threads' pools of one key (docs/pooling.md, and
// docs/threading.md for why): a slot freed here goes to a local waiter or wakes another
// thread; another thread whose waiters starve can have an idle connection closed here.
// Also giving idle connections up for the databases' sake: none kept to a template, and all
// closed before a command that needs the database alone ("Pools never block database
// commands" in docs/pooling.md).
#include <utility>

#include "pool/server_pool.hpp"

namespace pgshift::pool {

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

void ServerPool::on_shed_request() {
  if (closed_ || idle_.empty() || !waiters_.empty()) return;
  // The oldest idle connection: the one least likely to be needed here soon.
  auto conn = std::move(idle_.front().conn);
  idle_.pop_front();
  gauges_.idle.add(-1);
  unwatch(*conn);
  retire(std::move(conn), true);
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
