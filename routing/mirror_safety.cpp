// Mirror safety classification (mirror_safety.hpp): one pass over the tokens for the text
// reasons, one pass per statement for the written tables the schema hook looks up.
#include "routing/mirror_safety.hpp"

#include <algorithm>
#include <span>

#include "routing/sql_tokens.hpp"

namespace pgshift::routing {
namespace {

using detail::is_comment;
using detail::is_name_token;
using detail::is_punct;
using detail::lower_copy;
using detail::name_of;
using detail::one_of;

constexpr std::array<std::string_view, kMirrorUnsafeReasonCount> kNames{
    "volatile_function", "random",           "sequence", "serial_default",
    "identity_default",  "volatile_default", "trigger",
};

// Built-in functions whose result depends on when or where they run. now() & co. are STABLE
// in PostgreSQL (fixed per transaction), but a replayed transaction starts later.
constexpr std::string_view kTimeFunctions[] = {
    "clock_timestamp",
    "inet_client_addr",
    "inet_client_port",
    "now",
    "pg_backend_pid",
    "pg_current_xact_id",
    "statement_timestamp",
    "timeofday",
    "transaction_timestamp",
    "txid_current",
    "pg_current_xact_id_if_assigned",
    "txid_current_if_assigned",
};
// SQL-standard forms without parentheses (reserved keywords, optionally with a precision).
constexpr std::string_view kTimeKeywords[] = {
    "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
};
constexpr std::string_view kRandomBuiltins[] = {"gen_random_uuid", "random", "random_normal"};
// Extension functions (uuid-ossp, pgcrypto): installed in any schema, matched in any.
// uuid_generate_v3/v5 are name-based, hence deterministic, and not listed.
constexpr std::string_view kRandomExtension[] = {
    "gen_random_bytes", "gen_random_uuid",    "gen_salt",
    "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
};
constexpr std::string_view kSequenceFunctions[] = {"currval", "lastval", "nextval", "setval"};
// Special date/time input strings evaluated when the literal is read.
constexpr std::string_view kTimeLiterals[] = {"now", "today", "tomorrow", "yesterday"};

class Collector {
 public:
  explicit Collector(MirrorSafety& out) : out_(out) {}
  void add(MirrorUnsafeReason r, std::string detail) {
    if (out_.reasons.contains(r)) return;
    out_.reasons.add(r);
    out_.details.emplace_back(r, std::move(detail));
  }

 private:
  MirrorSafety& out_;
};

// Tokens of the text without comments, so that neighbours are syntactic neighbours.
std::vector<Token> code_tokens(std::string_view sql, LexerOptions options) {
  std::vector<Token> toks = tokenize(sql, options);
  std::erase_if(toks, [](const Token& t) { return is_comment(t); });
  return toks;
}

bool punct_at(std::span<const Token> t, std::size_t i, char c) {
  return i < t.size() && is_punct(t[i], c);
}

bool word_at(std::span<const Token> t, std::size_t i, std::string_view w) {
  return i < t.size() && t[i].kind == TokenKind::identifier && iequals(t[i].text, w);
}

bool is_time_type(const Token& t) {
  if (t.kind != TokenKind::identifier) return false;
  const std::string w = lower_copy(t.text);
  return w == "date" || w.starts_with("time");  // time, timetz, timestamp, timestamptz
}

// 'now'::timestamptz, timestamptz 'now', CAST('today' AS date).
bool time_literal_at(std::span<const Token> t, std::size_t i) {
  const Token& s = t[i];
  if (s.kind != TokenKind::string || s.style == StringStyle::bit ||
      s.style == StringStyle::unicode) {
    return false;
  }
  std::string v = lower_copy(detail::unquote_string(s));
  const auto first = v.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return false;
  v = v.substr(first, v.find_last_not_of(" \t\r\n") - first + 1);
  if (!one_of(v, kTimeLiterals)) return false;
  if (punct_at(t, i + 1, ':') && punct_at(t, i + 2, ':') && i + 3 < t.size()) {
    return is_time_type(t[i + 3]);
  }
  if (i > 0 && is_time_type(t[i - 1])) return true;
  return word_at(t, i + 1, "as") && i + 2 < t.size() && is_time_type(t[i + 2]);
}

// A call `name(` or `schema.name(` at t[i] (the name token).
void check_call(std::span<const Token> t, std::size_t i, Collector& c) {
  std::string schema;
  if (i >= 2 && punct_at(t, i - 1, '.') && is_name_token(t[i - 2])) schema = name_of(t[i - 2]);
  const std::string name = name_of(t[i]);
  if (name.empty()) return;
  const bool builtin = schema.empty() || schema == "pg_catalog";
  const std::string shown = name + "()";
  if (builtin && one_of(name, kTimeFunctions)) c.add(MirrorUnsafeReason::volatile_function, shown);
  if (builtin && one_of(name, kTimeKeywords)) c.add(MirrorUnsafeReason::volatile_function, shown);
  if ((builtin && one_of(name, kRandomBuiltins)) || one_of(name, kRandomExtension)) {
    c.add(MirrorUnsafeReason::random, shown);
  }
  if (builtin && one_of(name, kSequenceFunctions)) c.add(MirrorUnsafeReason::sequence, shown);
}

void text_reasons(std::span<const Token> t, Collector& c) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    const Token& tok = t[i];
    if (tok.kind == TokenKind::string) {
      if (time_literal_at(t, i))
        c.add(MirrorUnsafeReason::volatile_function, std::string(tok.text));
      continue;
    }
    if (!is_name_token(tok) || punct_at(t, i + 1, '.')) continue;
    if (punct_at(t, i + 1, '(')) {
      check_call(t, i, c);
    } else if (tok.kind == TokenKind::identifier && !(i > 0 && punct_at(t, i - 1, '.')) &&
               one_of(lower_copy(tok.text), kTimeKeywords)) {
      c.add(MirrorUnsafeReason::volatile_function, lower_copy(tok.text));
    }
  }
}

// ---- schema reasons ------------------------------------------------------------------

enum class WriteKind { insert, update, remove, merge, copy_in, truncate };

struct WrittenTable {
  WriteKind kind = WriteKind::insert;
  std::string schema, table;  // schema empty: unqualified
  bool has_columns = false;   // INSERT / COPY column list given
  std::vector<std::string> columns;
};

// Parses `[ONLY] name[.name[.name]]` at t[i]; advances i past it. False if not a name.
bool parse_name(std::span<const Token> t, std::size_t& i, WrittenTable& w) {
  if (word_at(t, i, "only")) ++i;
  std::vector<std::string> parts;
  while (i < t.size() && is_name_token(t[i]) && parts.size() < 3) {
    parts.push_back(name_of(t[i]));
    ++i;
    if (!punct_at(t, i, '.')) break;
    ++i;
  }
  if (parts.empty() || parts.back().empty()) return false;
  w.table = parts.back();
  if (parts.size() >= 2) w.schema = parts[parts.size() - 2];
  if (i < t.size() && t[i].kind == TokenKind::op && t[i].text == "*") ++i;  // t * (children)
  return true;
}

// `(a, "B", c)` at t[i]: the column names; advances past ')'.
void parse_columns(std::span<const Token> t, std::size_t& i, WrittenTable& w) {
  if (!punct_at(t, i, '(')) return;
  w.has_columns = true;
  for (++i; i < t.size() && !punct_at(t, i, ')'); ++i) {
    if (is_name_token(t[i])) w.columns.push_back(name_of(t[i]));
  }
  if (i < t.size()) ++i;
}

// May a DML keyword at t[i] start a (sub)statement? At the start, after '(' (a CTE body),
// after ')' (the main statement after a WITH list), after EXPLAIN options.
bool statement_position(std::span<const Token> t, std::size_t i) {
  if (i == 0) return true;
  if (punct_at(t, i - 1, '(') || punct_at(t, i - 1, ')')) return true;
  return word_at(t, i - 1, "analyze") || word_at(t, i - 1, "analyse") ||
         word_at(t, i - 1, "verbose");
}

void add_written(std::span<const Token> t, std::size_t i, std::vector<WrittenTable>& out) {
  const std::string kw = lower_copy(t[i].text);
  WrittenTable w;
  std::size_t j = i + 1;
  if (kw == "insert" || kw == "merge") {
    if (!word_at(t, j, "into")) return;
    ++j;
    w.kind = kw == "insert" ? WriteKind::insert : WriteKind::merge;
    if (!parse_name(t, j, w)) return;
    if (word_at(t, j, "as")) j += 2;
    if (w.kind == WriteKind::insert) parse_columns(t, j, w);
  } else if (kw == "update" || kw == "delete") {
    if (kw == "delete" && !word_at(t, j++, "from")) return;
    w.kind = kw == "update" ? WriteKind::update : WriteKind::remove;
    if (!parse_name(t, j, w)) return;
  } else if (kw == "copy") {
    if (i != 0) return;
    w.kind = WriteKind::copy_in;
    if (!parse_name(t, j, w)) return;
    parse_columns(t, j, w);
    if (!word_at(t, j, "from")) return;
  } else if (kw == "truncate") {
    if (i != 0) return;
    if (word_at(t, j, "table")) ++j;
    for (;;) {
      WrittenTable each;
      each.kind = WriteKind::truncate;
      if (!parse_name(t, j, each)) return;
      out.push_back(std::move(each));
      if (!punct_at(t, j, ',')) return;
      ++j;
    }
  } else {
    return;
  }
  out.push_back(std::move(w));
}

// Is the default of `column` computed by this write?
bool default_used(const WrittenTable& w, const std::string& column, bool default_keyword) {
  const bool listed = std::find(w.columns.begin(), w.columns.end(), column) != w.columns.end();
  switch (w.kind) {
    case WriteKind::insert:
      return default_keyword || !w.has_columns || !listed;
    case WriteKind::merge:
      return true;  // its INSERT branch may leave the column out
    case WriteKind::copy_in:
      return w.has_columns && !listed;
    case WriteKind::update:
      return default_keyword;  // SET col = DEFAULT (which column: not worth parsing)
    default:
      return false;
  }
}

void schema_reasons(std::span<const Token> stmt, const MirrorSchema& schema, Collector& c) {
  std::vector<WrittenTable> written;
  bool default_keyword = false;
  for (std::size_t i = 0; i < stmt.size(); ++i) {
    if (stmt[i].kind != TokenKind::identifier) continue;
    if (iequals(stmt[i].text, "default")) default_keyword = true;
    if (statement_position(stmt, i)) add_written(stmt, i, written);
  }
  for (const WrittenTable& w : written) {
    const std::string sch = w.schema.empty() ? "public" : w.schema;
    const MirrorTableRisks* risks = schema.find(sch, w.table);
    if (risks == nullptr) continue;
    const std::string shown = sch + "." + w.table;
    if (risks->user_triggers) c.add(MirrorUnsafeReason::trigger, "trigger on " + shown);
    for (const auto& [column, reason] : risks->defaults) {
      if (default_used(w, column, default_keyword)) c.add(reason, shown + "." + column);
    }
  }
}

}  // namespace

std::string_view to_string(MirrorUnsafeReason r) {
  const auto i = static_cast<std::size_t>(r);
  return i < kNames.size() ? kNames[i] : "unknown";
}

std::optional<MirrorUnsafeReason> mirror_unsafe_reason_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<MirrorUnsafeReason>(i);
  }
  return std::nullopt;
}

const std::array<MirrorUnsafeReason, kMirrorUnsafeReasonCount>& all_mirror_unsafe_reasons() {
  static const auto all = [] {
    std::array<MirrorUnsafeReason, kMirrorUnsafeReasonCount> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<MirrorUnsafeReason>(i);
    return a;
  }();
  return all;
}

std::size_t MirrorUnsafeSet::size() const {
  return to_vector().size();
}

std::vector<MirrorUnsafeReason> MirrorUnsafeSet::to_vector() const {
  std::vector<MirrorUnsafeReason> out;
  for (MirrorUnsafeReason r : all_mirror_unsafe_reasons()) {
    if (contains(r)) out.push_back(r);
  }
  return out;
}

std::string MirrorUnsafeSet::to_string() const {
  std::string out;
  for (MirrorUnsafeReason r : to_vector()) {
    if (!out.empty()) out += ',';
    out += routing::to_string(r);
  }
  return out;
}

void MirrorSchema::add_table(std::string schema, std::string table, MirrorTableRisks risks) {
  tables_[schema + '\0' + table] = std::move(risks);
}

const MirrorTableRisks* MirrorSchema::find(std::string_view schema, std::string_view table) const {
  std::string key(schema);
  key += '\0';
  key += table;
  auto it = tables_.find(key);
  return it == tables_.end() ? nullptr : &it->second;
}

MirrorSafety classify_mirror_safety(std::string_view sql, const MirrorSchema* schema,
                                    LexerOptions options) {
  MirrorSafety out;
  Collector c(out);
  const std::vector<Token> toks = code_tokens(sql, options);
  const std::span<const Token> all(toks);
  text_reasons(all, c);
  if (schema == nullptr || schema->empty()) return out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= toks.size(); ++i) {
    if (i == toks.size() || toks[i].kind == TokenKind::semicolon) {
      if (i > start) schema_reasons(all.subspan(start, i - start), *schema, c);
      start = i + 1;
    }
  }
  return out;
}

}  // namespace pgshift::routing
