#include "proxy/app/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <thread>

#include "config/load.hpp"
#include "proxy/app/cpu_quota.hpp"
#include "proxy/app/operator_startup.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/migrate/lag_monitor.hpp"
#include "proxy/mirror/mirror_service.hpp"
#include "proxy/session/idle_sweeper.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/thread_sessions.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"
#include "proxy/telemetry/pool_report.hpp"

namespace pgshift::proxy {

namespace {

// The fleet barrier's hold of a mirrored route waits until this sidecar replayed everything
// its clients committed, and is refused while the mirror is stopped (docs/cutover.md,
// "Mirrored routes").
std::function<PauseGate::Backlog(std::string_view)> mirror_backlog(
    std::weak_ptr<mirror::MirrorService> service) {
  return [service = std::move(service)](std::string_view route) {
    PauseGate::Backlog b;
    auto m = service.lock();
    if (!m) return b;
    const auto d = m->drain_state(route);
    b.pending = d.pending;
    if (d.stopped) {
      b.refusal = "the mirror of route " + std::string(route) + " is stopped: " + d.detail;
    }
    return b;
  };
}
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

Server::Server(std::shared_ptr<Runtime> runtime, std::string config_path)
    : runtime_(std::move(runtime)), config_path_(std::move(config_path)) {
  const auto& cfg = *runtime_->snapshot()->config;
  int threads = cfg.threads;
  if (threads <= 0) {
    ThreadCount detected = detect_default_threads();
    threads = detected.threads;
    log_info("I/O threads from the CPU quota",
             {f("threads", threads), f("reason", detected.reason)});
  }
  for (int i = 0; i < threads; ++i) {
    // Each context is run by exactly one thread: tell Asio so it can skip locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
  }
  pool_registry_ = std::make_shared<pool::PoolRegistry>();
  for (auto& ctx : contexts_) {
    pool_sets_.push_back(pool::PoolSet::create(ctx->get_executor(), pool_registry_));
  }
}

Server::~Server() = default;

asio::awaitable<void> Server::accept_loop() {
  for (;;) {
    std::size_t index = next_context_++ % contexts_.size();
    auto& ctx = *contexts_[index];
    auto [ec, socket] = co_await acceptor_->async_accept(ctx, use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      // EMFILE and friends: log, back off briefly, keep serving existing sessions.
      log_error("accept failed", {f("error", ec.message())});
      asio::steady_timer t(acceptor_->get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(use_tuple);
      continue;
    }
    if (runtime_->draining.load()) continue;  // socket closes on scope exit
    const std::uint64_t id = next_session_id_++;
    auto session = ClientSession::create(*runtime_, pool_sets_[index], std::move(socket), id);
    asio::co_spawn(
        ctx.get_executor(), [session]() { return session->run(); }, asio::detached);
  }
}

void Server::reload() {
  auto loaded = config::load_file(config_path_);
  if (!loaded.ok()) {
    for (auto& e : loaded.errors) log_error("reload: config error", {f("error", e.to_string())});
    log_error("reload rejected; keeping the running configuration");
    metrics().errors(ErrorKind::config_reload).Increment();
    return;
  }
  std::vector<std::string> errors;
  auto previous = runtime_->snapshot();
  // Keys that cannot change at runtime keep their running value until a restart.
  auto next = std::make_shared<config::Config>(*loaded.config);
  for (const auto& k : config::keep_restart_only_values(*previous->config, *next)) {
    log_warn("reload: this setting changes only on restart; keeping the running value",
             {f("key", k.path), f("running", k.running), f("configured", k.configured)});
  }
  loaded.config = std::move(next);
  auto snap = build_snapshot(loaded.config, errors, previous.get());
  if (!snap) {
    for (auto& e : errors) log_error("reload: error", {f("error", e)});
    log_error("reload rejected; keeping the running configuration");
    metrics().errors(ErrorKind::config_reload).Increment();
    return;
  }
  LogLevel level;
  if (parse_log_level(snap->config->log_level, level)) set_log_level(level);
  if (runtime_->states) runtime_->states->reconcile(*snap->config);
  runtime_->replace(std::move(snap));
  log_info("configuration reloaded", {f("routes", loaded.config->routes.size())});
}

asio::awaitable<std::size_t> Server::for_each_session(void (*fn)(ClientSession&)) {
  // Each thread walks its own roster; this coroutine waits (bounded) until all have.
  auto pending = std::make_shared<std::atomic<std::size_t>>(contexts_.size());
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  for (auto& ctx : contexts_) {
    asio::post(*ctx, [ex = ctx->get_executor(), fn, pending, count]() {
      auto& roster = ThreadSessions::of(ex);
      count->fetch_add(roster.size());
      roster.for_each(fn);
      pending->fetch_sub(1);
    });
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (pending->load() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(use_tuple);
  }
  co_return count->load();
}

asio::awaitable<void> Server::drain() {
  runtime_->draining.store(true);
  boost::system::error_code ignored;
  acceptor_->close(ignored);
  // The pools as they were when the drain began, then no more periodic lines.
  pool_logger_->stop();
  pool_logger_->log_all("shutdown");
  std::size_t live = co_await for_each_session([](ClientSession& s) { s.request_drain(); });
  log_info("shutting down: draining sessions", {f("sessions", live)});
  auto deadline = std::chrono::steady_clock::now() + runtime_->snapshot()->config->shutdown_timeout;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (runtime_->active_sessions.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(use_tuple);
  }
  long left = runtime_->active_sessions.load();
  if (left > 0) {
    log_warn("shutdown timeout reached; closing remaining sessions", {f("sessions", left)});
    // Each is told (FATAL 57P01) before its connection closes; give them a moment to say it.
    co_await for_each_session([](ClientSession& s) { s.terminate_now(); });
    auto told = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (runtime_->active_sessions.load() > 0 && std::chrono::steady_clock::now() < told) {
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(use_tuple);
    }
  }
  // Each thread closes its own pools (idle servers get a Terminate), then everything stops.
  auto pending = std::make_shared<std::atomic<std::size_t>>(pool_sets_.size());
  for (std::size_t i = 0; i < pool_sets_.size(); ++i) {
    asio::post(*contexts_[i], [set = pool_sets_[i], pending]() {
      set->close();
      pending->fetch_sub(1);
    });
  }
  auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (pending->load() > 0 && std::chrono::steady_clock::now() < close_deadline) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(use_tuple);
  }
  for (auto& ctx : contexts_) ctx->stop();
}

asio::awaitable<void> Server::signal_loop() {
  for (;;) {
    auto [ec, sig] = co_await signals_->async_wait(use_tuple);
    if (ec) co_return;
    if (sig == SIGHUP) {
      log_info("SIGHUP: reloading configuration");
      reload();
      continue;
    }
    log_info("signal received: graceful shutdown", {f("signal", sig)});
    co_await drain();
    co_return;
  }
}

int Server::run() {
  auto snap = runtime_->snapshot();
  const auto& listen = snap->config->listen;
  auto& main_ctx = *contexts_[0];
  asio::ip::tcp::endpoint ep(asio::ip::make_address(listen.host), listen.port);
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(main_ctx);
  acceptor_->open(ep.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  acceptor_->bind(ep);
  acceptor_->listen(listen.backlog);
  signals_ = std::make_unique<asio::signal_set>(main_ctx, SIGTERM, SIGINT, SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);
  runtime_->pools = pool_registry_;
  admin_ = start_operator_surface(*runtime_, main_ctx.get_executor());
  pool_logger_ = std::make_shared<PoolLogger>(pool_registry_, main_ctx.get_executor());
  pool_logger_->start();
  lag_monitors_ = std::make_unique<migrate::LagMonitors>(runtime_);
  if (mirror::any_mirror_route(*snap->config)) {
    mirror_ = std::make_shared<mirror::MirrorService>(*runtime_);
    runtime_->mirror = mirror_;
    mirror_->start();
    runtime_->pause->set_backlog_probe(mirror_backlog(mirror_));
  }

  log_info("pgshift listening",
           {f("host", listen.host), f("port", acceptor_->local_endpoint().port()),
            f("threads", contexts_.size()), f("routes", snap->config->routes.size())});

  asio::co_spawn(main_ctx, accept_loop(), asio::detached);
  asio::co_spawn(main_ctx, signal_loop(), asio::detached);

  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    asio::post(*contexts_[i], [set = pool_sets_[i]]() { set->start(); });
    asio::co_spawn(*contexts_[i], IdleSweeper::run(), asio::detached);
  }
  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& ctx : contexts_) guards.push_back(asio::make_work_guard(*ctx));
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    threads.emplace_back([ctx = contexts_[i].get()]() { ctx->run(); });
  }
  contexts_[0]->run();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads) t.join();
  pool_logger_->stop();
  pool_logger_.reset();          // its timer lives on io_context 0
  lag_monitors_.reset();         // joins the monitor threads
  if (mirror_) mirror_->stop();  // joins the mirror thread
  stop_operator_surface(*runtime_, admin_);
  log_info("pgshift stopped");
  return 0;
}

}  // namespace pgshift::proxy
