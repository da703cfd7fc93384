// Login phase of a client session: TLS negotiation, startup packet, cancel requests,
// authentication, route choice and the upstream connection.
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>

#include "proxy/session/client_auth.hpp"
#include "proxy/session/message_io.hpp"
#include "proxy/session/relay/passthrough.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/builder.hpp"

namespace pgshift::proxy {

namespace {
// Startup parameters that describe the connection, not the session: never forwarded.
bool forwardable(std::string_view key, const config::Route* route) {
  if (key == "user" || key == "database") return false;
  if (route && key == route->routing_key.startup_parameter) return false;
  return !key.starts_with("_pq_.");
}

// The client's IP address without the port; an IPv4 client of a dual-stack listener
// (::ffff:a.b.c.d) as plain IPv4, as PostgreSQL shows it.
std::string address_of(pool::Stream& stream) {
  boost::system::error_code ec;
  auto ep = stream.socket().remote_endpoint(ec);
  if (ec) return "";
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

// replication=true (or on, yes, 1) asks for a physical replication connection, which
// pg_hba.conf matches with the `replication` database keyword only; replication=database
// is a logical one, matched by its database name.
bool physical_replication(const wire::StartupPacket& startup) {
  const std::string* v = startup.find("replication");
  if (!v) return false;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "true" || s == "on" || s == "yes" || s == "1";
}

// A request code read where only a startup packet may come: PostgreSQL takes it for a
// protocol version and answers FATAL 0A000 with this message ("unsupported frontend
// protocol 1234.5679: server supports 3.0 to 3.0" for a second SSLRequest).
std::string unsupported_protocol(std::uint32_t code) {
  return "unsupported frontend protocol " + std::to_string(code >> 16) + "." +
         std::to_string(code & 0xffff) + ": server supports 3.0 to 3.0";
}
}  // namespace

std::string_view ClientSession::login_phase_name(LoginPhase phase) {
  switch (phase) {
    case LoginPhase::startup:
      return "startup";
    case LoginPhase::tls_handshake:
      return "tls_handshake";
    case LoginPhase::authentication:
      return "authentication";
    case LoginPhase::upstream:
      return "upstream";
    case LoginPhase::greeting:
      return "greeting";
  }
  return "unknown";
}

ClientSession::ClientSession(Runtime& runtime, std::shared_ptr<pool::PoolSet> pools,
                             pool::tcp::socket socket, std::uint64_t id)
    : runtime_(runtime),
      snap_(runtime.snapshot()),
      id_(id),
      client_(std::move(socket)),
      pools_(std::move(pools)),
      mapper_(id) {
  login_ = std::make_unique<LoginState>();
  profile_ = std::make_shared<ClientProfile>();
  boost::system::error_code ec;
  auto ep = client_.socket().remote_endpoint(ec);
  if (!ec) login_->peer = ep.address().to_string() + ":" + std::to_string(ep.port());
  client_v6_ = !ec && ep.address().is_v6();
  client_.socket().set_option(pool::tcp::no_delay(true), ec);
  client_.socket().set_option(asio::socket_base::keep_alive(true), ec);
  limits_.max_message_length = snap_->config->limits.max_message_length;
  runtime_.active_sessions.fetch_add(1);
  metrics().client_accepted().Increment();
}

ClientSession::~ClientSession() {
  if (roster_) roster_->remove(*this);
  if (parked_fd_ >= 0) ::close(parked_fd_);  // only when the io_context shuts down
  uncount_transaction();                     // a session that ended inside a transaction
  if (registered_) runtime_.cancels.unregister(client_key_);
  for (auto& side : sides_) {
    if (side.conn) side.conn.release(pool::ReleaseState::dirty);
  }
  if (direct_) direct_->stream.close();
  client_.close();
  if (route_metrics_) route_metrics_->client_connections->Decrement();
  if (hot_) metrics().hot_sessions().Decrement();
  runtime_.active_sessions.fetch_sub(1);
}

// The deadline of a login, shared by login_within_deadline(), the login coroutine and the
// timer's handler: each may finish after the others, so none points into another's frame.
struct LoginDeadline {
  explicit LoginDeadline(const asio::any_io_executor& ex) : finished(ex) {
    finished.expires_at(asio::steady_timer::time_point::max());
  }
  asio::cancellation_signal cancel;  // stops the login coroutine's current wait
  asio::steady_timer finished;       // cancelled when the login ends, either way
  bool expired = false;
  bool done = false;
  bool ok = false;
};

asio::awaitable<bool> ClientSession::login_within_deadline() {
  const auto limit = snap_->config->limits.login_timeout;
  const auto executor = client_.get_executor();
  auto deadline = std::make_shared<LoginDeadline>(executor);
  login_->timer = std::make_unique<asio::steady_timer>(executor);
  login_->timer->expires_after(limit);
  login_->timer->async_wait([deadline](boost::system::error_code ec) {
    if (ec || deadline->done) return;
    deadline->expired = true;
    deadline->cancel.emit(asio::cancellation_type::terminal);
  });
  // login() runs as its own coroutine so that the deadline can cancel whatever it waits for
  // (the client, a pool's queue, an upstream connect). It is detached and reports through
  // `finished`, so that its end never resumes this coroutine from inside its own frame.
  asio::co_spawn(
      executor,
      [self = shared_from_this(), deadline]() -> asio::awaitable<void> {
        try {
          deadline->ok = co_await self->login();
        } catch (const std::exception& e) {
          // The next await after the deadline's signal throws; anything else is unexpected.
          if (!deadline->expired) {
            log_warn("client login failed", {f("peer", self->login_->peer), f("error", e.what())});
          }
        }
        deadline->done = true;
        deadline->finished.cancel();
      },
      asio::bind_cancellation_slot(deadline->cancel.slot(), asio::detached));
  while (!deadline->done) {
    co_await deadline->finished.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  login_->timer->cancel();
  if (deadline->expired && !deadline->ok) {
    count_login_failure(LoginFailure::timeout);
    co_await send_login_timeout(limit);
  }
  co_return deadline->ok;
}

// PostgreSQL says nothing when authentication_timeout passes; pgshift's login also waits for
// an upstream server, so the client is told which part took too long.
asio::awaitable<void> ClientSession::send_login_timeout(std::chrono::milliseconds limit) {
  const std::string ms = std::to_string(limit.count());
  std::string sqlstate = "57014", message = "canceling authentication due to timeout";
  std::string detail =
      "The client did not complete its login within " + ms + " ms (limits.login_timeout_ms).";
  switch (login_->phase) {
    case LoginPhase::tls_handshake:
      log_warn("client login timed out", {f("session", id_), f("peer", login_->peer),
                                          f("phase", "tls_handshake"), f("timeout_ms", ms)});
      co_return;  // no channel to say it on: the handshake is half done
    case LoginPhase::upstream: {
      ClientError e = upstream_wait_timed_out(profile_->identity.database, route_name(), ms);
      sqlstate = std::move(e.sqlstate);
      message = std::move(e.message);
      detail = std::move(e.detail);
      break;
    }
    case LoginPhase::startup:
    case LoginPhase::authentication:
    case LoginPhase::greeting:
      break;
  }
  log_warn("client login timed out",
           {f("session", id_), f("peer", login_->peer), f("user", profile_->identity.user),
            f("database", profile_->identity.database), f("phase", login_phase_name(login_->phase)),
            f("timeout_ms", ms)});
  co_await send_error(client_, sqlstate, message, "FATAL", detail);
}

asio::awaitable<void> ClientSession::handle_cancel_request(wire::CancelKey key) {
  auto target = runtime_.cancels.lookup(key);
  if (!target) {
    log_debug("cancel request for an unknown or idle session", {f("peer", login_->peer)});
    metrics().cancel_requests(CancelResult::unknown_key).Increment();
    co_return;
  }
  log_info("forwarding cancel request",
           {f("peer", login_->peer), f("upstream", target->upstream->host)});
  auto ec = co_await pool::send_cancel(*target->upstream, target->server_key);
  if (ec) log_warn("cancel request failed", {f("error", ec.message())});
  metrics().cancel_requests(ec ? CancelResult::failed : CancelResult::forwarded).Increment();
}

// An SSLRequest (`ssl`) or a GSSENCRequest: answered S (then the TLS handshake) or N, once
// each. False when the session ends.
asio::awaitable<bool> ClientSession::answer_encryption_request(bool ssl, bool& ssl_done,
                                                               bool& gss_done) {
  if (ssl ? ssl_done : gss_done) {
    log_warn("client repeated an encryption request", {f("peer", login_->peer)});
    count_login_failure(LoginFailure::invalid_startup);
    metrics().protocol_errors(ProtocolDirection::client).Increment();
    std::string message =
        unsupported_protocol(ssl ? wire::kSslRequestCode : wire::kGssEncRequestCode);
    co_await send_error(client_, "0A000", message);
    co_return false;
  }
  // Anything sent after the request and before the handshake would be plaintext the
  // client believes is encrypted: a protocol error (CVE-2021-23214).
  if (!client_buf_.empty()) {
    log_warn("client sent data after SSLRequest before the TLS handshake",
             {f("peer", login_->peer)});
    co_return false;
  }
  bool tls = ssl && snap_->client_tls && !client_.is_tls();
  if (!ssl) log_debug("GSSENCRequest answered N (no GSSAPI encryption)", {f("peer", login_->peer)});
  std::uint8_t answer = tls ? 'S' : 'N';
  if (co_await client_.write_all(std::span<const std::uint8_t>(&answer, 1))) {
    co_return false;
  }
  if (ssl) {
    ssl_done = true;
    gss_done = gss_done || tls;  // no GSSAPI encryption inside TLS
  } else {
    gss_done = true;
  }
  if (tls) {
    login_->phase = LoginPhase::tls_handshake;
    if (auto ec = co_await client_.handshake(*snap_->client_tls, asio::ssl::stream_base::server)) {
      log_warn("client TLS handshake failed", {f("peer", login_->peer), f("error", ec.message())});
      count_login_failure(LoginFailure::tls_handshake);
      co_return false;
    }
    login_->phase = LoginPhase::startup;
  }
  co_return true;
}

asio::awaitable<bool> ClientSession::negotiate_startup(wire::StartupPacket& startup) {
  const auto& tls_cfg = snap_->config->listen.tls;
  // As ProcessStartupPacket in PostgreSQL 15's postmaster.c: each encryption request is
  // answered once. After an SSLRequest, a second SSLRequest is refused, and so is a
  // GSSENCRequest inside TLS; after a GSSENCRequest, a second one is refused.
  bool ssl_done = false, gss_done = false;
  for (;;) {
    wire::StartupResult r;
    if (auto ec = co_await read_startup_packet(client_, client_buf_, limits_, r)) {
      log_debug("client left during startup", {f("peer", login_->peer), f("error", ec.message())});
      co_return false;
    }
    switch (r.kind) {
      case wire::StartupKind::ssl_request:
      case wire::StartupKind::gssenc_request:
        if (!co_await answer_encryption_request(r.kind == wire::StartupKind::ssl_request, ssl_done,
                                                gss_done)) {
          co_return false;
        }
        continue;
      case wire::StartupKind::cancel_request:
        co_await handle_cancel_request(r.cancel);
        co_return false;
      case wire::StartupKind::startup:
        if (tls_cfg.mode == config::ClientTlsMode::require && !client_.is_tls()) {
          count_login_failure(LoginFailure::tls_required);
          co_await send_error(client_, "28000", "pgshift requires TLS for client connections",
                              "FATAL", "Connect with sslmode=require or stronger.");
          co_return false;
        }
        startup = std::move(r.startup);
        co_return true;
      case wire::StartupKind::error:
        log_warn("invalid startup packet",
                 {f("peer", login_->peer), f("error", r.error.message())});
        count_login_failure(LoginFailure::invalid_startup);
        metrics().protocol_errors(ProtocolDirection::client).Increment();
        co_await send_error(client_, "08P01", "invalid startup packet: " + r.error.message());
        co_return false;
      case wire::StartupKind::need_more:
        co_return false;  // unreachable: read_startup_packet never returns need_more
    }
  }
}

// Authenticates the client (client_auth.cpp). False when it was refused.
asio::awaitable<bool> ClientSession::authenticate(const wire::StartupPacket& startup) {
  login_->phase = LoginPhase::authentication;
  ClientAuthRequest auth_request{.user = profile_->identity.user,
                                 .database = profile_->identity.database,
                                 .address = address_of(client_),
                                 .ssl = client_.is_tls(),
                                 .physical_replication = physical_replication(startup)};
  auto auth = co_await authenticate_client(client_, client_buf_, limits_, *snap_, auth_request);
  if (!auth.ok) {
    count_login_failure(auth.kind);
    // Throttled refusals come in floods: the throttle logs each burst once, so each one is
    // only a debug line.
    const auto log = auth.kind == LoginFailure::throttled ? log_debug : log_warn;
    log("client authentication failed",
        {f("peer", login_->peer), f("user", profile_->identity.user), f("reason", auth.failure)});
    co_return false;
  }
  profile_->identity.user_entry = auth.entry;
  profile_->identity.scram_client_key = auth.scram_client_key;

  co_return true;
}

// The route for the client's database and user, and a client slot on it
// (pool.max_client_connections). False when the client was refused.
asio::awaitable<bool> ClientSession::take_route() {
  const RouteRuntime* route =
      select_route(*snap_, profile_->identity.database, profile_->identity.user);
  if (!route) {
    co_await send_error(client_, "3D000",
                        "database \"" + profile_->identity.database + "\" does not exist");
    log_info("no route for database",
             {f("peer", login_->peer), f("database", profile_->identity.database)});
    count_login_failure(LoginFailure::unknown_database);
    co_return false;
  }
  route_name_ = &route->route->name;
  route_ = route;
  const config::Route& rc = *route->route;
  // pool.max_client_connections, before the client can wait for or take a server. The slot
  // is held from here to the end of the session (client_slot_ is destroyed with it).
  client_slot_ = ClientSlot::try_take(route->client_slots, rc.pool.max_client_connections);
  if (!client_slot_) {
    count_login_failure(LoginFailure::too_many_clients);
    log_warn(
        "client refused: route is at max_client_connections",
        {f("session", id_), f("peer", login_->peer), f("user", profile_->identity.user),
         f("route", route_name()), f("max_client_connections", rc.pool.max_client_connections)});
    // (A named local, not a temporary inside co_await: GCC 12 destroys those twice.)
    std::string message = "too many client connections for route \"" + route_name() +
                          "\" (max_client_connections " +
                          std::to_string(rc.pool.max_client_connections) + ")";
    co_await send_error(client_, "53300", message);
    co_return false;
  }
  co_return true;
}

// Which relay the session runs (passthrough or multiplexed), and what the client's servers
// are brought to. Returns whether it is a replication connection.
bool ClientSession::choose_relay(const wire::StartupPacket& startup) {
  const config::Route& rc = *route_->route;
  txn_mode_ = rc.pool.mode == config::PoolMode::transaction;
  mux_ = txn_mode_ || rc.target.has_value();
  bool replication = false;
  for (auto& [k, v] : startup.params) {
    if (forwardable(k, route_->route)) profile_->identity.startup_params.emplace_back(k, v);
    if (k == "replication") replication = true;
  }
  if (replication) mux_ = txn_mode_ = false;  // a replication connection is never shared
  // The passthrough relay's server direction (PassthroughRelay::run) is the session's: the
  // multiplexed one must never start for it (wake_server_reader).
  if (!mux_) s2c_to(S2c::running);
  profile_->tracked = pool::tracked_parameters(profile_->identity.startup_params);
  profile_ = ClientProfile::intern(std::move(profile_));  // read-only from here on
  if (rc.target) {  // routing keys only matter where reads are split
    keys_ = std::make_unique<routing::KeyState>(
        routing::key_from_startup(startup.params, rc.routing_key),
        "connection-" + std::to_string(id_));
  }
  if (runtime_.health) health_ = runtime_.health->route(route_name());

  return replication;
}

// The client is in: AuthenticationOk, the server's ParameterStatus values, BackendKeyData and
// ReadyForQuery.
asio::awaitable<bool> ClientSession::greet() {
  const config::Route& rc = *route_->route;
  wire::Bytes out;
  wire::auth_ok(out);
  for (auto& [k, v] : server_->parameters) wire::parameter_status(out, k, v);
  wire::backend_key_data(out, client_key_.pid, client_key_.secret);
  wire::ready_for_query(out, wire::txn_status::idle);  // a fresh or reset server is idle
  // Transaction pooling: the server that vouched for the login goes back to the pool; the
  // first transaction gets one again.
  release_active();
  login_->phase = LoginPhase::greeting;
  if (co_await client_.write_all(out)) co_return false;
  log_info(
      "session started",
      {f("session", id_), f("peer", login_->peer), f("user", profile_->identity.user),
       f("database", profile_->identity.database), f("route", route_name()),
       f("pool_mode", config::to_string(rc.pool.mode)), f("tls", client_.is_tls() ? "on" : "off")});
  co_return true;
}

asio::awaitable<bool> ClientSession::login() {
  wire::StartupPacket startup;
  if (!co_await negotiate_startup(startup)) co_return false;

  profile_->identity.user = *startup.find("user");
  const std::string* db = startup.find("database");
  profile_->identity.database = db && !db->empty() ? *db : profile_->identity.user;

  // Protocol 3.x with x > 0, or _pq_ options: answer as PostgreSQL 15 does.
  std::vector<std::string> unrecognized;
  for (auto& [k, v] : startup.params) {
    if (k.starts_with("_pq_.")) unrecognized.push_back(k);
  }
  if ((startup.protocol & 0xffff) > 0 || !unrecognized.empty()) {
    wire::Bytes out;
    wire::negotiate_protocol_version(out, 0, unrecognized);
    if (co_await client_.write_all(out)) co_return false;
  }

  if (!co_await authenticate(startup)) co_return false;
  if (!co_await take_route()) co_return false;
  const bool replication = choose_relay(startup);
  login_->phase = LoginPhase::upstream;
  bool attached = replication ? co_await attach_replication() : co_await attach_at_login(*route_);
  if (!attached) {
    count_login_failure(LoginFailure::upstream_failed);
    metrics().errors(ErrorKind::upstream_connect).Increment();
    co_return false;
  }
  route_metrics_ = &metrics().route(route_name());
  route_metrics_->client_connections->Increment();
  route_metrics_->client_connections_total->Increment();
  // Session mode (and replication): the client keeps this server for its whole session, so
  // it gets the server's real pid (pg_backend_pid(), NOTIFY's sender pid, pg_terminate_backend
  // all agree with BackendKeyData). Transaction mode: a pgshift-made pid (docs/pooling.md).
  client_key_ =
      runtime_.cancels.register_slot(cancel_slot_, txn_mode_ ? 0 : server_->backend_key.pid);
  registered_ = true;

  co_return co_await greet();
}

// Replication connections get a dedicated server connection, never pooled.
asio::awaitable<bool> ClientSession::attach_replication() {
  std::string error;
  auto upstream =
      make_upstream_params(route_->route->source, route_->source_tls, profile_->identity, error);
  if (!upstream) {
    co_await send_error(client_, "28000", error);
    co_return false;
  }
  pool::ConnectError cerr;
  direct_ = co_await pool::connect_upstream(*upstream, cerr);
  if (!direct_) {
    log_warn("upstream connection failed",
             {f("route", route_name()), f("host", upstream->host), f("error", cerr.message),
              f("sqlstate", cerr.sqlstate)});
    const ClientError e = client_error(cerr);
    co_await send_error(client_, e.sqlstate, e.message, "FATAL", e.detail);
    co_return false;
  }
  sides_[0].upstream = upstream;
  server_ = direct_.get();
  cancel_slot_.attach(upstream, server_->backend_key);
  co_return true;
}

// A server of the authoritative side from its pool (size limit, waiting up to
// query_wait_timeout): it proves the upstream accepts this client and supplies the
// ParameterStatus values the client is given.
asio::awaitable<bool> ClientSession::attach_at_login(const RouteRuntime& route) {
  (void)route;
  pool::AcquireError aerr;
  if (co_await attach(authoritative_side(), aerr)) co_return true;
  // (A named local, not a temporary inside co_await: GCC 12 destroys those twice.)
  const ClientError e = client_error(aerr);
  co_await send_error(client_, e.sqlstate, e.message, "FATAL", e.detail);
  co_return false;
}

asio::awaitable<void> ClientSession::run() {
  ThreadSessions::of(client_.get_executor()).add(*this);  // the drain finds it there
  if (runtime_.draining.load()) {
    count_login_failure(LoginFailure::shutting_down);
    co_return;  // listener closing; the connection is dropped
  }
  bool ok = co_await login_within_deadline();
  if (!ok) co_return;
  // The server-to-client direction runs as its own coroutine; the session object lives
  // until both directions are done (each holds a shared_ptr).
  auto self = shared_from_this();
  login_.reset();  // logged in: what only the login needed goes
  if (!mux_) {
    co_await PassthroughRelay::run(std::move(self));
    co_return;
  }
  wake_server_reader();  // runs only if a server is held (session mode)
  co_await mux_client_to_server();
}

}  // namespace pgshift::proxy
