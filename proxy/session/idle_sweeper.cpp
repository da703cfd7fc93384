#include "proxy/session/idle_sweeper.hpp"

#include <malloc.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/session/io_buffer.hpp"
#include "proxy/session/session.hpp"

namespace pgshift::proxy {
namespace {

// Freed blocks sit among the heap's live allocations, where the allocator keeps their pages:
// malloc_trim gives such free pages back to the system (glibc; elsewhere nothing to do).
// It runs only after a period freed many spare blocks (a burst is over), so not on a steady
// or idle proxy: a trim holds the allocator's locks while it walks the free memory.
constexpr std::size_t kTrimAfterBytes = 512 * 1024;
void return_free_memory() {
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

}  // namespace

IdleSweeper& IdleSweeper::local() {
  thread_local IdleSweeper sweeper;
  return sweeper;
}

void IdleSweeper::sweep() {
  // A session leaving the list may not add itself again during this walk (sweep_idle()
  // only cools sessions down; they come back from their own coroutines later).
  std::size_t i = 0;
  while (i < sessions_.size()) {
    auto s = sessions_[i].lock();
    if (s && s->sweep_idle()) {
      ++i;
      continue;
    }
    sessions_[i] = std::move(sessions_.back());
    sessions_.pop_back();
  }
}

asio::awaitable<void> IdleSweeper::run() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(kPeriod);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    local().sweep();
    if (IoBuffer::trim_free_blocks() >= kTrimAfterBytes) return_free_memory();
  }
}

}  // namespace pgshift::proxy
