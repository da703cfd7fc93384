#pragma once
// MirrorService: the sidecar's MirrorSink (proxy/runtime/mirror_sink.hpp). One RouteMirror
// per route with sync.mode mirror, made on first use; their replay loops run on one thread
// of their own (an io_context), never on the I/O threads that serve clients.
//
// Thread-safety: the MirrorSink members may be called from any thread. start() and stop()
// from the thread that owns the service (the app).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "proxy/mirror/route_mirror.hpp"
#include "proxy/runtime/mirror_sink.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::mirror {

class MirrorService : public proxy::MirrorSink {
 public:
  explicit MirrorService(proxy::Runtime& runtime);
  ~MirrorService() override;
  void start();
  void stop();  // ends the replay loops (queued transactions stay unapplied) and joins

  bool has_room(std::string_view route) override;
  bool wait_for_room(std::string_view route, std::function<void()> wake) override;
  bool mirroring(std::string_view route) override;
  void submit(std::shared_ptr<proxy::MirrorTxn> txn) override;
  void give_up(std::string_view route, std::string_view why) override;
  void in_doubt(std::string_view route, std::uint64_t session, std::string_view statement) override;
  void note_unsafe(std::string_view route, std::string_view reason,
                   std::string_view statement) override;
  std::optional<boost::json::object> status(std::string_view route) const override;
  proxy::MirrorDrain drain_state(std::string_view route) const override;

 private:
  // The route's mirror; null when the route does not mirror.
  std::shared_ptr<RouteMirror> route(std::string_view name) const;
  // route() through a per-thread cache: no lock once a thread has looked the route up. For
  // the calls made per transaction; the pointer is valid until stop().
  RouteMirror* find(std::string_view name) const;
  std::shared_ptr<Journal> journal_for(const config::Config& cfg, const config::Route& r) const;

  proxy::Runtime& runtime_;
  mutable asio::io_context io_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<RouteMirror>, std::less<>> routes_;
  mutable std::map<std::string, std::shared_ptr<Journal>, std::less<>> journals_;
  std::thread thread_;
  std::atomic<std::uint64_t> generation_{0};  // of the thread-local caches; 0 when stopped
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
};

// Whether any route of `cfg` mirrors (the app makes a MirrorService only then).
bool any_mirror_route(const config::Config& cfg);

}  // namespace pgshift::mirror
