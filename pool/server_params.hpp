#pragma once
// Startup parameters of pooled servers (docs/pooling.md, "Startup parameters").
//
// One pool serves clients with different startup parameter *values* (application_name,
// client_encoding, DateStyle, TimeZone, search_path...): a server is opened with the
// parameters of the client it is opened for, and on every hand-out pgshift brings it to the
// next client's values with set_config() where they differ, as PgBouncer's tracked
// parameters do. Two things stay in the pool key instead:
//  - parameters a backend takes only at its start (`options`, whose -c settings and
//    switches apply at backend start, and GUCs such as log_connections): their values;
//  - the *names* of the client's other startup parameters. A server opened with a parameter
//    keeps it as its session default (RESET goes back to it), and no statement can bring it
//    back to the server's own default for a client that did not send it. Drivers send the
//    same names on every connection, so this makes a pool per driver kind at most.
// Thread-safety: plain functions and values.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::pool {

using StartupParams = std::vector<std::pair<std::string, std::string>>;

// True for a startup parameter whose value keys the pool (see above).
bool is_keyed_parameter(std::string_view name);

// The pool key text of a client's forwarded startup parameters: the keyed ones with their
// values, then the names of the others, canonical (sorted, lower case).
std::string pool_key_parameters(const StartupParams& startup);

// The parameters a client wants on its server, set per hand-out: all but the keyed ones,
// names in lower case (GUC names are case-insensitive).
StartupParams tracked_parameters(const StartupParams& startup);

// What pgshift knows of a server's tracked parameters.
struct ParameterState {
  StartupParams defaults;  // as opened (the session defaults RESET and DISCARD ALL go back to)
  StartupParams current;   // in effect now, as pgshift last set them
  // A client changed reported parameters on it without a reset (transaction mode, e.g.
  // set_config() outside a pin): current and the reported values are unknown.
  bool unknown = false;
  // After DISCARD ALL (RESET ALL): the session defaults are in effect again.
  void reset() {
    current = defaults;
    unknown = false;
  }
};

// The statement that brings a server from `state` to `wanted` (one
// `SELECT pg_catalog.set_config(...), ...` round trip), or "" when nothing differs. A
// parameter the server has and the client lacks is reset to its default (NULL).
std::string parameter_sync_statement(const ParameterState& state, const StartupParams& wanted);
// Whether a hand-out needs a round trip at all (no allocation: the hot path of transaction
// mode calls it for every transaction).
bool needs_parameter_sync(const ParameterState& state, const StartupParams& wanted);
// After that statement succeeded: `state` now holds `wanted`.
void apply_parameter_sync(ParameterState& state, const StartupParams& wanted);

}  // namespace pgshift::pool
