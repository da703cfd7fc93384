#pragma once
// The validated, immutable configuration. Loaded from YAML (load.hpp), checked by
// validate() which reports every error with its YAML path and line, then shared as
// std::shared_ptr<const Config>; a reload builds a new snapshot and swaps it atomically.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/secret.hpp"

namespace pgshift::config {

using Millis = std::chrono::milliseconds;

enum class ClientTlsMode { disable, allow, require };
enum class UpstreamTlsMode { disable, require, verify_ca, verify_full };
enum class ClientAuthMethod { scram_sha_256, md5, trust };
enum class PoolMode { session, transaction };
enum class SyncMode { none, logical, mirror };
// sync.mirror.ack: when a client's commit is acknowledged (docs/sync.md, "Mirror mode").
enum class MirrorAck { async, sync };
// sync.mirror.overflow: what a full mirror queue does.
enum class MirrorOverflow { block, mark_diverged };
enum class Phase { source_only, sync, cutover, target_primary, target_only };
// Where the fleet's migration state lives (docs/control-plane.md). As written in the YAML:
// automatic (key absent), target, file ("none" or "file"); a mapping with a host gives
// database. control_mode() resolves automatic.
enum class ControlMode { automatic, target, file, database };

struct ClientTls {
  ClientTlsMode mode = ClientTlsMode::disable;
  std::string cert_file, key_file;  // required unless mode == disable
};

struct Listen {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6432;
  ClientTls tls;
  int backlog = 1024;
};

struct Admin {
  bool enabled = true;
  std::string host = "127.0.0.1";  // loopback by default
  std::uint16_t port = 9187;
  std::string token_file;  // required when enabled
};

// Password guessing defence (docs/tls-and-auth.md, "Failed logins"): a token bucket of
// failed logins per client address (IPv6: per /64) and per user name.
struct AuthThrottle {
  bool enabled = true;
  int failures_burst = 10;       // failures from one address before attempts wait
  int user_failures_burst = 30;  // failures for one user name (any address); 0 = no limit
  Millis failure_interval{1000};  // one more attempt per interval once a burst is used up
  Millis max_delay{5000};         // an attempt that would wait longer is refused (53300)
  int max_tracked = 10000;        // addresses and users remembered; beyond, the oldest go
};

struct ClientAuth {
  ClientAuthMethod method = ClientAuthMethod::scram_sha_256;
  std::string users_file;  // required unless method == trust (or hba_file asks no password)
  // pg_hba.conf-style rules (config/hba.hpp); when set, `method` is not used.
  std::string hba_file;
  AuthThrottle throttle;
};

struct UpstreamTls {
  UpstreamTlsMode mode = UpstreamTlsMode::disable;
  std::string ca_file;      // required for verify-ca / verify-full
  std::string server_name;  // hostname to verify (default: host)
};

struct Upstream {
  std::string host;
  std::uint16_t port = 5432;
  std::string database;      // default: the client's database name
  bool passthrough = false;  // credentials: passthrough -> client's user + users-file password
  std::string user;          // fixed credentials (service account)
  Secret password;           // ${env:VAR}, ${file:/path} or literal
  UpstreamTls tls;
  Millis connect_timeout{5000};
};

struct Pool {
  PoolMode mode = PoolMode::session;
  int size = 20;
  int min_idle = 0;
  int reserve = 0;
  int max_client_connections = 10000;
  Millis query_wait_timeout{120000};
  Millis server_idle_timeout{600000};
  Millis server_lifetime{3600000};
  int prepared_statement_cache_size = 256;  // per server connection, LRU
};

struct RoutingKey {
  std::string comment_key = "user_id";          // /* user_id='42' */
  std::string setting = "pgshift.routing_key";  // SET pgshift.routing_key = '42'
  std::string startup_parameter = "pgshift.routing_key";
};

struct ReadSplit {
  Millis read_your_writes_window{2000};
  std::vector<std::string> allowed_functions;  // extra read-only functions for the classifier
  double initial_read_percent = 0.0;
  // sync.mode logical: split reads go to the target only while its measured lag (the
  // heartbeat marker, proxy/migrate/lag_monitor.hpp) is below this.
  Millis max_lag_ms{1000};
};

// sync.mode mirror (docs/sync.md, "Mirror mode").
struct Mirror {
  MirrorAck ack = MirrorAck::async;
  std::uint64_t max_queue_bytes = 256ull << 20;  // per route and sidecar
  MirrorOverflow overflow = MirrorOverflow::block;
  Millis apply_timeout{10000};  // sync ack: how long a commit waits for the mirror
  std::string journal_file;     // divergence journal (JSONL); "" = <state_file>.mirror.jsonl
  bool journal_parameters = false;
  int copy_workers = 2;  // tables copied at once by the initial copy
  // Where a full in-memory queue spills (a file per route and process); "" = no spill.
  std::string spool_dir;
  std::uint64_t max_spool_bytes = 4ull << 30;  // per route and sidecar, on disk
};

struct Sync {
  SyncMode mode = SyncMode::none;
  Mirror mirror;
  Millis heartbeat{500};             // how often the lag marker is written
  std::vector<std::string> tables;   // schema.table or table (public); empty = all user tables
  std::string publisher_host;        // how the TARGET reaches the source; "" = source.host
  std::uint16_t publisher_port = 0;  // 0 = source.port
};

// Cutover and rollback of the route (docs/cutover.md).
struct Cutover {
  int sequence_gap = 1000;  // added to each sequence's value when it is copied across
};

struct Route {
  std::string name;
  std::string client_database;             // "*" = pass any database name through
  std::optional<std::string> client_user;  // route only this user (optional)
  Upstream source;
  std::optional<Upstream> target;
  Pool pool;
  RoutingKey routing_key;
  ReadSplit read_split;
  Sync sync;
  Cutover cutover;
};

// control: target | none | file | {host, port, database, user, password, tls, poll_ms,
// member_timeout_ms}. A mapping without a host means "target" with these timings.
struct Control {
  ControlMode mode = ControlMode::automatic;
  Upstream database;  // the mapping form (host set): a control database of its own
  Millis poll{1000};
  Millis member_timeout{10000};
};

struct Limits {
  std::uint32_t max_message_length = 1u << 30;  // 1 GiB, like the server
  // Largest message the relay holds whole (Query, Parse, Bind...); forwarded-only messages
  // (CopyData, DataRow) are relayed in pieces and bounded by max_message_length alone.
  std::uint32_t max_buffered_message_length = 64u << 20;
  // All messages held whole at once, over every session.
  std::uint32_t buffered_memory_bytes = 256u << 20;
  Millis login_timeout{60000};  // connect to ReadyForQuery, upstream server included
};

struct Config {
  Listen listen;
  Admin admin;
  ClientAuth client_auth;
  std::vector<Route> routes;
  Limits limits;
  Control control;
  int threads = 0;                 // 0 = number of cores
  Millis shutdown_timeout{30000};  // SIGTERM: how long sessions may finish
  std::string state_file = "pgshift-state.json";
  std::string log_level = "info";  // debug, info, warn, error

  const Route* find_route(std::string_view name) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

// The control mode in force (never automatic): database when control.host is set; target
// when written so, or when absent and the first route with a target has a fixed user and a
// database (the control plane needs both); file otherwise.
ControlMode control_mode(const Config& c);
// The connection settings of the control database (a copy of the first target's upstream
// in target mode, control's own in database mode); nullopt in file mode.
std::optional<Upstream> control_upstream(const Config& c);
// The first route with a target, or null.
const Route* first_target_route(const Config& c);

std::string_view to_string(ClientTlsMode m);
std::string_view to_string(UpstreamTlsMode m);
std::string_view to_string(ClientAuthMethod m);
std::string_view to_string(PoolMode m);
std::string_view to_string(SyncMode m);
std::string_view to_string(MirrorAck m);
std::string_view to_string(MirrorOverflow m);
std::string_view to_string(Phase p);
std::string_view to_string(ControlMode m);
std::optional<Phase> phase_from_string(std::string_view s);

// Inverse of to_string for the configuration enums (the YAML spellings, e.g. "verify-full").
// Returns false and leaves `out` unchanged for an unknown name.
bool from_string(std::string_view s, ClientTlsMode& out);
bool from_string(std::string_view s, UpstreamTlsMode& out);
bool from_string(std::string_view s, ClientAuthMethod& out);
bool from_string(std::string_view s, PoolMode& out);
bool from_string(std::string_view s, SyncMode& out);
bool from_string(std::string_view s, MirrorAck& out);
bool from_string(std::string_view s, MirrorOverflow& out);
// "none" and "file" both give file.
bool from_string(std::string_view s, ControlMode& out);

}  // namespace pgshift::config
