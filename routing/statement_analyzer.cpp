// The per-statement analysis behind Classifier::classify: a small recursive-descent walk
// over the tokens of one statement that decides its StatementClass and flags.
#include "routing/statement_analyzer.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "routing/sql_tokens.hpp"

namespace pgshift::routing::detail {
namespace {

// EXPLAIN and COPY classify an inner statement; nesting deeper than this is not SQL.
constexpr int kMaxDepth = 8;

class StatementAnalyzer {
 public:
  StatementAnalyzer(std::span<const Token> toks, const FunctionPolicy& functions,
                    std::string_view setting_lower, int depth)
      : t_(toks), functions_(functions), setting_(setting_lower), depth_(depth) {
    match_parens();
  }

  StatementResult run() {
    if (t_.empty()) return r_;
    if (depth_ > kMaxDepth) return write();
    for (const Token& t : t_) {
      if (t.kind == TokenKind::unknown || !t.terminated) {
        r_.not_understood = true;
        return write();
      }
    }
    if (unbalanced_) return write();
    if (is_punct(t_[0], '(')) return query();
    if (t_[0].kind != TokenKind::identifier) return write();
    const std::string kw = lower_copy(t_[0].text);

    if (kw == "select" || kw == "values" || kw == "table" || kw == "with") return query();
    if (kw == "show") return with(StatementClass::read_only);
    if (kw == "explain") return explain();
    if (kw == "copy") return copy();
    if (kw == "insert" || kw == "update" || kw == "delete" || kw == "merge") return dml();
    if (kw == "truncate" || kw == "call" || kw == "do" || kw == "lock" || kw == "notify" ||
        kw == "refresh" || kw == "execute") {
      return write();
    }
    if (kw == "begin") return begin(1);
    if (kw == "start") return kw_at(1, "transaction") ? begin(2) : write();
    if (kw == "commit" || kw == "end" || kw == "abort") {
      return kw_at(1, "prepared") ? write() : with(StatementClass::transaction_end);
    }
    if (kw == "rollback") return rollback();
    if (kw == "savepoint" || kw == "release") return with(StatementClass::savepoint);
    if (kw == "prepare") {
      if (kw_at(1, "transaction")) {
        r_.prepare_transaction = true;
        return with(StatementClass::transaction_end);
      }
      return pinned(PinReason::prepare);
    }
    if (kw == "deallocate" || kw == "unlisten") return with(StatementClass::session_state);
    if (kw == "listen") return pinned(PinReason::listen);
    if (kw == "load") return pinned(PinReason::load);
    if (kw == "discard") {
      if (kw_at(1, "all")) r_.key_change = RoutingKeyChange{RoutingKeyChange::Kind::reset, {}};
      return with(StatementClass::session_state);
    }
    if (kw == "set") return set();
    if (kw == "reset") return reset();
    if (kw == "declare") return declare();
    if (kw == "fetch" || kw == "move" || kw == "close" || kw == "vacuum" || kw == "analyze" ||
        kw == "analyse" || kw == "checkpoint" || kw == "cluster" || kw == "reindex") {
      return with(StatementClass::other);
    }
    if (kw == "create") return create();
    if (kw == "alter" || kw == "drop" || kw == "comment" || kw == "grant" || kw == "revoke" ||
        kw == "security" || kw == "reassign" || kw == "import") {
      return with(StatementClass::ddl);
    }
    return write();  // not a statement we know: the authoritative side decides
  }

 private:
  bool kw_at(std::size_t i, std::string_view word) const {
    return i < t_.size() && t_[i].kind == TokenKind::identifier && iequals(t_[i].text, word);
  }
  bool punct_at(std::size_t i, char c) const { return i < t_.size() && is_punct(t_[i], c); }

  StatementResult with(StatementClass c) {
    r_.kind = c;
    return r_;
  }
  StatementResult write() { return with(StatementClass::write); }
  StatementResult pinned(PinReason why) {
    if (r_.pin == PinReason::none) r_.pin = why;
    return with(StatementClass::session_state);
  }

  // match_[i] = index of the matching bracket for '(' / ')', computed once so that every
  // later look-up is O(1) and the whole analysis stays linear.
  void match_parens() {
    match_.assign(t_.size(), t_.size());
    std::vector<std::size_t> stack;
    for (std::size_t i = 0; i < t_.size(); ++i) {
      if (is_punct(t_[i], '(')) {
        stack.push_back(i);
      } else if (is_punct(t_[i], ')')) {
        if (stack.empty()) {
          unbalanced_ = true;
          continue;
        }
        match_[i] = stack.back();
        match_[stack.back()] = i;
        stack.pop_back();
      }
    }
    if (!stack.empty()) unbalanced_ = true;
  }

  StatementResult sub(std::size_t from, std::size_t to) const {
    if (from >= to || to > t_.size()) return StatementResult{};
    return StatementAnalyzer(t_.subspan(from, to - from), functions_, setting_, depth_ + 1).run();
  }

  // Merges the flags (not the class) of an inner statement.
  void absorb(const StatementResult& in) {
    r_.locking |= in.locking;
    r_.data_mod |= in.data_mod;
    r_.not_understood |= in.not_understood;
    if (in.unknown_fn && !r_.unknown_fn) {
      r_.unknown_fn = true;
      r_.unknown_function = in.unknown_function;
    }
    if (r_.pin == PinReason::none) r_.pin = in.pin;
  }

  // SELECT / VALUES / TABLE / WITH / parenthesized query, and the body scan of DML.
  StatementResult query() {
    bool write_fn = false;
    bool session_fn = false;
    bool temp_into = false;
    const std::size_t n = t_.size();
    for (std::size_t i = 0; i < n; ++i) {
      const Token& t = t_[i];
      if (t.kind == TokenKind::identifier) {
        const bool qualified = (i > 0 && punct_at(i - 1, '.')) || punct_at(i + 1, '.');
        if (!qualified) {
          const std::string w = lower_copy(t.text);
          if (w == "for") {
            if (kw_at(i + 1, "update") || kw_at(i + 1, "share") ||
                (kw_at(i + 1, "no") && kw_at(i + 2, "key")) ||
                (kw_at(i + 1, "key") && kw_at(i + 2, "share"))) {
              r_.locking = true;
              i += kw_at(i + 1, "no") ? 3 : (kw_at(i + 1, "key") ? 2 : 1);
              continue;
            }
          } else if (w == "insert" || w == "update" || w == "delete" || w == "merge") {
            r_.data_mod = true;
          } else if (w == "into") {
            if (kw_at(i + 1, "temp") || kw_at(i + 1, "temporary")) {
              temp_into = true;
              if (r_.pin == PinReason::none) r_.pin = PinReason::temp_table;
            } else {
              r_.data_mod = true;  // SELECT ... INTO creates a table
            }
          }
        }
      }
      if (is_name_token(t) && punct_at(i + 1, '(')) {
        switch (call_at(i)) {
          case FunctionKind::write:
            write_fn = true;
            break;
          case FunctionKind::advisory_lock:
          case FunctionKind::advisory_unlock:
          case FunctionKind::set_config:
            session_fn = true;
            break;
          default:
            break;
        }
      }
    }
    if (r_.unknown_fn && !r_.data_mod && !r_.locking && !write_fn && !session_fn && !temp_into) {
      r_.only_unknown_functions = true;
    }
    if (r_.data_mod || r_.locking || write_fn || r_.unknown_fn) return write();
    if (session_fn || temp_into) return with(StatementClass::session_state);
    return with(StatementClass::read_only);
  }

  // Does t_[i - 1] end a value (so that t_[i] continues an expression: a LIKE (b))?
  bool after_value(std::size_t i) const {
    if (i == 0) return false;
    const Token& p = t_[i - 1];
    switch (p.kind) {
      case TokenKind::identifier:
        return !one_of(lower_copy(p.text), kReserved);
      case TokenKind::quoted_identifier:
      case TokenKind::string:
      case TokenKind::number:
      case TokenKind::parameter:
        return true;
      case TokenKind::punct:
        return p.text == ")" || p.text == "]";
      default:
        return false;
    }
  }

  // Is `word(` at t_[i] syntax rather than a call? Reserved words always are. Unreserved
  // keywords can also name functions, so they count as syntax only in their place:
  //   x [NOT] LIKE (...), ILIKE, SIMILAR, IS, JOIN   after a value
  //   FETCH FIRST (n) / NEXT (n)                     after FETCH
  //   GROUPING SETS (...)                            after GROUPING
  //   WITH x AS NOT MATERIALIZED (...)               after AS NOT
  //   AT TIME ZONE (...)                             after TIME
  //   ORDER / GROUP / PARTITION BY (...)             after those (and SEARCH ... FIRST BY)
  //   a OPERATOR(schema.op) b                        parentheses hold only an operator name
  // (FILTER/OVER/REPEATABLE/WITHIN GROUP follow ')' and MATERIALIZED follows AS: see call_at.)
  bool is_syntax(std::size_t i, std::string_view w) const {
    if (one_of(w, kReservedBeforeParen)) return true;
    if (w == "like" || w == "ilike" || w == "similar" || w == "is" || w == "join") {
      return after_value(i) || (kw_at(i - 1, "not") && after_value(i - 1));  // a NOT LIKE (b)
    }
    if (w == "first" || w == "next") return kw_at(i - 1, "fetch");
    if (w == "sets") return kw_at(i - 1, "grouping");
    if (w == "materialized") return kw_at(i - 1, "not") && kw_at(i - 2, "as");  // CTE
    if (w == "zone") return kw_at(i - 1, "time");
    if (w == "by") {
      return kw_at(i - 1, "order") || kw_at(i - 1, "group") || kw_at(i - 1, "partition") ||
             kw_at(i - 1, "first");
    }
    if (w == "operator") {
      const std::size_t close = match_[i + 1];
      bool has_op = false;
      for (std::size_t j = i + 2; j < close && j < t_.size(); ++j) {
        if (t_[j].kind == TokenKind::op) {
          has_op = true;
        } else if (!is_name_token(t_[j]) && !punct_at(j, '.')) {
          return false;
        }
      }
      return has_op;
    }
    return false;
  }

  // Classifies the call whose name is at t_[i] (t_[i + 1] is '('); records flags.
  FunctionKind call_at(std::size_t i) {
    const Token& t = t_[i];
    const bool qualified = i >= 2 && punct_at(i - 1, '.') && is_name_token(t_[i - 2]);
    if (!qualified) {
      if (t.kind == TokenKind::identifier && is_syntax(i, lower_copy(t.text))) {
        return FunctionKind::read_only;
      }
      // AS alias(a, b) and CAST(x AS numeric(10, 2)); ") alias(a, b)" after a FROM item.
      if (i >= 1 && (kw_at(i - 1, "as") || punct_at(i - 1, ')'))) return FunctionKind::read_only;
      // WITH [RECURSIVE] name(a, b) AS [[NOT] MATERIALIZED] (...): a CTE column list.
      const std::size_t close = match_[i + 1];
      if (i >= 1 && (kw_at(i - 1, "with") || kw_at(i - 1, "recursive") || punct_at(i - 1, ',')) &&
          close < t_.size() && kw_at(close + 1, "as") &&
          (punct_at(close + 2, '(') ||
           (kw_at(close + 2, "materialized") && punct_at(close + 3, '(')) ||
           (kw_at(close + 2, "not") && kw_at(close + 3, "materialized") &&
            punct_at(close + 4, '(')))) {
        return FunctionKind::read_only;
      }
    }
    std::string schema;
    if (qualified) {
      schema = name_of(t_[i - 2]);
      // db.schema.func: never a builtin; keep the whole prefix so the look-up fails.
      if (i >= 4 && punct_at(i - 3, '.')) schema = name_of(t_[i - 4]) + "." + schema;
      if (schema.empty()) schema = "?";
    }
    std::string name = name_of(t);
    if (name.empty()) name = "?";
    FunctionKind kind = functions_.classify(schema, name);
    switch (kind) {
      case FunctionKind::read_only:
      case FunctionKind::write:
      case FunctionKind::advisory_unlock:
        break;
      case FunctionKind::unknown:
        if (!r_.unknown_fn) {
          r_.unknown_fn = true;
          r_.unknown_function = schema.empty() ? name : schema + "." + name;
        }
        break;
      case FunctionKind::advisory_lock:
        if (r_.pin == PinReason::none) r_.pin = PinReason::advisory_lock;
        break;
      case FunctionKind::set_config: {
        // set_config(name, value, is_local): only a literal true keeps it transaction-local.
        const std::size_t close = match_[i + 1];
        const bool local = close < t_.size() && close >= 1 &&
                           (kw_at(close - 1, "true") || (t_[close - 1].kind == TokenKind::string &&
                                                         (unquote_string(t_[close - 1]) == "t" ||
                                                          unquote_string(t_[close - 1]) == "true" ||
                                                          unquote_string(t_[close - 1]) == "on")));
        if (local) {
          kind = FunctionKind::write;
        } else if (r_.pin == PinReason::none) {
          r_.pin = PinReason::set_config;
        }
        break;
      }
    }
    return kind;
  }

  StatementResult dml() {
    query();  // for pins (INSERT ... SELECT pg_advisory_lock(1)) and flags
    r_.data_mod = true;
    r_.unknown_fn = false;  // INSERT INTO t(a, b) looks like a call; the class says enough
    r_.unknown_function.clear();
    return write();
  }

  // EXPLAIN [ANALYZE] [VERBOSE] stmt | EXPLAIN (option, ...) stmt: as read as stmt.
  StatementResult explain() {
    std::size_t i = 1;
    if (punct_at(1, '(')) {
      i = match_[1] + 1;
    } else {
      while (kw_at(i, "analyze") || kw_at(i, "analyse") || kw_at(i, "verbose")) ++i;
    }
    const StatementResult inner = sub(i, t_.size());
    absorb(inner);
    r_.only_unknown_functions = inner.only_unknown_functions;
    return inner.kind == StatementClass::read_only ? with(StatementClass::read_only) : write();
  }

  // COPY table [(cols)] TO STDOUT and COPY (query) TO STDOUT read; everything else writes
  // (FROM, or TO a server file or program).
  StatementResult copy() {
    std::size_t i = 1;
    if (kw_at(i, "binary")) ++i;
    bool inner_read = true;
    bool inner_only_unknown = false;
    if (punct_at(i, '(')) {
      const std::size_t close = match_[i];
      const StatementResult inner = sub(i + 1, close);
      absorb(inner);
      inner_read = inner.kind == StatementClass::read_only;
      inner_only_unknown = inner.only_unknown_functions;
      i = close + 1;
    } else {
      if (i >= t_.size() || !is_name_token(t_[i])) return write();
      ++i;
      while (punct_at(i, '.') && i + 1 < t_.size() && is_name_token(t_[i + 1])) i += 2;
      if (punct_at(i, '(')) i = match_[i] + 1;
    }
    if (kw_at(i, "to") && kw_at(i + 1, "stdout")) {
      if (inner_read) return with(StatementClass::read_only);
      r_.only_unknown_functions = inner_only_unknown;
    }
    r_.data_mod = kw_at(i, "from") || r_.data_mod;
    return write();
  }

  // BEGIN [WORK | TRANSACTION] [mode, ...] / START TRANSACTION [mode, ...]
  StatementResult begin(std::size_t i) {
    if (kw_at(i, "work") || kw_at(i, "transaction")) ++i;
    bool read_only = false;
    bool read_write = false;
    for (; i < t_.size(); ++i) {
      if (punct_at(i, ',')) continue;
      if (t_[i].kind != TokenKind::identifier) return write();
      if (kw_at(i, "read") && kw_at(i + 1, "only")) read_only = true;
      if (kw_at(i, "read") && kw_at(i + 1, "write")) read_write = true;
    }
    if (read_only && !read_write) return with(StatementClass::transaction_begin_read_only);
    return with(StatementClass::transaction_begin);
  }

  StatementResult rollback() {
    if (kw_at(1, "prepared")) return write();
    for (std::size_t i = 1; i < t_.size(); ++i) {
      if (kw_at(i, "to")) return with(StatementClass::savepoint);
    }
    return with(StatementClass::transaction_end);
  }

  bool mentions_read_write() const {
    for (std::size_t i = 0; i + 1 < t_.size(); ++i) {
      if (kw_at(i, "read") && kw_at(i + 1, "write")) return true;
    }
    return false;
  }

  // Reads a dotted setting name at t_[i]; returns it lower-cased and moves i past it.
  std::string setting_name(std::size_t& i) const {
    std::string name;
    if (i >= t_.size() || !is_name_token(t_[i])) return name;
    name = lower_copy(name_of(t_[i++]));
    while (punct_at(i, '.') && i + 1 < t_.size() && is_name_token(t_[i + 1])) {
      name += "." + lower_copy(name_of(t_[i + 1]));
      i += 2;
    }
    return name;
  }

  StatementResult set() {
    std::size_t i = 1;
    if (kw_at(1, "session") && kw_at(2, "characteristics")) {
      r_.pin = PinReason::set;
      return mentions_read_write() ? write() : with(StatementClass::session_state);
    }
    bool local = false;
    if (kw_at(i, "local")) {
      local = true;
      ++i;
    } else if (kw_at(i, "session") && !kw_at(i + 1, "authorization")) {
      ++i;
    }
    if (kw_at(i, "transaction") || kw_at(i, "constraints")) {
      return mentions_read_write() ? write() : with(StatementClass::set_local);
    }
    const std::string name = setting_name(i);
    if (name.empty()) return write();
    if (!setting_.empty() && name == setting_) return set_routing_key(i, local);
    if (!local) r_.pin = PinReason::set;
    if (name == "transaction_read_only" || name == "default_transaction_read_only") {
      return write();  // could turn a read-only transaction into a read-write one
    }
    return with(local ? StatementClass::set_local : StatementClass::session_state);
  }

  StatementResult set_routing_key(std::size_t i, bool local) {
    if (kw_at(i, "to") || (i < t_.size() && t_[i].kind == TokenKind::op && t_[i].text == "=")) {
      ++i;
    } else {
      return write();  // SET x FROM CURRENT and other forms we do not model
    }
    RoutingKeyChange change;
    change.local = local;
    if (kw_at(i, "default") && i + 1 == t_.size()) {
      change.kind = RoutingKeyChange::Kind::reset;
    } else {
      std::string value;
      for (; i < t_.size(); ++i) {
        const Token& v = t_[i];
        if (punct_at(i, ',')) {
          value += ", ";
        } else if (v.kind == TokenKind::string) {
          value += unquote_string(v);
        } else if (v.kind == TokenKind::number || is_name_token(v)) {
          value += v.kind == TokenKind::number ? std::string(v.text) : name_of(v);
        } else if (v.kind == TokenKind::op && v.text == "-" && i + 1 < t_.size() &&
                   t_[i + 1].kind == TokenKind::number) {
          value += "-";
        } else {
          return write();
        }
      }
      if (value.empty()) return write();
      change.value = std::move(value);
    }
    r_.key_change = std::move(change);
    r_.routing_key_only = true;
    return with(local ? StatementClass::set_local : StatementClass::session_state);
  }

  StatementResult reset() {
    std::size_t i = 1;
    if (kw_at(1, "all") && t_.size() == 2) {
      r_.key_change = RoutingKeyChange{RoutingKeyChange::Kind::reset, {}};
      return with(StatementClass::session_state);
    }
    const std::string name = setting_name(i);
    if (!setting_.empty() && name == setting_ && i == t_.size()) {
      r_.key_change = RoutingKeyChange{RoutingKeyChange::Kind::reset, {}};
      r_.routing_key_only = true;
    }
    return with(StatementClass::session_state);
  }

  // DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [[NO] SCROLL] CURSOR
  //   [{WITH | WITHOUT} HOLD] FOR query
  StatementResult declare() {
    std::size_t i = 2;
    while (i < t_.size() && !kw_at(i, "cursor")) {
      if (!(kw_at(i, "binary") || kw_at(i, "asensitive") || kw_at(i, "insensitive") ||
            kw_at(i, "no") || kw_at(i, "scroll"))) {
        return write();
      }
      ++i;
    }
    if (!kw_at(i, "cursor")) return write();
    ++i;
    bool hold = false;
    if (kw_at(i, "with") && kw_at(i + 1, "hold")) {
      hold = true;
      i += 2;
    } else if (kw_at(i, "without") && kw_at(i + 1, "hold")) {
      i += 2;
    }
    if (!kw_at(i, "for")) return write();
    const StatementResult inner = sub(i + 1, t_.size());
    absorb(inner);
    if (hold) return pinned(PinReason::with_hold_cursor);
    r_.only_unknown_functions = inner.only_unknown_functions;
    return inner.kind == StatementClass::read_only ? with(StatementClass::read_only) : write();
  }

  // CREATE [OR REPLACE] [GLOBAL | LOCAL] {TEMP | TEMPORARY} ... or CREATE TABLE pg_temp.x
  StatementResult create() {
    std::size_t i = 1;
    if (kw_at(i, "or") && kw_at(i + 1, "replace")) i += 2;
    if (kw_at(i, "global") || kw_at(i, "local")) ++i;
    bool temp = kw_at(i, "temp") || kw_at(i, "temporary");
    if (!temp) {
      for (std::size_t j = i; j + 1 < t_.size() && j < i + 8; ++j) {
        if (kw_at(j, "pg_temp") && punct_at(j + 1, '.')) temp = true;
      }
    }
    return temp ? pinned(PinReason::temp_table) : with(StatementClass::ddl);
  }

  std::span<const Token> t_;
  const FunctionPolicy& functions_;
  std::string_view setting_;
  int depth_;
  std::vector<std::size_t> match_;
  bool unbalanced_ = false;
  StatementResult r_;
};

}  // namespace

StatementResult analyze_statement(std::span<const Token> tokens, const FunctionPolicy& functions,
                                  std::string_view setting_lower) {
  return StatementAnalyzer(tokens, functions, setting_lower, 0).run();
}

}  // namespace pgshift::routing::detail
