// The key table. Order here is the order of the reference in docs/configuration.md.
#include "config/keys.hpp"

#include <array>
#include <cstdio>
#include <type_traits>

namespace pgshift::config {
namespace {

constexpr std::int64_t kMaxMs = 2147483647;  // ~24.8 days; keeps arithmetic on it in range
constexpr std::int64_t kMaxCount = 1000000;

// The address of a field, relative to the objects of the current Scope.
#define PGSHIFT_FIELD(expr) [](const Scope& s) -> FieldPtr { return &s.expr; }

using T = KeyType;

const KeyInfo kKeys[] = {
    // --- listen -------------------------------------------------------------------------
    {.path = "listen", .type = T::mapping, .description = "Where clients connect."},
    {.path = "listen.host",
     .type = T::string,
     .default_value = "127.0.0.1",
     .required = true,
     .field = PGSHIFT_FIELD(config->listen.host),
     .description = "Address to listen on (0.0.0.0 for all IPv4 interfaces)."},
    {.path = "listen.port",
     .type = T::port,
     .default_value = "6432",
     .min = 1,
     .max = 65535,
     .field = PGSHIFT_FIELD(config->listen.port),
     .description = "TCP port for client connections."},
    {.path = "listen.backlog",
     .type = T::integer,
     .default_value = "1024",
     .min = 1,
     .max = 65535,
     .field = PGSHIFT_FIELD(config->listen.backlog),
     .description = "listen(2) backlog."},
    {.path = "listen.tls", .type = T::mapping, .description = "TLS towards clients."},
    {.path = "listen.tls.mode",
     .type = T::enumeration,
     .default_value = "disable",
     .reloadable = true,
     .values = "disable|allow|require",
     .field = PGSHIFT_FIELD(config->listen.tls.mode),
     .description = "disable: refuse SSLRequest; allow: TLS if the client asks; require: "
                    "refuse plaintext clients."},
    {.path = "listen.tls.cert_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->listen.tls.cert_file),
     .description = "PEM certificate chain; required unless mode is disable."},
    {.path = "listen.tls.key_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->listen.tls.key_file),
     .description = "PEM private key; required unless mode is disable."},
    // --- admin --------------------------------------------------------------------------
    {.path = "admin", .type = T::mapping, .description = "Admin HTTP API and /metrics."},
    {.path = "admin.enabled",
     .type = T::boolean,
     .default_value = "true",
     .field = PGSHIFT_FIELD(config->admin.enabled),
     .description = "Serve the admin API."},
    {.path = "admin.host",
     .type = T::string,
     .default_value = "127.0.0.1",
     .required = true,
     .field = PGSHIFT_FIELD(config->admin.host),
     .description = "Address of the admin API (loopback by default)."},
    {.path = "admin.port",
     .type = T::port,
     .default_value = "9187",
     .min = 1,
     .max = 65535,
     .field = PGSHIFT_FIELD(config->admin.port),
     .description = "Port of the admin API."},
    {.path = "admin.token_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->admin.token_file),
     .description = "File holding the bearer token; required when enabled."},
    // --- client_auth --------------------------------------------------------------------
    {.path = "client_auth", .type = T::mapping, .description = "How clients authenticate."},
    {.path = "client_auth.method",
     .type = T::enumeration,
     .default_value = "scram-sha-256",
     .reloadable = true,
     .values = "scram-sha-256|md5|trust",
     .field = PGSHIFT_FIELD(config->client_auth.method),
     .description = "Authentication asked of clients; not used when hba_file is set."},
    {.path = "client_auth.users_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->client_auth.users_file),
     .description = "Users and passwords (userlist.txt format); required unless method is "
                    "trust."},
    {.path = "client_auth.hba_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->client_auth.hba_file),
     .description = "pg_hba.conf-style rules by connection type, database, user and address "
                    "(a subset, see tls-and-auth.md); when set, method is not used."},
    {.path = "client_auth.throttle",
     .type = T::mapping,
     .description = "Slows down password guessing (tls-and-auth.md, failed logins)."},
    {.path = "client_auth.throttle.enabled",
     .type = T::boolean,
     .default_value = "true",
     .reloadable = true,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.enabled),
     .description = "Delay, then refuse, logins from addresses and for users with many "
                    "recent failed logins."},
    {.path = "client_auth.throttle.failures_burst",
     .type = T::integer,
     .default_value = "10",
     .reloadable = true,
     .min = 1,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.failures_burst),
     .description = "Failed logins from one client address (IPv6: one /64) before its "
                    "password logins wait."},
    {.path = "client_auth.throttle.user_failures_burst",
     .type = T::integer,
     .default_value = "30",
     .reloadable = true,
     .min = 0,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.user_failures_burst),
     .description = "Failed logins for one user name, from any address, before its password "
                    "logins wait; 0 = no per-user limit."},
    {.path = "client_auth.throttle.failure_interval_ms",
     .type = T::duration_ms,
     .default_value = "1000",
     .reloadable = true,
     .min = 1,
     .max = 3600000,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.failure_interval),
     .description = "Once a burst is used up, one more attempt per interval (the bucket "
                    "refills at this rate)."},
    {.path = "client_auth.throttle.max_delay_ms",
     .type = T::duration_ms,
     .default_value = "5000",
     .reloadable = true,
     .min = 0,
     .max = 600000,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.max_delay),
     .description = "Longest wait before an attempt; one that would wait longer is refused "
                    "with FATAL 53300."},
    {.path = "client_auth.throttle.max_tracked",
     .type = T::integer,
     .default_value = "10000",
     .reloadable = true,
     .min = 16,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(config->client_auth.throttle.max_tracked),
     .description = "Addresses and user names remembered; when full, recovered entries and "
                    "then the oldest are forgotten."},
    // --- routes -------------------------------------------------------------------------
    {.path = "routes",
     .type = T::mapping_list,
     .reloadable = true,
     .required = true,
     .section = "routes[]",
     .field = PGSHIFT_FIELD(config->routes),
     .description = "One entry per client database (and optionally user)."},
    {.path = "routes[].name",
     .type = T::string,
     .reloadable = true,
     .required = true,
     .field = PGSHIFT_FIELD(route->name),
     .description = "Unique name: letters, digits, '_', '-', '.'. Used in the admin API."},
    {.path = "routes[].client_database",
     .type = T::string,
     .reloadable = true,
     .required = true,
     .field = PGSHIFT_FIELD(route->client_database),
     .description = "Database name clients ask for; \"*\" matches any database."},
    {.path = "routes[].client_user",
     .type = T::string,
     .reloadable = true,
     .field = PGSHIFT_FIELD(route->client_user),
     .description = "Route only this user; absent = every user."},
    {.path = "routes[].source",
     .type = T::mapping,
     .required = true,
     .section = "upstream",
     .field = PGSHIFT_FIELD(route->source),
     .description = "The database being migrated from (upstream keys below)."},
    {.path = "routes[].target",
     .type = T::mapping,
     .section = "upstream",
     .field = PGSHIFT_FIELD(route->target),
     .description = "The database being migrated to (upstream keys below)."},
    {.path = "routes[].pool", .type = T::mapping, .description = "Server connection pool."},
    {.path = "routes[].pool.mode",
     .type = T::enumeration,
     .default_value = "session",
     .values = "session|transaction",
     .field = PGSHIFT_FIELD(route->pool.mode),
     .description = "When a server connection goes back to the pool."},
    {.path = "routes[].pool.size",
     .type = T::integer,
     .default_value = "20",
     .reloadable = true,
     .min = 1,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->pool.size),
     .description = "Server connections per upstream."},
    {.path = "routes[].pool.min_idle",
     .type = T::integer,
     .default_value = "0",
     .reloadable = true,
     .min = 0,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->pool.min_idle),
     .description = "Idle server connections kept open; at most size."},
    {.path = "routes[].pool.reserve",
     .type = T::integer,
     .default_value = "0",
     .reloadable = true,
     .min = 0,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->pool.reserve),
     .description = "Extra connections allowed when clients wait too long."},
    {.path = "routes[].pool.max_client_connections",
     .type = T::integer,
     .default_value = "10000",
     .reloadable = true,
     .min = 1,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->pool.max_client_connections),
     .description = "Client connections accepted for this route."},
    {.path = "routes[].pool.query_wait_timeout_ms",
     .type = T::duration_ms,
     .default_value = "120000",
     .reloadable = true,
     .min = 0,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->pool.query_wait_timeout),
     .description = "How long a client may wait for a server connection; 0 = forever."},
    {.path = "routes[].pool.server_idle_timeout_ms",
     .type = T::duration_ms,
     .default_value = "600000",
     .reloadable = true,
     .min = 0,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->pool.server_idle_timeout),
     .description = "Close server connections idle this long; 0 = never."},
    {.path = "routes[].pool.server_lifetime_ms",
     .type = T::duration_ms,
     .default_value = "3600000",
     .reloadable = true,
     .min = 0,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->pool.server_lifetime),
     .description = "Close server connections this old when released; 0 = never."},
    {.path = "routes[].pool.prepared_statement_cache_size",
     .type = T::integer,
     .default_value = "256",
     .reloadable = true,
     .min = 0,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->pool.prepared_statement_cache_size),
     .description = "Prepared statements kept per server connection (LRU); 0 = none."},
    {.path = "routes[].routing_key",
     .type = T::mapping,
     .description = "Where the routing key (the end user) is read from."},
    {.path = "routes[].routing_key.comment_key",
     .type = T::string,
     .default_value = "user_id",
     .reloadable = true,
     .field = PGSHIFT_FIELD(route->routing_key.comment_key),
     .description = "Key in a sqlcommenter comment: /* user_id='42' */; empty = off."},
    {.path = "routes[].routing_key.setting",
     .type = T::string,
     .default_value = "pgshift.routing_key",
     .reloadable = true,
     .field = PGSHIFT_FIELD(route->routing_key.setting),
     .description = "Session setting: SET pgshift.routing_key = '42'; empty = off."},
    {.path = "routes[].routing_key.startup_parameter",
     .type = T::string,
     .default_value = "pgshift.routing_key",
     .reloadable = true,
     .field = PGSHIFT_FIELD(route->routing_key.startup_parameter),
     .description = "Startup packet parameter; empty = off."},
    {.path = "routes[].read_split",
     .type = T::mapping,
     .description = "Reads sent to the non-authoritative side."},
    {.path = "routes[].read_split.read_your_writes_window_ms",
     .type = T::duration_ms,
     .default_value = "2000",
     .reloadable = true,
     .min = 0,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->read_split.read_your_writes_window),
     .description = "After a key writes, its reads stay on the authoritative side this long."},
    {.path = "routes[].read_split.allowed_functions",
     .type = T::string_list,
     .reloadable = true,
     .field = PGSHIFT_FIELD(route->read_split.allowed_functions),
     .description = "Extra functions the classifier may treat as read-only."},
    {.path = "routes[].read_split.initial_read_percent",
     .type = T::number,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .field = PGSHIFT_FIELD(route->read_split.initial_read_percent),
     .description = "Read percent of a route with no saved state; 0..100, two decimals."},
    {.path = "routes[].read_split.max_lag_ms",
     .type = T::duration_ms,
     .default_value = "1000",
     .reloadable = true,
     .min = 1,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->read_split.max_lag_ms),
     .description = "sync.mode logical: split reads go to the target only while its lag is "
                    "below this."},
    {.path = "routes[].sync", .type = T::mapping, .description = "How the target is kept in sync."},
    {.path = "routes[].sync.mode",
     .type = T::enumeration,
     .default_value = "none",
     .values = "none|logical|mirror",
     .field = PGSHIFT_FIELD(route->sync.mode),
     .description = "none, logical replication, or mirrored writes; logical/mirror need a "
                    "target."},
    {.path = "routes[].sync.heartbeat_ms",
     .type = T::duration_ms,
     .default_value = "500",
     .reloadable = true,
     .min = 10,
     .max = 60000,
     .field = PGSHIFT_FIELD(route->sync.heartbeat),
     .description = "How often the lag marker row pgshift.heartbeat is written."},
    {.path = "routes[].sync.tables",
     .type = T::string_list,
     .reloadable = true,  // read by the sync commands, not by the running sidecar
     .field = PGSHIFT_FIELD(route->sync.tables),
     .description = "Tables to replicate (schema.table; no schema = public); empty = every "
                    "user table."},
    {.path = "routes[].sync.publisher_host",
     .type = T::string,
     .reloadable = true,  // read by the sync commands, not by the running sidecar
     .field = PGSHIFT_FIELD(route->sync.publisher_host),
     .description = "Host the target uses to reach the source; default: source.host."},
    {.path = "routes[].sync.publisher_port",
     .type = T::port,
     .default_value = "0",
     .reloadable = true,  // read by the sync commands, not by the running sidecar
     .min = 0,            // 0: source.port
     .max = 65535,
     .field = PGSHIFT_FIELD(route->sync.publisher_port),
     .description = "Port the target uses to reach the source; 0: source.port."},
    {.path = "routes[].sync.mirror",
     .type = T::mapping,
     .description = "sync.mode mirror: replay of every committed write on the other side "
                    "(docs/sync.md, \"Mirror mode\")."},
    {.path = "routes[].sync.mirror.ack",
     .type = T::enumeration,
     .default_value = "async",
     .values = "async|sync",
     .field = PGSHIFT_FIELD(route->sync.mirror.ack),
     .description = "async: a commit is acknowledged once the authoritative side committed; "
                    "sync: once the mirror committed it too."},
    {.path = "routes[].sync.mirror.max_queue_bytes",
     .type = T::integer,
     .default_value = "268435456",
     .min = 1 << 20,
     .max = std::int64_t{1} << 40,
     .field = PGSHIFT_FIELD(route->sync.mirror.max_queue_bytes),
     .description = "Mirrored transactions waiting to be applied, per route and sidecar; "
                    "past it sync.mirror.overflow applies."},
    {.path = "routes[].sync.mirror.overflow",
     .type = T::enumeration,
     .default_value = "block",
     .values = "block|mark_diverged",
     .field = PGSHIFT_FIELD(route->sync.mirror.overflow),
     .description = "A full queue: block new write transactions until it drains, or stop "
                    "mirroring and mark the route diverged (a new sync start is needed)."},
    {.path = "routes[].sync.mirror.apply_timeout_ms",
     .type = T::duration_ms,
     .default_value = "10000",
     .min = 1,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(route->sync.mirror.apply_timeout),
     .description = "ack sync: how long a commit waits for the mirror before the divergence "
                    "is recorded and the client is answered."},
    {.path = "routes[].sync.mirror.journal_file",
     .type = T::path,
     .field = PGSHIFT_FIELD(route->sync.mirror.journal_file),
     .description = "Divergence journal (JSON lines); default: <state_file>.mirror.jsonl, "
                    "or pgshift-mirror.jsonl in the working directory."},
    {.path = "routes[].sync.mirror.journal_parameters",
     .type = T::boolean,
     .default_value = "false",
     .field = PGSHIFT_FIELD(route->sync.mirror.journal_parameters),
     .description = "Write statement parameters into the journal (they may hold personal "
                    "data); default: redacted."},
    {.path = "routes[].sync.mirror.copy_workers",
     .type = T::integer,
     .default_value = "2",
     .reloadable = true,  // read by sync start
     .min = 1,
     .max = 16,
     .field = PGSHIFT_FIELD(route->sync.mirror.copy_workers),
     .description = "Tables copied at once by the initial copy of sync start."},
    {.path = "routes[].cutover",
     .type = T::mapping,
     .description = "Cutover and rollback of the route (docs/cutover.md)."},
    {.path = "routes[].cutover.sequence_gap",
     .type = T::integer,
     .default_value = "1000",
     .reloadable = true,
     .min = 0,
     .max = kMaxCount,
     .field = PGSHIFT_FIELD(route->cutover.sequence_gap),
     .description = "Added to each sequence's last value when a cutover or rollback copies it "
                    "to the other side, so ids taken there never collide."},
    // --- upstream: routes[].source and routes[].target ----------------------------------
    {.path = "upstream.host",
     .type = T::string,
     .reloadable = true,
     .required = true,
     .field = PGSHIFT_FIELD(upstream->host),
     .description = "Server host name or address."},
    {.path = "upstream.port",
     .type = T::port,
     .default_value = "5432",
     .reloadable = true,
     .min = 1,
     .max = 65535,
     .field = PGSHIFT_FIELD(upstream->port),
     .description = "Server port."},
    {.path = "upstream.database",
     .type = T::string,
     .reloadable = true,
     .field = PGSHIFT_FIELD(upstream->database),
     .description = "Database on the server; absent = the database the client asked for."},
    {.path = "upstream.user",
     .type = T::string,
     .reloadable = true,
     .field = PGSHIFT_FIELD(upstream->user),
     .description = "User pgshift logs in as; required unless credentials is passthrough."},
    {.path = "upstream.password",
     .type = T::secret,
     .reloadable = true,
     .field = PGSHIFT_FIELD(upstream->password),
     .description = "Password of user: ${env:NAME}, ${file:PATH} or literal."},
    {.path = "upstream.credentials",
     .type = T::enumeration,
     .reloadable = true,
     .values = "passthrough",
     .field = PGSHIFT_FIELD(upstream->passthrough),
     .description = "passthrough: log in as the client's user with its users_file password "
                    "(no user/password then)."},
    {.path = "upstream.connect_timeout_ms",
     .type = T::duration_ms,
     .default_value = "5000",
     .reloadable = true,
     .min = 1,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(upstream->connect_timeout),
     .description = "TCP connect + TLS + login deadline."},
    {.path = "upstream.tls", .type = T::mapping, .description = "TLS towards the server."},
    {.path = "upstream.tls.mode",
     .type = T::enumeration,
     .default_value = "disable",
     .reloadable = true,
     .values = "disable|require|verify-ca|verify-full",
     .field = PGSHIFT_FIELD(upstream->tls.mode),
     .description = "As libpq sslmode; verify-ca/verify-full need ca_file."},
    {.path = "upstream.tls.ca_file",
     .type = T::path,
     .reloadable = true,
     .field = PGSHIFT_FIELD(upstream->tls.ca_file),
     .description = "PEM CA bundle (e.g. the RDS global bundle)."},
    {.path = "upstream.tls.server_name",
     .type = T::string,
     .reloadable = true,
     .field = PGSHIFT_FIELD(upstream->tls.server_name),
     .description = "Name to send (SNI) and verify; absent = host."},
    // --- control: the fleet's shared state (docs/control-plane.md) ----------------------
    {.path = "control",
     .type = T::mapping,
     .values = "target|none|file",
     .field = PGSHIFT_FIELD(config->control.mode),
     .description = "Where the fleet's migration state lives: target (the first route's "
                    "target database; the default when it has a user and a database), none or "
                    "file (state_file, this sidecar alone; the default otherwise), or a "
                    "mapping with a control database of its own."},
    {.path = "control.host",
     .type = T::string,
     .field = PGSHIFT_FIELD(config->control.database.host),
     .description = "Control database host; absent = the first route's target."},
    {.path = "control.port",
     .type = T::port,
     .default_value = "5432",
     .min = 1,
     .max = 65535,
     .field = PGSHIFT_FIELD(config->control.database.port),
     .description = "Control database port."},
    {.path = "control.database",
     .type = T::string,
     .field = PGSHIFT_FIELD(config->control.database.database),
     .description = "Control database name; required with host."},
    {.path = "control.user",
     .type = T::string,
     .field = PGSHIFT_FIELD(config->control.database.user),
     .description = "User pgshift logs in as; required with host. Needs CREATE on the "
                    "database the first time (schema pgshift)."},
    {.path = "control.password",
     .type = T::secret,
     .field = PGSHIFT_FIELD(config->control.database.password),
     .description = "Password of user: ${env:NAME}, ${file:PATH} or literal."},
    {.path = "control.connect_timeout_ms",
     .type = T::duration_ms,
     .default_value = "5000",
     .min = 1,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(config->control.database.connect_timeout),
     .description = "Connect + TLS + login deadline of the control connection."},
    {.path = "control.tls", .type = T::mapping, .description = "TLS towards the control database."},
    {.path = "control.tls.mode",
     .type = T::enumeration,
     .default_value = "disable",
     .values = "disable|require|verify-ca|verify-full",
     .field = PGSHIFT_FIELD(config->control.database.tls.mode),
     .description = "As libpq sslmode; verify-ca/verify-full need ca_file."},
    {.path = "control.tls.ca_file",
     .type = T::path,
     .field = PGSHIFT_FIELD(config->control.database.tls.ca_file),
     .description = "PEM CA bundle."},
    {.path = "control.tls.server_name",
     .type = T::string,
     .field = PGSHIFT_FIELD(config->control.database.tls.server_name),
     .description = "Name to verify; absent = host."},
    {.path = "control.poll_ms",
     .type = T::duration_ms,
     .default_value = "1000",
     .min = 50,
     .max = 60000,
     .field = PGSHIFT_FIELD(config->control.poll),
     .description = "How often the control state is read besides LISTEN/NOTIFY (a lost "
                    "notification costs at most this long)."},
    {.path = "control.member_timeout_ms",
     .type = T::duration_ms,
     .default_value = "10000",
     .min = 2000,
     .max = 3600000,
     .field = PGSHIFT_FIELD(config->control.member_timeout),
     .description = "A member whose heartbeat (every second) is older than this is gone."},
    // --- limits and process -------------------------------------------------------------
    {.path = "limits", .type = T::mapping, .description = "Protocol limits."},
    {.path = "limits.max_message_length",
     .type = T::integer,
     .default_value = "1073741824",
     .reloadable = true,
     .min = 1024,
     .max = 1073741824,
     .field = PGSHIFT_FIELD(config->limits.max_message_length),
     .description = "Largest protocol message accepted, in bytes (the server's limit is 1 "
                    "GiB)."},
    {.path = "limits.max_buffered_message_length",
     .type = T::integer,
     .default_value = "67108864",
     .reloadable = true,
     .min = 1024,
     .max = 1073741824,
     .field = PGSHIFT_FIELD(config->limits.max_buffered_message_length),
     .description = "Largest message the relay must hold whole to inspect or rewrite it "
                    "(Query, Parse, Bind, FunctionCall on a multiplexed route), in bytes; a "
                    "larger one is refused with 54000. Messages that are only forwarded "
                    "(CopyData, rows) are relayed in pieces and only max_message_length "
                    "applies."},
    {.path = "limits.buffered_memory_bytes",
     .type = T::integer,
     .default_value = "268435456",
     .reloadable = true,
     .min = 1048576,
     .max = 4294967295,
     .field = PGSHIFT_FIELD(config->limits.buffered_memory_bytes),
     .description = "Memory for large messages held whole, over all sessions, in bytes; a "
                    "message that would take the total past it is refused with 53200 "
                    "(out_of_memory) and other sessions are unaffected."},
    {.path = "limits.login_timeout_ms",
     .type = T::duration_ms,
     .default_value = "60000",
     .reloadable = true,
     .min = 100,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(config->limits.login_timeout),
     .description = "How long a client's login may take, from connect to ReadyForQuery "
                    "(including the wait for a server); then FATAL with the phase."},
    {.path = "threads",
     .type = T::integer,
     .default_value = "0",
     .min = 0,
     .max = 1024,
     .field = PGSHIFT_FIELD(config->threads),
     .description = "I/O threads; 0 = the container's CPU quota (cgroup cpu.max) rounded, at "
                    "least 1, else one per usable core."},
    {.path = "shutdown_timeout_ms",
     .type = T::duration_ms,
     .default_value = "30000",
     .reloadable = true,
     .min = 0,
     .max = kMaxMs,
     .field = PGSHIFT_FIELD(config->shutdown_timeout),
     .description = "On SIGTERM, how long sessions may finish their transactions."},
    {.path = "state_file",
     .type = T::path,
     .default_value = "pgshift-state.json",
     .required = true,
     .field = PGSHIFT_FIELD(config->state_file),
     .description = "Migration state of a sidecar without a control database."},
    {.path = "log_level",
     .type = T::enumeration,
     .default_value = "info",
     .reloadable = true,
     .values = "debug|info|warn|error",
     .field = PGSHIFT_FIELD(config->log_level),
     .description = "Least severe log level written."},
};

#undef PGSHIFT_FIELD

std::string_view after_last_dot(std::string_view p) {
  auto i = p.rfind('.');
  return i == std::string_view::npos ? p : p.substr(i + 1);
}

std::string join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

void walk(std::string_view section, const std::string& prefix, Scope scope, const KeyVisitor& f) {
  for (const auto& key : kKeys) {
    if (key.parent() != section) continue;
    std::string path = join(prefix, key.name());
    FieldPtr field = key.field ? key.field(scope) : FieldPtr{};
    if (key.type == KeyType::mapping_list) {
      auto& routes = *std::get<std::vector<Route>*>(field);
      for (std::size_t i = 0; i < routes.size(); ++i) {
        Scope inner = scope;
        inner.route = &routes[i];
        walk(key.children(), path + "[" + std::to_string(i) + "]", inner, f);
      }
    } else if (key.type == KeyType::mapping) {
      Scope inner = scope;
      if (auto* up = std::get_if<Upstream*>(&field)) inner.upstream = *up;
      if (auto* opt = std::get_if<std::optional<Upstream>*>(&field)) {
        if (!(*opt)->has_value()) continue;
        inner.upstream = &***opt;
      }
      walk(key.children(), path, inner, f);
    } else {
      f(key, path, field, scope);
    }
  }
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

std::string_view KeyInfo::name() const {
  return after_last_dot(path);
}

std::string_view KeyInfo::parent() const {
  auto i = path.rfind('.');
  return i == std::string_view::npos ? std::string_view{} : path.substr(0, i);
}

std::string_view KeyInfo::children() const {
  return section.empty() ? path : section;
}

std::vector<std::string_view> KeyInfo::choices() const {
  std::vector<std::string_view> out;
  std::string_view rest = values;
  while (!rest.empty()) {
    auto i = rest.find('|');
    out.push_back(rest.substr(0, i));
    if (i == std::string_view::npos) break;
    rest.remove_prefix(i + 1);
  }
  return out;
}

std::span<const KeyInfo> key_table() {
  return kKeys;
}

const KeyInfo* find_key(std::string_view parent, std::string_view name) {
  for (const auto& key : kKeys) {
    if (key.parent() == parent && key.name() == name) return &key;
  }
  return nullptr;
}

std::string_view to_string(KeyType t) {
  switch (t) {
    case KeyType::string:
      return "string";
    case KeyType::path:
      return "path";
    case KeyType::integer:
      return "integer";
    case KeyType::port:
      return "port";
    case KeyType::duration_ms:
      return "duration (ms)";
    case KeyType::boolean:
      return "boolean";
    case KeyType::number:
      return "number";
    case KeyType::enumeration:
      return "enum";
    case KeyType::secret:
      return "secret";
    case KeyType::string_list:
      return "list of strings";
    case KeyType::mapping:
      return "mapping";
    case KeyType::mapping_list:
      return "list of mappings";
  }
  return "unknown";
}

void for_each_key(Config& c, const KeyVisitor& f) {
  walk("", "", Scope{.config = &c}, f);
}

std::string display(const FieldPtr& field, const KeyInfo& key) {
  return std::visit(
      [&key](const auto& v) -> std::string {
        using P = std::remove_pointer_t<std::decay_t<decltype(v)>>;
        [[maybe_unused]] const P* p = nullptr;
        if constexpr (!std::is_same_v<P, std::monostate>) p = v;
        if constexpr (std::is_same_v<P, std::monostate>) {
          return "";
        } else if constexpr (std::is_same_v<P, std::string>) {
          return *p;
        } else if constexpr (std::is_same_v<P, std::optional<std::string>>) {
          return p->value_or("");
        } else if constexpr (std::is_same_v<P, bool>) {
          // An enumeration stored in a bool (credentials) is set when the value is present.
          if (key.type == KeyType::enumeration) return *p ? std::string(key.values) : "";
          return *p ? "true" : "false";
        } else if constexpr (std::is_same_v<P, double>) {
          return format_number(*p);
        } else if constexpr (std::is_same_v<P, Millis>) {
          return std::to_string(p->count());
        } else if constexpr (std::is_integral_v<P>) {
          return std::to_string(*p);
        } else if constexpr (std::is_same_v<P, std::vector<std::string>>) {
          std::string out;
          for (const auto& s : *p) out += (out.empty() ? "" : ", ") + s;
          return out;
        } else if constexpr (std::is_same_v<P, Secret>) {
          return p->empty() ? "" : p->describe();
        } else if constexpr (std::is_enum_v<P>) {
          return std::string(to_string(*p));
        } else {
          return "";
        }
      },
      field);
}

std::optional<double> numeric(const FieldPtr& field) {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using P = std::remove_pointer_t<std::decay_t<decltype(v)>>;
        [[maybe_unused]] const P* p = nullptr;
        if constexpr (!std::is_same_v<P, std::monostate>) p = v;
        if constexpr (std::is_same_v<P, std::monostate>) {
          return std::nullopt;
        } else if constexpr (std::is_same_v<P, Millis>) {
          return static_cast<double>(p->count());
        } else if constexpr (std::is_same_v<P, double>) {
          return *p;
        } else if constexpr (std::is_integral_v<P> && !std::is_same_v<P, bool>) {
          return static_cast<double>(*p);
        } else {
          return std::nullopt;
        }
      },
      field);
}

}  // namespace pgshift::config
