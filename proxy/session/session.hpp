#pragma once
// One client connection: startup (TLS negotiation, cancel requests), authentication, route
// selection, then relaying. Lives on one io_context thread for its whole life (no strand
// needed); every coroutine of a session runs there.
//
// Two relays (docs/architecture.md), chosen once at login (run()):
//  - passthrough (relay/passthrough.*, class PassthroughRelay): session pooling on a route
//    without a target, and replication connections. Bytes are forwarded as they arrive;
//    only message headers are looked at.
//  - multiplexed (relay/mux_client.cpp, client_messages.cpp, mux_server.cpp,
//    server_messages.cpp, servers.cpp...): transaction pooling, and any route with a target.
//    The client's messages are handled one by one: each transaction is routed (source or
//    target, routing/router.hpp) and, in transaction mode, gets a server from the pool at
//    its first message and gives it back at ReadyForQuery 'I' with nothing outstanding.
// How a session ends is common to both (session_end.cpp).
//
// The client stream has exactly one writer at a time: the login code, then the
// server-to-client direction. The client-to-server direction hands anything the proxy
// itself answers to it through local_out_.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "pool/pool_set.hpp"
#include "pool/server_pool.hpp"
#include "pool/upstream.hpp"
#include "proxy/control/health_checker.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/runtime/cancel_registry.hpp"
#include "proxy/runtime/route_select.hpp"
#include "proxy/runtime/runtime.hpp"
#include "proxy/session/client_profile.hpp"
#include "proxy/session/io_buffer.hpp"
#include "proxy/session/mirror_capture.hpp"
#include "proxy/session/mirror_settings.hpp"
#include "proxy/session/prepared_statements.hpp"
#include "proxy/session/relay/relay_state.hpp"
#include "proxy/session/rerun_log.hpp"
#include "proxy/session/thread_sessions.hpp"
#include "proxy/session/txn_tracker.hpp"
#include "proxy/telemetry/metrics.hpp"
#include "routing/classifier.hpp"
#include "routing/router.hpp"
#include "routing/routing_key.hpp"
#include "wire/message_types.hpp"
#include "wire/scanner.hpp"

namespace pgshift::proxy {

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Runtime& runtime, std::shared_ptr<pool::PoolSet> pools, pool::tcp::socket socket,
                std::uint64_t id);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;
  // The way sessions are made: the record goes to a slot of its own (session_records.hpp),
  // not among the allocations of its login.
  static std::shared_ptr<ClientSession> create(Runtime& runtime,
                                               std::shared_ptr<pool::PoolSet> pools,
                                               pool::tcp::socket socket, std::uint64_t id);

  // Runs the session to its end. Spawn with co_spawn on the socket's executor.
  asio::awaitable<void> run();
  // Asks the session to end at its next transaction boundary (SIGTERM drain). Must be
  // called on the session's executor.
  void request_drain();
  // Ends the session now, inside a transaction too (the shutdown timeout passed): the client
  // gets FATAL 57P01 and its server is closed. Must be called on the session's executor.
  void terminate_now();
  asio::any_io_executor get_executor() { return client_.get_executor(); }
  // Called by the thread's IdleSweeper every period while the session is hot: a session
  // that did nothing since the last call gives back its read buffers and waits for its
  // client without holding any (docs/architecture.md, "Hot and idle sessions"). Returns
  // false when the session leaves the sweeper's list.
  bool sweep_idle();

 private:
  friend class ThreadSessions;
  // A parked client became readable (ThreadSessions): its client direction runs again.
  void on_client_readable();
  // What a wake-up of an idle client brought, read without blocking: plain TCP bytes go
  // into client_buf_; TLS bytes are only peeked at (OpenSSL reads them).
  enum class Wakeup : std::uint8_t { bytes, closed, spurious };
  Wakeup read_wakeup();
  // A parked client socket Asio let go of (parked_fd_) is registered with it again.
  void restore_client_socket();
  enum class EndReason : std::uint8_t {
    none,
    client_closed,
    client_protocol_error,
    server_closed,
    server_protocol_error,
    drain,
    limit_exceeded  // a message over a memory limit inside a transaction or batch
  };
  static std::string_view to_string(EndReason r);

  // One side of the route (source or target): how to reach it and the server in use.
  struct SideState {
    std::shared_ptr<const pool::UpstreamParams> upstream;
    std::shared_ptr<pool::ServerPool> pool;
    pool::PooledConnection conn;
  };

  // What the proxy knows about a statement (a Query, or a Parse by statement name).
  struct StatementInfo {
    routing::Classification c;
    bool valid = false;
  };

  // ---- login (login.cpp) ----
  asio::awaitable<bool> login();
  // The steps of login(), in order.
  asio::awaitable<bool> authenticate(const wire::StartupPacket& startup);
  asio::awaitable<bool> take_route();
  bool choose_relay(const wire::StartupPacket& startup);
  asio::awaitable<bool> greet();
  asio::awaitable<bool> negotiate_startup(wire::StartupPacket& startup);
  asio::awaitable<bool> answer_encryption_request(bool ssl, bool& ssl_done, bool& gss_done);
  asio::awaitable<void> handle_cancel_request(wire::CancelKey key);
  asio::awaitable<bool> attach_at_login(const RouteRuntime& route);
  asio::awaitable<bool> attach_replication();
  // Runs login() under limits.login_timeout_ms: when it passes, login() is cancelled and
  // the client gets a FATAL naming the phase that timed out (login_phase_).
  asio::awaitable<bool> login_within_deadline();
  asio::awaitable<void> send_login_timeout(std::chrono::milliseconds limit);

  // ---- the end of a session, for both relays (session_end.cpp) ----
  friend class PassthroughRelay;  // relay/passthrough.hpp
  void end(EndReason reason, std::string detail = {});
  asio::awaitable<void> say_goodbye();  // the end-of-session error for the client, if any
  asio::awaitable<void> release_all(bool server_ok);

  // ---- sides and servers (relay/servers.cpp) ----
  // The side's pool (made on first use), or null with `error` filled.
  pool::ServerPool* side_pool(routing::Side side, std::string& error);
  // Makes `side` the active server, acquiring one if the session holds none there.
  // `options`: a split read (non-authoritative side) makes one connect attempt and falls back.
  asio::awaitable<bool> attach(routing::Side side, pool::AcquireError& error,
                               pool::AcquireOptions options = {});
  // Transaction mode: gives the active server back (clean) at a transaction boundary.
  void release_active();
  // The active server failed: closes it (after the client direction has stopped writing
  // to it) and forgets everything outstanding on it.
  asio::awaitable<void> dispose_active();
  void set_active(routing::Side side);
  // Makes sure the server direction runs when it has work (a server to read, answers to
  // write, a goodbye to say), and interrupts its idle wait. It is not running while the
  // session is idle without a server: idle clients hold no coroutine frame.
  void wake_server_reader();
  // The client is idle: park it on the thread's shared readiness wait (ThreadSessions), so
  // it holds no Asio operation and no coroutine frame until its next bytes.
  void wait_for_client();
  // The client sent something: keep the read buffers (IdleSweeper).
  void become_hot();
  routing::Side authoritative_side() const;
  // The active server holds session state (session mode's authoritative server, or any
  // server of a pinned session): losing it ends the session.
  bool server_holds_state() const {
    return pinned_ || (!txn_mode_ && active_side_ == authoritative_side());
  }

  // ---- multiplexed relay: client to server (relay/mux_client.cpp, client_messages.cpp) ----
  asio::awaitable<void> mux_client_to_server();
  bool park_if_idle(const wire::MessageScanner& scanner, bool readable);
  void forward_copy_piece(std::span<const std::uint8_t> raw);  // a piece of CopyData
  // What the client direction reads whole: every frontend message but CopyData.
  static wire::MessageScanner::TypeSet mux_client_types();
  // Handles one whole client message; false when the client said Terminate.
  asio::awaitable<bool> on_client_message(std::uint8_t type, std::span<const std::uint8_t> body,
                                          std::span<const std::uint8_t> raw);
  asio::awaitable<bool> start_transaction(const routing::Classification& c, std::uint8_t trigger);
  void refuse_transaction(std::uint8_t trigger, std::string_view sqlstate, std::string_view message,
                          std::string_view detail);
  asio::awaitable<bool> wait_while_paused(std::uint8_t trigger);
  // The router's decision; the caller counts it once the server is known (a connect fallback
  // is counted as a fallback, not as its first choice).
  routing::RouteDecision choose_side(const routing::Classification& c,
                                     const routing::MigrationState& state);
  // The route's open-transaction counter (PauseGate::counter), for the fleet barrier: +1
  // when a transaction starts, -1 when it ends (or the session does); idempotent.
  void count_transaction();
  void uncount_transaction();
  void note_statement(const routing::Classification& c);
  // Before routing (client_messages.cpp): the client learns of a lost transaction, or the
  // message is skipped up to the Sync after a proxy error. True when it was answered.
  bool answered_without_server(std::uint8_t type);
  // The statement records of Parse, Bind and Close; false when the message was malformed
  // (the session ends).
  bool note_parse(std::span<const std::uint8_t> body);
  bool note_bind(std::span<const std::uint8_t> body);
  bool note_close(std::span<const std::uint8_t> body);
  bool note_statement_message(std::uint8_t type, std::span<const std::uint8_t> body);
  void forward_query(std::string_view sql, const routing::Classification& c,
                     std::span<const std::uint8_t> body, std::span<const std::uint8_t> raw);
  bool answer_sync_locally();
  void log_for_rerun(bool boundary, std::span<const std::uint8_t> raw);
  void end_without_server();
  void hold_until_routed(std::uint8_t type, std::span<const std::uint8_t> raw);
  bool at_boundary() const { return tracker_.idle(); }
  bool forward(std::uint8_t type, std::span<const std::uint8_t> body,
               std::span<const std::uint8_t> raw);
  asio::awaitable<void> flush_to_server();
  asio::awaitable<bool> flush_pending();
  void answer_parses_locally();
  void answer_routing_key_locally(const routing::Classification& c);
  void reply_error(std::string_view sqlstate, std::string_view message,
                   std::string_view detail = {});
  // A message the relay would hold whole (scanner.bytes_needed() past the buffer): reserves
  // room for it within limits.max_buffered_message_length and the process's budget, or
  // refuses it (refusing_, and the scanner hands its bytes out as pieces to drop). False
  // when refused.
  bool admit_buffered(wire::MessageScanner& scanner, IoBuffer& buf);
  // The last piece of a refused message was dropped: the client is told (below).
  void finish_refusal(wire::MessageScanner& scanner);
  // Refuses a message: an ErrorResponse when nothing of a transaction or batch is
  // outstanding (the session goes on), else the session ends with it (FATAL).
  void answer_refused(std::uint8_t type, std::string_view sqlstate, const std::string& message,
                      std::string_view detail);
  // Holds `raw` (a P/B/D/C at a boundary) in RelayState::pending, charged to the budget;
  // false when refused (the client has been answered).
  bool hold_pending(std::uint8_t type, std::span<const std::uint8_t> raw);
  void clear_pending();
  void queue_local(const wire::Bytes& bytes);
  const StatementInfo* find_statement(std::string_view name);

  // ---- multiplexed relay: server to client (relay/mux_server.cpp, server_messages.cpp) ----
  asio::awaitable<void> mux_server_to_client();
  // The server direction's state between reads (its coroutine's locals).
  struct S2cLoop {
    S2cLoop(const wire::Limits& limits, std::uint64_t g, bool has_target)
        : types(server_scanner_types(has_target)),
          scanner(wire::Direction::backend, limits, types),
          gen(g) {}
    // Another server became active: nothing of the old one is kept.
    void restart(const wire::Limits& limits, std::uint64_t next_gen);
    wire::MessageScanner::TypeSet types;
    wire::MessageScanner scanner;
    IoBuffer buf;
    wire::Bytes kept;        // the chunk without dropped messages, when there are any
    std::uint64_t gen;       // server_gen_ of the server read
    bool unscanned = false;  // buf holds bytes the idle wait read and the scan has not seen
    bool server_ok = true;   // false once the server lost framing
    bool piece_keep = true;  // whether the client gets the message being relayed in pieces
    bool more = false;       // the last read filled its buffer (Stream::read_some_drained)
  };
  // What one scan of the server's bytes found.
  struct Scanned {
    std::size_t pos = 0;     // bytes scanned (whole messages and pieces)
    bool dropped = false;    // some are left out: the client gets S2cLoop::kept
    bool fatal = false;      // a FATAL from a server that holds no session state
    bool rerun_due = false;  // the fenced statement's ReadyForQuery came: re-run it
  };
  enum class Step : std::uint8_t { go, again, stop };  // of the server direction's loop
  static wire::MessageScanner::TypeSet server_scanner_types(bool has_target);
  asio::awaitable<Step> read_server(S2cLoop& l, pool::ServerConnection* s);
  Scanned scan_server_bytes(S2cLoop& l, pool::ServerConnection* s);
  // One whole server message; `keep`: whether the client gets it. False when the session
  // ends (the server lost framing).
  bool on_server_message(const wire::ScanResult& r, pool::ServerConnection* s, S2cLoop& l,
                         Scanned& sc, bool& keep);
  bool on_server_ready(std::span<const std::uint8_t> body, pool::ServerConnection* s, Scanned& sc);
  void on_server_error(const wire::ScanResult& r, pool::ServerConnection* s, S2cLoop& l,
                       Scanned& sc, bool& keep);
  asio::awaitable<Step> deliver_server_bytes(S2cLoop& l, const Scanned& sc);
  asio::awaitable<bool> on_server_failure(std::string detail);
  void on_transaction_end();

  // ---- stale sidecar: the old side's fence (relay/fence_retry.cpp, docs/cutover.md) ----
  // The server direction saw the fence error of a transaction that ran nothing but harmless
  // statements (RerunLog) and dropped everything up to its ReadyForQuery: refresh the route
  // state and, once it names another authoritative side, roll the old side back if it is in
  // a transaction, then re-run the transaction's messages there; else answer 40001. False
  // when the session ends.
  asio::awaitable<bool> retry_after_fence();
  // The fence error just seen may be re-run: the transaction is logged whole and harmless,
  // and nothing after it has been sent.
  bool fence_rerunnable() const;
  // One server message (or the first piece of one) on its way to the client (`keep`):
  // the re-run bookkeeping. Returns whether the client still gets it.
  bool rerun_track(std::uint8_t type, std::span<const std::uint8_t> body, bool keep);
  asio::awaitable<void> rerun_messages();
  // Asks the state store to re-read and waits (bounded) until the route's authoritative side
  // is no longer `fenced`.
  asio::awaitable<bool> wait_route_moved(routing::Side fenced);

  Runtime& runtime_;
  // The thread's roster (ThreadSessions), an intrusive list; and while parked, the
  // reference that keeps the session alive.
  ThreadSessions* roster_ = nullptr;
  ClientSession* roster_prev_ = nullptr;
  ClientSession* roster_next_ = nullptr;
  std::shared_ptr<ClientSession> parked_self_;
  int parked_fd_ = -1;        // parked: the client socket, released by Asio
  bool in_park_set_ = false;  // the client socket is in the thread's epoll set
  bool client_v6_ = false;    // the client socket's protocol, to give it back to Asio
  // (Small members sit together: an idle client is mostly this object, docs/benchmarks.md.)
  bool registered_ = false;  // client_key_ is in the cancel registry
  bool drain_requested_ = false;
  bool mux_ = false;       // multiplexed relay (transaction mode or a route with a target)
  bool txn_mode_ = false;  // pool.mode transaction
  bool pinned_ = false;    // session state on its server(s): never released before the end
  routing::Side active_side_ = routing::Side::source;
  bool txn_counted_ = false;
  EndReason end_reason_ = EndReason::none;
  SnapshotPtr snap_;
  std::uint64_t id_;
  pool::Stream client_;
  IoBuffer client_buf_;
  std::shared_ptr<pool::PoolSet> pools_;
  std::unique_ptr<pool::ServerConnection> direct_;  // replication: never pooled
  pool::ServerConnection* server_ = nullptr;        // the active server (either kind)
  CancelSlot cancel_slot_;  // in the cancel registry under client_key_ while registered_
  wire::CancelKey client_key_{};
  // Who the client is and the parameters every server it is handed is brought to
  // (pool/server_params.hpp). Built by login(), then shared, read-only, with the thread's
  // other sessions of the same values (ClientProfile::intern).
  std::shared_ptr<ClientProfile> profile_;
  // The route's name: in snap_, as route_ (8 bytes here instead of a 32-byte copy in every
  // idle client); empty before the route is chosen.
  const std::string* route_name_ = &kNoRouteName;
  static inline const std::string kNoRouteName;
  const std::string& route_name() const { return *route_name_; }
  const RouteRuntime* route_ = nullptr;  // points into snap_
  ClientSlot client_slot_;  // the route's max_client_connections slot, from route choice on
  TxnTracker tracker_;
  wire::Limits limits_;
  // Where login() is, for the timeout's message.
  enum class LoginPhase { startup, tls_handshake, authentication, upstream, greeting };
  static std::string_view login_phase_name(LoginPhase phase);
  // What only the login needs: dropped by run() once the client is logged in.
  struct LoginState {
    std::string peer;  // address:port, for the login's log lines
    LoginPhase phase = LoginPhase::startup;
    std::unique_ptr<asio::steady_timer> timer;  // limits.login_timeout_ms
  };
  std::unique_ptr<LoginState> login_;
  // Why the session ended, when there is more to say than end_reason_ (made by end()).
  struct EndNote {
    std::string detail;
    std::string sqlstate;  // limit_exceeded: the SQLSTATE the client gets
  };
  std::unique_ptr<EndNote> end_note_;
  EndNote& end_note() {
    if (!end_note_) end_note_ = std::make_unique<EndNote>();
    return *end_note_;
  }
  const std::string& end_detail() { return end_note().detail; }
  // A message refused by admit_buffered() whose bytes are being dropped.
  struct Refusal {
    std::uint8_t type = 0;
    std::string sqlstate, message, detail;
  };
  std::unique_ptr<Refusal> refusing_;
  const RouteMetrics* route_metrics_ = nullptr;  // set once the client is logged in
  void count_login_failure(LoginFailure reason) { metrics().login_failures(reason).Increment(); }

  // ---- multiplexed relay state ----
  std::array<SideState, 2> sides_;
  std::uint64_t server_gen_ = 0;             // bumped whenever the active server changes
  std::unique_ptr<routing::KeyState> keys_;  // routes with a target only
  RouteHealthPtr health_;
  std::shared_ptr<PauseGate::RouteCounter> open_counter_;  // made at the first transaction
  StatementMapper mapper_;
  // What the multiplexed relay keeps between messages besides the statement mapper: made
  // on first use, and dropped when the session goes idle holding nothing in it
  // (idle.cpp), so idle clients do not carry it.
  struct RelayState {
    ResponseFilter filter;
    std::unordered_map<std::string, StatementInfo> statements;  // by client name
    std::unique_ptr<StatementInfo> unnamed_statement;           // made at the first unnamed Parse
    // The statement of the last Bind (what the next Execute runs): points into statements
    // or at *unnamed_statement; null when unknown (routed as a write).
    const StatementInfo* last_bind = nullptr;
    wire::Bytes pending;          // Parse/Bind/Describe/Close held until the transaction is routed
    MemoryCharge pending_charge;  // pending, when large (limits.buffered_memory_bytes)
    bool pending_only_named_parses = false;  // pending holds named Parses and nothing else
    bool last_parse_named = false;
    wire::Bytes out;  // bytes for the server, written by flush_to_server()
    // A large message written after `out` straight from where it is held (the client's read
    // buffer), not copied; valid until the caller's next flush_to_server().
    std::span<const std::uint8_t> direct;
    std::uint64_t out_gen = 0;
    std::string txn_key;  // the current transaction's routing key
    RerunLog rerun;       // stale sidecar: the transaction, while it may run again elsewhere
    // Nothing in it that a fresh one would not have. An unnamed statement counts as
    // nothing: without its record the next Bind of it is routed as a write (safe).
    bool disposable() const {
      return filter.empty() && statements.empty() && pending.empty() && out.empty() &&
             direct.empty();
    }
  };
  std::unique_ptr<RelayState> rs_;
  bool filter_empty() const { return !rs_ || rs_->filter.empty(); }
  RelayState& rs() {
    if (!rs_) rs_ = std::make_unique<RelayState>();
    return *rs_;
  }
  wire::Bytes local_out_;  // the proxy's own answers, written by the server direction

  // ---- the relay's state machine (relay/relay_state.hpp, docs/architecture.md) ----
  // One value per direction, each changed only by its transition function (debug builds
  // assert that the step is legal). The hot path pays one byte store per change.
  C2s c2s_ = C2s::running;
  S2c s2c_ = S2c::stopped;
  Fence fence_ = Fence::none;  // the server direction's stale-sidecar re-run
  void c2s_to(C2s next) {
    assert(legal(c2s_, next));
    c2s_ = next;
  }
  void s2c_to(S2c next) {
    assert(legal(s2c_, next));
    s2c_ = next;
  }
  void fence_to(Fence next) {
    assert(legal(fence_, next));
    fence_ = next;
  }
  // The server direction waits for the server's next bytes with none held (cancellable).
  bool s2c_idle_wait() const { return s2c_ == S2c::idle_wait || s2c_ == S2c::waking; }
  // The fenced side's answers are being dropped (the fence error's, then the rollback's).
  bool fence_dropping() const { return fence_ == Fence::dropping || fence_ == Fence::rolling_back; }
  // Facts that are not one direction's state (docs/architecture.md says why each is apart):
  // the client's protocol position, which both directions set and may hold at once...
  bool skip_until_sync_ = false;   // after a proxy error in the extended protocol
  bool lost_transaction_ = false;  // the server died while the client was in a transaction
  // ...a write to the active server in progress, by either direction (the server direction
  // writes when it re-runs a fenced transaction); the other waits for it before it closes,
  // gives back or writes to that server...
  bool writing_to_server_ = false;
  // ...and the session's temperature. Hot: the session was active lately, so both
  // directions keep their read buffers and keep a read pending (no epoll re-arm and no new
  // coroutine per message). Idle sessions wait for readiness without buffers instead; the
  // IdleSweeper cools a hot session down after a quiet period.
  bool hot_ = false;
  bool hot_listed_ = false;  // on the thread's IdleSweeper list
  // The current transaction (from its first message to ReadyForQuery 'I').
  bool txn_wrote_ = false;
  bool logged_pin_ = false;
  bool mirror_txn_ = false;  // the current transaction is mirrored (mirror_tap.cpp)
  routing::Side mirror_to_ = routing::Side::target;
  std::uint32_t activity_ = 0, swept_activity_ = 0;  // client reads, and at the last sweep
  // One direction waits on it for the other to let go of a server (made on first use).
  std::unique_ptr<asio::steady_timer> handoff_timer_;
  asio::awaitable<void> wait_handoff();
  void notify_handoff() {
    if (handoff_timer_) handoff_timer_->cancel();
  }
  std::chrono::steady_clock::time_point query_start_{};  // of the current transaction

  // ---- mirrored writes (relay/mirror_tap.cpp, docs/sync.md "Mirror mode") ----
  // Decides at the start of a transaction whether it is mirrored; with overflow `block`
  // waits for room in the route's queue. False when the client was answered instead.
  asio::awaitable<bool> decide_mirroring(const routing::MigrationState* state, routing::Side side,
                                         routing::Side authoritative);
  asio::awaitable<bool> wait_mirror_room();  // overflow block: false at the deadline or end
  // A frontend message that forward() has just put out, copied into the capture.
  void mirror_frontend(std::uint8_t type, std::span<const std::uint8_t> body,
                       std::span<const std::uint8_t> raw);
  // The server's messages of a mirrored transaction; at its end the committed part goes to
  // Runtime::mirror.
  void mirror_backend(std::uint8_t type, std::span<const std::uint8_t> body);
  void mirror_ready(char status);
  // The transaction's answers will never be read (client or server gone): a write that may
  // have committed is recorded as in doubt; the capture is dropped.
  void mirror_abandon();
  // ack sync: the server direction holds the client's ReadyForQuery until the replays it
  // waits for are done (sync.mirror.ack, relay/mirror_tap.cpp).
  asio::awaitable<void> wait_mirror_acks();
  struct MirrorAcks {
    explicit MirrorAcks(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    int pending = 0;  // on the session's thread only
  };
  std::shared_ptr<MirrorAcks> mirror_acks_;  // made at the first ack-sync transaction
  std::unique_ptr<MirrorCapture> mirror_;    // made at the first mirrored transaction
  // The session's settings for its replays (mirror_settings.hpp): a statement that may change
  // them, and the server's answers. Made on a mirror-mode route at the first such statement
  // or mirrored transaction.
  void mirror_note_settings(const routing::Classification& c, std::string_view sql);
  void mirror_settings_answer(std::uint8_t type, std::span<const std::uint8_t> body);
  std::unique_ptr<MirrorSettings> mirror_settings_;
  std::string_view startup_options() const;  // the client's `options` startup parameter
};

}  // namespace pgshift::proxy
