#include "routing/classifier.hpp"

#include <algorithm>
#include <vector>

#include "routing/sql_tokens.hpp"
#include "routing/statement_analyzer.hpp"

namespace pgshift::routing {
namespace {

using detail::StatementResult;

int priority(StatementClass c) {
  switch (c) {
    case StatementClass::empty:
      return 0;
    case StatementClass::read_only:
      return 1;
    case StatementClass::transaction_begin_read_only:
      return 2;
    case StatementClass::other:
      return 3;
    case StatementClass::savepoint:
      return 4;
    case StatementClass::set_local:
      return 5;
    case StatementClass::transaction_end:
      return 6;
    case StatementClass::transaction_begin:
      return 7;
    case StatementClass::session_state:
      return 8;
    case StatementClass::write:
      return 9;
    case StatementClass::ddl:
      return 10;
  }
  return 9;
}

bool read_safe(const StatementResult& r) {
  switch (r.kind) {
    case StatementClass::read_only:
    case StatementClass::transaction_begin_read_only:
    case StatementClass::savepoint:
    case StatementClass::set_local:
      return true;
    case StatementClass::transaction_end:
      return !r.prepare_transaction;
    default:
      return false;
  }
}

bool controls_transaction(StatementClass k) {
  switch (k) {
    case StatementClass::transaction_begin:
    case StatementClass::transaction_begin_read_only:
    case StatementClass::transaction_end:
    case StatementClass::savepoint:
    case StatementClass::set_local:
      return true;
    default:
      return false;
  }
}

// Several statements in one Query: read_only only if every one is read-safe; a sequence
// that leaves a BEGIN READ ONLY open is transaction_begin_read_only; otherwise the class
// with the highest priority (the one that most constrains routing).
StatementClass combine(const std::vector<StatementResult>& all) {
  std::vector<const StatementResult*> rs;
  for (const auto& r : all) {
    if (r.kind == StatementClass::empty) continue;
    rs.push_back(&r);
  }
  // SET/RESET of the routing key is handled by the proxy: neutral next to other statements.
  if (rs.size() > 1) {
    std::vector<const StatementResult*> rest;
    for (const auto* r : rs) {
      if (!r->routing_key_only) rest.push_back(r);
    }
    if (!rest.empty()) rs = std::move(rest);
  }
  if (rs.empty()) return StatementClass::empty;
  if (rs.size() == 1) return rs.front()->kind;
  const bool all_safe = std::all_of(rs.begin(), rs.end(), [](auto* r) { return read_safe(*r); });
  const bool any_read = std::any_of(rs.begin(), rs.end(), [](auto* r) {
    return r->kind == StatementClass::read_only ||
           r->kind == StatementClass::transaction_begin_read_only;
  });
  if (all_safe && any_read) {
    bool open = false;
    for (const auto* r : rs) {
      if (r->kind == StatementClass::transaction_begin_read_only) open = true;
      if (r->kind == StatementClass::transaction_end) open = false;
    }
    return open ? StatementClass::transaction_begin_read_only : StatementClass::read_only;
  }
  StatementClass best = StatementClass::empty;
  for (const auto* r : rs) {
    if (priority(r->kind) > priority(best)) best = r->kind;
  }
  return best;
}

}  // namespace

std::string_view to_string(StatementClass c) {
  switch (c) {
    case StatementClass::empty:
      return "empty";
    case StatementClass::read_only:
      return "read_only";
    case StatementClass::write:
      return "write";
    case StatementClass::ddl:
      return "ddl";
    case StatementClass::transaction_begin:
      return "transaction_begin";
    case StatementClass::transaction_begin_read_only:
      return "transaction_begin_read_only";
    case StatementClass::transaction_end:
      return "transaction_end";
    case StatementClass::savepoint:
      return "savepoint";
    case StatementClass::session_state:
      return "session_state";
    case StatementClass::set_local:
      return "set_local";
    case StatementClass::other:
      return "other";
  }
  return "invalid";
}

std::string_view to_string(PinReason r) {
  switch (r) {
    case PinReason::none:
      return "none";
    case PinReason::set:
      return "SET";
    case PinReason::listen:
      return "LISTEN";
    case PinReason::advisory_lock:
      return "advisory lock";
    case PinReason::temp_table:
      return "temp table";
    case PinReason::with_hold_cursor:
      return "WITH HOLD cursor";
    case PinReason::prepare:
      return "PREPARE";
    case PinReason::set_config:
      return "set_config";
    case PinReason::load:
      return "LOAD";
  }
  return "invalid";
}

Classifier::Classifier(ClassifierOptions options)
    : options_(std::move(options)),
      functions_(options_.allowed_functions),
      setting_lower_(detail::lower_copy(options_.routing_key_setting)) {}

Classifier Classifier::from_route(const config::Route& route, LexerOptions lexer) {
  ClassifierOptions o;
  o.routing_key_setting = route.routing_key.setting;
  o.comment_key = route.routing_key.comment_key;
  o.allowed_functions = route.read_split.allowed_functions;
  o.lexer = lexer;
  return Classifier(std::move(o));
}

Classification Classifier::classify(std::string_view sql) const {
  Classification out;
  const std::vector<Token> tokens = tokenize(sql, options_.lexer);

  std::vector<StatementResult> results;
  std::vector<Token> statement;  // without comments
  bool statement_bad = false;    // an unterminated comment inside the statement
  auto flush = [&] {
    StatementResult r = detail::analyze_statement(statement, functions_, setting_lower_);
    if (statement_bad) {
      r.not_understood = true;
      r.kind = StatementClass::write;
    }
    results.push_back(std::move(r));
    statement.clear();
    statement_bad = false;
  };
  for (const Token& t : tokens) {
    if (detail::is_comment(t)) {
      if (!t.terminated) statement_bad = true;
      if (!out.comment_routing_key && !options_.comment_key.empty()) {
        out.comment_routing_key = parse_sqlcommenter(t.text, options_.comment_key);
      }
      continue;
    }
    if (t.kind == TokenKind::semicolon) {
      flush();
      continue;
    }
    statement.push_back(t);
  }
  flush();

  out.kind = combine(results);
  bool all_key = true;
  for (auto& r : results) {
    if (r.kind == StatementClass::empty) continue;
    ++out.statement_count;
    out.has_locking_clause |= r.locking;
    out.has_data_modification |= r.data_mod;
    out.not_understood |= r.not_understood;
    out.controls_transaction |= r.not_understood || controls_transaction(r.kind);
    if (r.unknown_fn && !out.calls_unknown_function) {
      out.calls_unknown_function = true;
      out.unknown_function = std::move(r.unknown_function);
    }
    if (out.pin == PinReason::none) out.pin = r.pin;
    if (r.key_change) out.routing_key_change = std::move(r.key_change);
    all_key &= r.routing_key_only;
  }
  out.only_routing_key = out.statement_count > 0 && all_key;
  // Would the query be read-safe if its unknown functions were read-only? (A READ ONLY
  // transaction, where the server itself refuses writes, could run it anywhere.)
  if (out.kind == StatementClass::write) {
    bool any_unknown = false;
    bool rest_safe = true;
    for (const auto& r : results) {
      if (r.kind == StatementClass::empty || r.routing_key_only) continue;
      if (r.kind == StatementClass::write && r.only_unknown_functions) {
        any_unknown = true;
      } else if (!read_safe(r)) {
        rest_safe = false;
      }
    }
    out.only_unknown_functions = any_unknown && rest_safe;
  }
  return out;
}

}  // namespace pgshift::routing