#include "proxy/session/mirror_settings.hpp"

#include <algorithm>

#include "routing/lexer.hpp"
#include "wire/message_types.hpp"

namespace pgshift::proxy {

namespace {

using routing::Token;
using routing::TokenKind;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

template <std::size_t N>
bool listed(std::string_view name, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Settings the server reports in ParameterStatus (GUC_REPORT, PostgreSQL 15) that are
// carried: their value is taken from the report, never parsed from a SET.
bool carried_reported(std::string_view name) {
  static constexpr std::string_view kNames[] = {"client_encoding",
                                                "datestyle",
                                                "intervalstyle",
                                                "timezone",
                                                "standard_conforming_strings",
                                                "default_transaction_read_only"};
  return listed(name, kNames);
}

// Reported settings that are not the session's to carry (the mirror has its own identity).
bool other_reported(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "application_name", "is_superuser",      "session_authorization", "server_version",
      "server_encoding",  "integer_datetimes", "in_hot_standby"};
  return listed(name, kNames);
}

// Settings a replay must not take from a client: they change who runs it or turn off the
// target's triggers and foreign keys.
bool refused_name(std::string_view name) {
  return name == "role" || name == "session_authorization" || name == "session_replication_role" ||
         name.starts_with("pgshift.");
}

// Settings that change what a statement does, carried from startup `options` (which may
// also hold backend-start and superuser switches, which set_config() would refuse).
bool carried_option(std::string_view name) {
  static constexpr std::string_view kNames[] = {"search_path",
                                                "timezone",
                                                "datestyle",
                                                "intervalstyle",
                                                "extra_float_digits",
                                                "bytea_output",
                                                "lc_monetary",
                                                "lc_numeric",
                                                "lc_time",
                                                "xmloption",
                                                "xmlbinary",
                                                "array_nulls",
                                                "default_text_search_config",
                                                "transform_null_equals",
                                                "standard_conforming_strings",
                                                "client_encoding",
                                                "temp_tablespaces",
                                                "default_tablespace",
                                                "check_function_bodies",
                                                "synchronous_commit",
                                                "row_security"};
  if (name.find('.') != std::string_view::npos) return !name.starts_with("pgshift.");
  return listed(name, kNames);
}

// Settings whose value is a list of identifiers (GUC_LIST_QUOTE): PostgreSQL quotes each
// element of a SET (flatten_set_variable_args), so "S2" and 'S2' keep their case.
bool list_quoted(std::string_view name) {
  return name == "search_path" || name == "temp_tablespaces";
}

std::string quote_ident(std::string_view v) {
  bool safe = !v.empty() && ((v[0] >= 'a' && v[0] <= 'z') || v[0] == '_');
  for (char c : v) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) safe = false;
  }
  if (safe) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool is_name(const Token& t) {
  return t.kind == TokenKind::identifier || t.kind == TokenKind::quoted_identifier;
}

// The name an identifier token denotes; nullopt-like "" for what is not decoded (U&"...").
std::string name_of(const Token& t) {
  if (t.kind == TokenKind::identifier) return lower(t.text);
  if (t.kind != TokenKind::quoted_identifier || !t.terminated || t.text.size() < 2 ||
      t.text[0] != '"') {
    return {};
  }
  std::string out;
  const std::string_view in = t.text.substr(1, t.text.size() - 2);
  for (std::size_t i = 0; i < in.size(); ++i) {
    out += in[i];
    if (in[i] == '"' && i + 1 < in.size() && in[i + 1] == '"') ++i;
  }
  return out;
}

// The value of a string literal; false for what is not decoded here (U&'', B'', X'').
bool string_value(const Token& t, bool standard, std::string& out) {
  out.clear();
  std::string_view s = t.text;
  if (!t.terminated) return false;
  if (t.style == routing::StringStyle::dollar) {
    const std::size_t open = s.find('$', 1);
    if (open == std::string_view::npos || s.size() < 2 * (open + 1)) return false;
    out = s.substr(open + 1, s.size() - 2 * (open + 1));
    return true;
  }
  bool backslash = t.style == routing::StringStyle::escape;
  if (t.style == routing::StringStyle::standard) {
    backslash = !standard;
  } else if (!backslash && t.style != routing::StringStyle::national) {
    return false;
  }
  const std::size_t q = s.find('\'');
  if (q == std::string_view::npos || s.size() < q + 2) return false;
  s = s.substr(q + 1, s.size() - q - 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (backslash && s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      if (c == 'n' || c == 't' || c == 'r' || c == 'b' || c == 'f' || c == 'x' || c == 'u' ||
          c == 'U' || (c >= '0' && c <= '7')) {
        return false;  // escapes beyond a quoted character: not decoded here
      }
      out += c;
    } else if (s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
      out += s[++i];
    } else {
      out += s[i];
    }
  }
  return true;
}

bool keyword(const std::vector<Token>& t, std::size_t i, std::string_view w) {
  return i < t.size() && t[i].kind == TokenKind::identifier && lower(t[i].text) == w;
}

bool punct(const std::vector<Token>& t, std::size_t i, char c) {
  return i < t.size() && t[i].kind == TokenKind::punct && t[i].text.size() == 1 &&
         t[i].text[0] == c;
}

// A SET's value list from t[i] to the end, flattened as PostgreSQL does; false when a token
// is not one a value list may hold (then the change is refused rather than guessed).
bool value_list(const std::vector<Token>& t, std::size_t i, std::string_view name, bool standard,
                std::string& value) {
  const bool quote = list_quoted(name);
  bool want_item = true;
  std::string item, sign;
  for (; i < t.size(); ++i) {
    const Token& v = t[i];
    if (!want_item) {
      if (!punct(t, i, ',')) return false;
      value += ", ";
      want_item = true;
      continue;
    }
    if (v.kind == TokenKind::op && (v.text == "-" || v.text == "+") && sign.empty()) {
      sign = v.text == "-" ? "-" : "";
      if (i + 1 >= t.size() || t[i + 1].kind != TokenKind::number) return false;
      continue;
    }
    if (v.kind == TokenKind::number) {
      value += sign + std::string(v.text);
    } else if (v.kind == TokenKind::string) {
      if (!string_value(v, standard, item)) return false;
      value += quote ? quote_ident(item) : item;
    } else if (is_name(v)) {
      item = name_of(v);
      if (item.empty()) return false;
      value += quote ? quote_ident(item) : item;
    } else {
      return false;
    }
    sign.clear();
    want_item = false;
  }
  return !want_item;
}

SettingChange refused(std::string what) {
  return {SettingChange::Kind::refused, std::move(what), {}};
}

// One SET statement (t[0] is SET).
void parse_set(const std::vector<Token>& t, bool standard, std::vector<SettingChange>& out) {
  std::size_t i = 1;
  if (keyword(t, i, "local")) return;  // transaction-local: replayed inside its transaction
  if (keyword(t, i, "session")) {
    if (keyword(t, i + 1, "authorization"))
      return out.push_back(refused("SET SESSION AUTHORIZATION"));
    if (keyword(t, i + 1, "characteristics")) return;  // transaction defaults: not carried
    ++i;
  }
  if (keyword(t, i, "transaction") || keyword(t, i, "constraints") || keyword(t, i, "seed")) {
    return;  // this transaction only, or nothing a later statement reads back
  }
  if (keyword(t, i, "role")) return out.push_back(refused("SET ROLE"));
  if (keyword(t, i, "time") && keyword(t, i + 1, "zone")) {
    return out.push_back({SettingChange::Kind::reported, "timezone", {}});
  }
  if (keyword(t, i, "names")) {
    return out.push_back({SettingChange::Kind::reported, "client_encoding", {}});
  }
  std::string name;
  std::size_t v = i;
  if (keyword(t, i, "schema")) {
    name = "search_path";
    v = i + 1;
  } else if (keyword(t, i, "xml") && keyword(t, i + 1, "option")) {
    name = "xmloption";
    v = i + 2;
  } else {
    if (i >= t.size() || !is_name(t[i])) return out.push_back(refused("SET (not understood)"));
    name = lower(name_of(t[i]));
    for (v = i + 1; punct(t, v, '.') && v + 1 < t.size() && is_name(t[v + 1]); v += 2) {
      name += "." + lower(name_of(t[v + 1]));
    }
    if (keyword(t, v, "to") || (v < t.size() && t[v].kind == TokenKind::op && t[v].text == "=")) {
      ++v;
    } else {
      return out.push_back(refused("SET " + name + " (not understood)"));
    }
  }
  if (refused_name(name)) return out.push_back(refused("SET " + name));
  if (other_reported(name)) return;
  if (carried_reported(name)) return out.push_back({SettingChange::Kind::reported, name, {}});
  if (keyword(t, v, "default") && v + 1 == t.size()) {
    return out.push_back({SettingChange::Kind::reset, name, {}});
  }
  std::string value;
  if (!value_list(t, v, name, standard, value)) {
    return out.push_back(refused("SET " + name + " (value not understood)"));
  }
  out.push_back({SettingChange::Kind::set, name, std::move(value)});
}

// One RESET statement (t[0] is RESET).
void parse_reset(const std::vector<Token>& t, std::vector<SettingChange>& out) {
  if (keyword(t, 1, "all") && t.size() == 2) {
    return out.push_back({SettingChange::Kind::reset_all, {}, {}});
  }
  if (keyword(t, 1, "time") && keyword(t, 2, "zone")) {
    return out.push_back({SettingChange::Kind::reported, "timezone", {}});
  }
  if (keyword(t, 1, "session") || keyword(t, 1, "role")) return;  // the identity: not carried
  if (t.size() < 2 || !is_name(t[1])) return;
  std::string name = lower(name_of(t[1]));
  for (std::size_t v = 2; punct(t, v, '.') && v + 1 < t.size() && is_name(t[v + 1]); v += 2) {
    name += "." + lower(name_of(t[v + 1]));
  }
  if (refused_name(name) || other_reported(name)) return;
  if (carried_reported(name)) return out.push_back({SettingChange::Kind::reported, name, {}});
  out.push_back({SettingChange::Kind::reset, std::move(name), {}});
}

// set_config('name', 'value', false) calls anywhere in a statement.
void parse_set_config(const std::vector<Token>& t, bool standard, std::vector<SettingChange>& out) {
  for (std::size_t i = 0; i + 1 < t.size(); ++i) {
    if (!keyword(t, i, "set_config") || !punct(t, i + 1, '(')) continue;
    std::string name, value;
    const bool literal =
        i + 7 < t.size() && t[i + 2].kind == TokenKind::string && punct(t, i + 3, ',') &&
        t[i + 4].kind == TokenKind::string && punct(t, i + 5, ',') && punct(t, i + 7, ')') &&
        (keyword(t, i + 6, "false") || keyword(t, i + 6, "true")) &&
        string_value(t[i + 2], standard, name) && string_value(t[i + 4], standard, value);
    if (!literal) {
      out.push_back(refused("set_config() with non-literal arguments"));
      continue;
    }
    if (keyword(t, i + 6, "true")) continue;  // is_local: this transaction only
    name = lower(name);
    if (refused_name(name)) {
      out.push_back(refused("set_config('" + name + "')"));
    } else if (carried_reported(name)) {
      out.push_back({SettingChange::Kind::reported, name, {}});
    } else if (!other_reported(name)) {
      out.push_back({SettingChange::Kind::set, name, value});
    }
  }
}

}  // namespace

std::vector<SettingChange> parse_setting_changes(std::string_view sql,
                                                 bool standard_conforming_strings) {
  std::vector<SettingChange> out;
  routing::LexerOptions lo;
  lo.standard_conforming_strings = standard_conforming_strings;
  routing::Lexer lex(sql, lo);
  std::vector<Token> stmt;
  for (;;) {
    Token tok = lex.next();
    if (tok.kind == TokenKind::line_comment || tok.kind == TokenKind::block_comment) continue;
    if (tok.kind == TokenKind::semicolon || tok.kind == TokenKind::end) {
      if (keyword(stmt, 0, "set")) {
        parse_set(stmt, standard_conforming_strings, out);
      } else if (keyword(stmt, 0, "reset")) {
        parse_reset(stmt, out);
      } else if (keyword(stmt, 0, "discard") && keyword(stmt, 1, "all") && stmt.size() == 2) {
        out.push_back({SettingChange::Kind::reset_all, {}, {}});  // DISCARD ALL runs RESET ALL
      } else {
        parse_set_config(stmt, standard_conforming_strings, out);
      }
      stmt.clear();
      if (tok.kind == TokenKind::end) break;
      continue;
    }
    stmt.push_back(tok);
  }
  return out;
}

pool::StartupParams settings_from_options(std::string_view options) {
  // pg_split_opts: words separated by unescaped spaces.
  std::vector<std::string> words;
  std::string w;
  bool in_word = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    const char c = options[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(w));
      w.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\' && i + 1 < options.size()) {
      w += options[++i];
    } else {
      w += c;
    }
  }
  if (in_word) words.push_back(std::move(w));
  pool::StartupParams out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view s = words[i];
    std::string_view setting;
    if (s == "-c" && i + 1 < words.size()) {
      setting = words[++i];
    } else if (s.starts_with("-c") && s.size() > 2) {
      setting = s.substr(2);
    } else if (s.starts_with("--")) {
      setting = s.substr(2);
    } else {
      continue;  // other switches act at backend start only
    }
    const auto eq = setting.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lower(setting.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');  // as ParseLongOption
    if (!carried_option(name)) continue;
    std::string value(setting.substr(eq + 1));
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
    if (it != out.end()) {
      it->second = std::move(value);
    } else {
      out.emplace_back(std::move(name), std::move(value));
    }
  }
  return out;
}

MirrorSettings::MirrorSettings(const pool::StartupParams& tracked, std::string_view options)
    : startup_(settings_from_options(options)) {
  for (const auto& [k, v] : tracked) {
    const std::string name = lower(k);
    if (name == "application_name") continue;
    auto it = std::find_if(startup_.begin(), startup_.end(),
                           [&](const auto& p) { return p.first == name; });
    if (it != startup_.end()) {
      it->second = v;
    } else {
      startup_.emplace_back(name, v);
    }
  }
  for (const auto& [k, v] : startup_) {
    if (k == "standard_conforming_strings") standard_strings_ = v != "off";
  }
  rebuild();
}

std::vector<SettingChange> MirrorSettings::on_statement(std::string_view sql,
                                                        std::uint32_t answers_ahead) {
  auto changes = parse_setting_changes(sql, standard_strings_);
  std::vector<SettingChange> refused_changes;
  std::erase_if(changes, [&](SettingChange& c) {
    if (c.kind != SettingChange::Kind::refused) return false;
    refused_changes.push_back(std::move(c));
    return true;
  });
  if (!changes.empty()) pending_.push_back({answers_ahead + 1, std::move(changes)});
  return refused_changes;
}

void MirrorSettings::on_parameter_status(std::span<const std::uint8_t> body) {
  // ParameterStatus: name\0value\0.
  const std::string_view s(reinterpret_cast<const char*>(body.data()), body.size());
  const auto z = s.find('\0');
  if (z == std::string_view::npos) return;
  std::string name = lower(s.substr(0, z));
  if (!carried_reported(name)) return;
  std::string_view value = s.substr(z + 1);
  if (!value.empty() && value.back() == '\0') value.remove_suffix(1);
  group_reported_.emplace_back(std::move(name), std::string(value));
  changing_ = true;
}

void MirrorSettings::on_command_complete(std::string_view tag) {
  if (tag == "COMMIT") committed_ = true;
  if (tag == "ROLLBACK") rolled_back_ = true;
}

void MirrorSettings::on_ready_for_query(char status) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (--it->answers_left > 0) {
      ++it;
      continue;
    }
    for (auto& c : it->changes) group_.push_back(std::move(c));
    changing_ = true;
    it = pending_.erase(it);
  }
  if (status != wire::txn_status::idle) return;
  // The transaction ended: its SETs took effect if it committed. A block that recovered from
  // an error with ROLLBACK TO and committed counts as committed (a SET rolled back to a
  // savepoint is then wrongly kept: docs/sync.md).
  const bool took_effect = committed_ || (!failed_ && !rolled_back_);
  bool changed = !group_reported_.empty();
  for (auto& [k, v] : group_reported_) {
    if (k == "standard_conforming_strings") standard_strings_ = v != "off";
    reported_[k] = std::move(v);
  }
  if (took_effect) {
    for (auto& c : group_) {
      changed = true;
      switch (c.kind) {
        case SettingChange::Kind::set:
          set_[c.name] = std::move(c.value);
          break;
        case SettingChange::Kind::reset:
          set_.erase(c.name);
          break;
        case SettingChange::Kind::reset_all:
          set_.clear();
          break;
        default:
          break;
      }
    }
  }
  group_.clear();
  group_reported_.clear();
  failed_ = committed_ = rolled_back_ = changing_ = false;
  if (changed) rebuild();
}

void MirrorSettings::clear_pending() {
  pending_.clear();
  group_.clear();
  group_reported_.clear();
  failed_ = committed_ = rolled_back_ = changing_ = false;
}

void MirrorSettings::rebuild() {
  std::map<std::string_view, std::string_view> all;
  for (const auto& [k, v] : startup_) all[k] = v;
  for (const auto& [k, v] : set_) all[k] = v;
  for (const auto& [k, v] : reported_) all[k] = v;
  auto p = std::make_shared<pool::StartupParams>();
  p->reserve(all.size());
  for (const auto& [k, v] : all) p->emplace_back(std::string(k), std::string(v));
  if (current_ && *current_ == *p) return;  // the same settings: the same object
  current_ = std::move(p);
}

}  // namespace pgshift::proxy
