#pragma once
// Classifies the text of one Query (simple protocol, possibly several statements) or one
// Parse (extended protocol, one statement) for routing. The rule is "provably read-only or
// authoritative": only statements whose every token the classifier understands, and which
// are shown to be reads, may go to the non-authoritative side. Anything else (writes, DDL,
// unknown statements, unknown functions, text the lexer could not close) goes to the
// authoritative side. The rules are listed in docs/routing.md.
//
// The analysis is lexical, not a full parse: it cannot see inside views, rules, triggers or
// user-defined operators. A SELECT from a view that calls nextval() is classified read_only.
//
// Pure; a Classifier is immutable after construction and safe to share between threads.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "routing/function_policy.hpp"
#include "routing/lexer.hpp"
#include "routing/routing_key.hpp"

namespace pgshift::routing {

enum class StatementClass : std::uint8_t {
  empty,                        // no statement (only whitespace/comments/';'): goes anywhere
  read_only,                    // SELECT/VALUES/TABLE/SHOW/EXPLAIN/COPY TO STDOUT, proven
  write,                        // DML, CALL, DO, locking reads, unknown functions, unknown
  ddl,                          // CREATE/ALTER/DROP/GRANT/COMMENT/... (not temp objects)
  transaction_begin,            // BEGIN / START TRANSACTION (read-write)
  transaction_begin_read_only,  // BEGIN READ ONLY / START TRANSACTION ... READ ONLY
  transaction_end,              // COMMIT/END/ROLLBACK/ABORT, PREPARE TRANSACTION
  savepoint,                    // SAVEPOINT, RELEASE, ROLLBACK TO
  session_state,                // SET, RESET, LISTEN, UNLISTEN, PREPARE, DEALLOCATE, DISCARD,
                                // DECLARE WITH HOLD, CREATE TEMP, pg_advisory_lock, LOAD
  set_local,                    // SET LOCAL, SET TRANSACTION, SET CONSTRAINTS
  other,                        // VACUUM, ANALYZE, CHECKPOINT, CLUSTER, REINDEX, FETCH, MOVE,
                                // CLOSE
};

std::string_view to_string(StatementClass c);

// Why a statement leaves state behind on its server connection, which then cannot be
// shared in transaction pooling (DESIGN.md §3).
enum class PinReason : std::uint8_t {
  none,
  set,               // "SET"
  listen,            // "LISTEN"
  advisory_lock,     // "advisory lock"
  temp_table,        // "temp table"
  with_hold_cursor,  // "WITH HOLD cursor"
  prepare,           // "PREPARE"
  set_config,        // "set_config"
  load,              // "LOAD"
};

std::string_view to_string(PinReason r);

struct Classification {
  StatementClass kind = StatementClass::empty;
  std::size_t statement_count = 0;  // non-empty statements
  bool has_locking_clause = false;  // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
  bool calls_unknown_function = false;
  std::string unknown_function;        // the first one (for logs), e.g. "public.audit"
  bool has_data_modification = false;  // INSERT/UPDATE/DELETE/MERGE/INTO anywhere
  // kind == write only because of calls to functions not on the allow-list: the query is
  // otherwise read-safe. Such a query may run inside a READ ONLY transaction on the
  // non-authoritative side, where the server refuses any write the functions attempt.
  bool only_unknown_functions = false;
  bool not_understood = false;      // unterminated literal/comment or a byte the lexer rejects
  // A statement controls the transaction block (BEGIN, COMMIT/ROLLBACK, SAVEPOINT, RELEASE,
  // ROLLBACK TO, SET LOCAL/TRANSACTION/CONSTRAINTS) or was not understood: the mirror's
  // replay joins only statements without it into one Query (proxy/mirror/replay_batch.hpp).
  bool controls_transaction = false;
  PinReason pin = PinReason::none;  // first statement that pins
  std::optional<RoutingKeyChange> routing_key_change;  // the last SET/RESET of the key
  // Every statement is a SET/RESET of the routing-key setting: the proxy can answer the
  // query itself instead of forwarding it.
  bool only_routing_key = false;
  std::optional<std::string> comment_routing_key;  // sqlcommenter value, first comment wins

  bool pins_session() const { return pin != PinReason::none; }
  bool is_read_only() const { return kind == StatementClass::read_only; }
};

struct ClassifierOptions {
  std::string routing_key_setting = "pgshift.routing_key";  // config routing_key.setting
  std::string comment_key = "user_id";                      // config routing_key.comment_key
  std::vector<std::string> allowed_functions;               // config read_split.allowed_functions
  LexerOptions lexer;
};

class Classifier {
 public:
  explicit Classifier(ClassifierOptions options = {});
  static Classifier from_route(const config::Route& route, LexerOptions lexer = {});

  Classification classify(std::string_view sql) const;

  const ClassifierOptions& options() const { return options_; }

 private:
  ClassifierOptions options_;
  FunctionPolicy functions_;
  std::string setting_lower_;
};

}  // namespace pgshift::routing
