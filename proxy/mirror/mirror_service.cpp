#include "proxy/mirror/mirror_service.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <vector>

#include "proxy/telemetry/log.hpp"

namespace pgshift::mirror {

namespace {
std::atomic<std::uint64_t> next_generation{1};

// The routes an I/O thread has looked up, so that the calls made for every mirrored
// transaction take no process-wide lock. Valid while its service's generation is: routes are
// never removed before stop(), which runs after the I/O threads have ended.
struct RouteCache {
  std::uint64_t generation = 0;
  std::vector<std::pair<std::string, RouteMirror*>> routes;
};
thread_local RouteCache route_cache;
}  // namespace

bool any_mirror_route(const config::Config& cfg) {
  for (const auto& r : cfg.routes) {
    if (r.sync.mode == config::SyncMode::mirror && r.target) return true;
  }
  return false;
}

MirrorService::MirrorService(proxy::Runtime& runtime) : runtime_(runtime) {}

MirrorService::~MirrorService() {
  stop();
}

void MirrorService::start() {
  if (thread_.joinable()) return;
  generation_.store(next_generation.fetch_add(1), std::memory_order_release);
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
  // Routes that mirror start replaying (and show their state) at once.
  auto snap = runtime_.snapshot();
  for (const auto& r : snap->config->routes) route(r.name);
}

void MirrorService::stop() {
  generation_.store(0, std::memory_order_release);  // no thread-local cache is valid now
  {
    std::lock_guard lock(mu_);
    for (auto& [name, r] : routes_) r->stop();
  }
  work_.reset();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  routes_.clear();
}

std::shared_ptr<Journal> MirrorService::journal_for(const config::Config& cfg,
                                                    const config::Route& r) const {
  std::string path = r.sync.mirror.journal_file;
  if (path.empty()) {
    path = cfg.state_file.empty() ? std::string("pgshift-mirror.jsonl")
                                  : cfg.state_file + ".mirror.jsonl";
  }
  auto& j = journals_[path];
  if (!j) j = std::make_shared<Journal>(path);
  return j;
}

RouteMirror* MirrorService::find(std::string_view name) const {
  const auto gen = generation_.load(std::memory_order_acquire);
  RouteCache& cache = route_cache;
  if (cache.generation == gen) {
    for (const auto& [n, r] : cache.routes) {
      if (n == name) return r;
    }
  } else {
    cache.generation = gen;
    cache.routes.clear();
  }
  auto r = route(name);
  // Not cached: a route that does not mirror (it may after a reload), or a stopped service.
  if (!r || gen == 0) return r.get();
  cache.routes.emplace_back(std::string(name), r.get());
  return r.get();
}

std::shared_ptr<RouteMirror> MirrorService::route(std::string_view name) const {
  std::lock_guard lock(mu_);
  if (auto it = routes_.find(name); it != routes_.end()) return it->second;
  if (!work_) return nullptr;  // stopped
  auto snap = runtime_.snapshot();
  const config::Route* r = snap->config->find_route(name);
  if (!r || r->sync.mode != config::SyncMode::mirror || !r->target) return nullptr;
  auto m = std::make_shared<RouteMirror>(runtime_, r->name, io_.get_executor(),
                                         journal_for(*snap->config, *r));
  routes_.emplace(r->name, m);
  asio::co_spawn(io_, m->run(), asio::detached);  // m lives in routes_ until stop() joined
  return m;
}

bool MirrorService::has_room(std::string_view name) {
  auto* r = find(name);
  return !r || r->has_room();
}

bool MirrorService::wait_for_room(std::string_view name, std::function<void()> wake) {
  auto* r = find(name);
  return !r || r->wait_for_room(std::move(wake));
}

bool MirrorService::mirroring(std::string_view name) {
  auto* r = find(name);
  return r && r->mirroring();
}

void MirrorService::submit(std::shared_ptr<proxy::MirrorTxn> txn) {
  if (auto* r = find(txn->route)) {
    r->submit(std::move(txn));
  } else if (txn->done) {
    txn->done(false);
  }
}

void MirrorService::give_up(std::string_view name, std::string_view why) {
  if (auto r = route(name)) r->mark_diverged(why);
}

void MirrorService::in_doubt(std::string_view name, std::uint64_t session,
                             std::string_view statement) {
  if (auto r = route(name)) {
    proxy::MirrorTxn t;
    t.route = std::string(name);
    t.session = session;
    t.fingerprint = std::string(statement);
    r->record_in_doubt(t);
  }
}

void MirrorService::note_unsafe(std::string_view name, std::string_view reason,
                                std::string_view statement) {
  if (auto* r = find(name)) r->note_unsafe(reason, statement);
}

std::optional<boost::json::object> MirrorService::status(std::string_view name) const {
  auto r = route(name);
  if (!r) return std::nullopt;
  return r->status();
}

proxy::MirrorDrain MirrorService::drain_state(std::string_view name) const {
  auto r = route(name);
  if (!r) return {};
  return r->drain_state();
}

}  // namespace pgshift::mirror
