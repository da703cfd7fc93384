#include "proxy/session/idle_sweeper.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/session/session.hpp"

namespace pgshift::proxy {

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
  }
}

}  // namespace pgshift::proxy
