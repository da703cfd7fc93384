// The keys of control, limits and the process (key_tables.hpp).
#include "config/key_tables.hpp"

namespace pgshift::config::key_tables {
namespace {

const KeyInfo kKeys[] = {
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

}  // namespace

std::span<const KeyInfo> process() {
  return kKeys;
}

}  // namespace pgshift::config::key_tables
