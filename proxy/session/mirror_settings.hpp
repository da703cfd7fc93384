#pragma once
// The settings a session's statements run with, carried to the replay of its mirrored
// transactions (docs/sync.md, "Mirror mode", "Session settings"). The replay connection is
// shared by every session of the route, so each replayed transaction says which settings it
// ran with, and the mirror brings its connection to them first when they differ
// (proxy/mirror/replay.cpp).
//
// What a session's settings are, in this order (later wins):
//   1. the `-c name=value` / `--name=value` switches of its startup `options` (an allow-list
//      of settings that change what a statement does, plus custom `x.y` settings);
//   2. its other startup parameters (pool::tracked_parameters), without application_name;
//   3. session-level SET / RESET / RESET ALL / SET SCHEMA / set_config(..., false) statements
//      that took effect: their transaction committed (an autocommit statement without error,
//      or a block that ended in COMMIT). Reported settings (TimeZone, DateStyle,
//      client_encoding, IntervalStyle, standard_conforming_strings...) are taken from the
//      server's ParameterStatus instead, which gives their exact value after any SET, RESET
//      or rollback. SET LOCAL is not a session setting: it is replayed inside its
//      transaction.
// SET ROLE, SET SESSION AUTHORIZATION and SET session_replication_role are not carried: the
// caller flags them (pgshift_mirror_unsafe_total{reason="session_setting"}), as it does a
// set_config() whose arguments are not literals.
//
// Answers are matched to statements by counting ReadyForQuery messages: a statement seen
// with `answers_ahead` ReadyForQuery still due takes effect (or not) at the one after them.
//
// Pure bookkeeping: no I/O, no locks; one per session, on the session's thread. Costs
// nothing per transaction while no statement changes a setting: current() is the same
// object, compared by address on the mirror's side.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/server_params.hpp"

namespace pgshift::proxy {

// One session-level change a statement asks for.
struct SettingChange {
  enum class Kind : std::uint8_t {
    set,        // name = value (value as set_config() takes it)
    reset,      // name back to its session default (the startup value, else the server's)
    reset_all,  // every SET back to its session default
    reported,   // a reported setting: its value comes from ParameterStatus
    refused,    // not carried (SET ROLE, session_replication_role, unparsed): flag it
  };
  Kind kind = Kind::set;
  std::string name;  // lower case; for refused, what to say
  std::string value;
};

// The session-level setting changes of `sql` (one or more statements), in order. Statements
// that change no session setting give nothing. Pure.
std::vector<SettingChange> parse_setting_changes(std::string_view sql,
                                                 bool standard_conforming_strings = true);

// The carried settings of a startup `options` value (PostgreSQL's pg_split_opts: spaces
// separate, a backslash escapes the next byte).
pool::StartupParams settings_from_options(std::string_view options);

class MirrorSettings {
 public:
  using Params = std::shared_ptr<const pool::StartupParams>;

  MirrorSettings(const pool::StartupParams& tracked, std::string_view options);

  // Frontend: a Query or Parse whose statements may change settings, with `answers_ahead`
  // ReadyForQuery messages due before its own. Returns the refused changes (to flag).
  std::vector<SettingChange> on_statement(std::string_view sql, std::uint32_t answers_ahead);
  // Backend, in the server's order.
  void on_parameter_status(std::span<const std::uint8_t> body);
  void on_command_complete(std::string_view tag);
  void on_error() { failed_ = true; }
  void on_ready_for_query(char status);
  // The server connection was lost: what was pending is unknown (the session ends, or runs
  // on with what had taken effect).
  void clear_pending();

  // The settings in effect after the last ReadyForQuery 'I'.
  const Params& current() const { return current_; }
  // Called before on_ready_for_query() of the ReadyForQuery that just came: since the last
  // ReadyForQuery 'I' a statement (answered by this one at the latest) may have changed a
  // setting, so a replay of this transaction leaves its connection changed.
  bool changing() const {
    return changing_ || (!pending_.empty() && pending_.front().answers_left == 1);
  }

 private:
  struct Pending {
    std::uint32_t answers_left = 0;  // ReadyForQuery messages until its own
    std::vector<SettingChange> changes;
  };
  void rebuild();

  pool::StartupParams startup_;                          // 1 and 2 above
  std::map<std::string, std::string, std::less<>> set_;  // SETs in effect
  std::map<std::string, std::string, std::less<>> reported_;
  std::deque<Pending> pending_;
  std::vector<SettingChange> group_;  // answered, waiting for the transaction's end
  std::vector<std::pair<std::string, std::string>> group_reported_;
  bool failed_ = false, committed_ = false, rolled_back_ = false, changing_ = false;
  bool standard_strings_ = true;
  Params current_;
};

}  // namespace pgshift::proxy
