#include "routing/routing_key.hpp"

namespace pgshift::routing {
namespace {

constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Strips the comment delimiters if the caller passed a whole comment token.
std::string_view comment_body(std::string_view c) noexcept {
  if (c.starts_with("/*")) {
    c.remove_prefix(2);
    if (c.ends_with("*/")) c.remove_suffix(2);
  } else if (c.starts_with("--")) {
    c.remove_prefix(2);
  }
  return c;
}

// Splits like the postmaster's pg_split_opts(): whitespace separates, backslash escapes.
std::vector<std::string> split_options(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size()) break;
    std::string arg;
    while (i < s.size() && !is_space(s[i])) {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      arg.push_back(s[i]);
      ++i;
    }
    out.push_back(std::move(arg));
  }
  return out;
}

}  // namespace

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<std::string> parse_sqlcommenter(std::string_view comment, std::string_view key) {
  const std::string_view body = comment_body(comment);
  const std::size_t n = body.size();
  std::size_t i = 0;
  while (i < n) {
    while (i < n && (is_space(body[i]) || body[i] == ',')) ++i;
    const std::size_t key_start = i;
    while (i < n && body[i] != '=' && body[i] != ',') ++i;
    const std::string_view raw_key = trim(body.substr(key_start, i - key_start));
    std::string value;
    if (i < n && body[i] == '=') {
      ++i;
      while (i < n && is_space(body[i])) ++i;
      if (i < n && (body[i] == '\'' || body[i] == '"')) {
        const char quote = body[i++];
        while (i < n && body[i] != quote) {
          if (body[i] == '\\' && i + 1 < n) ++i;  // sqlcommenter meta-escapes \'
          value.push_back(body[i++]);
        }
        if (i < n) ++i;                       // closing quote
        while (i < n && body[i] != ',') ++i;  // tolerate junk up to the next pair
      } else {
        const std::size_t v_start = i;
        while (i < n && body[i] != ',') ++i;
        value = std::string(trim(body.substr(v_start, i - v_start)));
      }
    }
    if (!raw_key.empty() && url_decode(raw_key) == key) {
      std::string decoded = url_decode(value);
      if (decoded.empty()) return std::nullopt;
      return decoded;
    }
  }
  return std::nullopt;
}

std::optional<std::string> key_from_comment(std::string_view sql, std::string_view key,
                                            LexerOptions options) {
  Lexer lexer(sql, options);
  for (Token t = lexer.next(); t.kind != TokenKind::end; t = lexer.next()) {
    if (t.kind != TokenKind::block_comment && t.kind != TokenKind::line_comment) continue;
    if (auto v = parse_sqlcommenter(t.text, key)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> key_from_options(std::string_view options, std::string_view setting) {
  const std::vector<std::string> args = split_options(options);
  std::optional<std::string> found;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string assignment;
    bool long_option = false;
    if (args[i] == "-c") {
      if (i + 1 >= args.size()) break;
      assignment = args[++i];
    } else if (args[i].starts_with("--")) {
      assignment = args[i].substr(2);
      long_option = true;
    } else if (args[i].starts_with("-c")) {
      assignment = args[i].substr(2);
    } else {
      continue;
    }
    const std::size_t eq = assignment.find('=');
    if (eq == std::string::npos) continue;
    std::string name = assignment.substr(0, eq);
    if (long_option) {
      for (char& c : name) {
        if (c == '-') c = '_';  // ParseLongOption(): --routing-key means routing_key
      }
    }
    if (!iequals(name, setting)) continue;
    std::string value = assignment.substr(eq + 1);
    if (value.empty()) {
      found.reset();
    } else {
      found = std::move(value);
    }
  }
  return found;
}

std::optional<std::string> key_from_startup(const StartupParams& params,
                                            const config::RoutingKey& cfg) {
  const std::string* options = nullptr;
  for (const auto& [name, value] : params) {
    if (!cfg.startup_parameter.empty() && iequals(name, cfg.startup_parameter) && !value.empty()) {
      return value;
    }
    if (name == "options") options = &value;
  }
  if (options != nullptr && !cfg.setting.empty()) return key_from_options(*options, cfg.setting);
  return std::nullopt;
}

std::string_view to_string(KeySource s) {
  switch (s) {
    case KeySource::comment:
      return "comment";
    case KeySource::transaction_setting:
      return "transaction_setting";
    case KeySource::session_setting:
      return "session_setting";
    case KeySource::startup:
      return "startup";
    case KeySource::connection:
      return "connection";
  }
  return "invalid";
}

KeyState::KeyState(std::optional<std::string> startup_key, std::string connection_key)
    : startup_key_(std::move(startup_key)), connection_key_(std::move(connection_key)) {
  if (startup_key_ && startup_key_->empty()) startup_key_.reset();
}

void KeyState::apply(const RoutingKeyChange& change) {
  const bool is_set = change.kind == RoutingKeyChange::Kind::set && !change.value.empty();
  if (change.local) {
    transaction_key_ = is_set ? std::optional<std::string>(change.value) : std::nullopt;
    transaction_reset_ = !is_set;
    return;
  }
  session_key_ = is_set ? std::optional<std::string>(change.value) : std::nullopt;
  // A session SET inside a transaction also replaces an earlier SET LOCAL (server semantics).
  transaction_key_.reset();
  transaction_reset_ = false;
}

void KeyState::end_transaction() {
  transaction_key_.reset();
  transaction_reset_ = false;
}

ResolvedKey KeyState::resolve(const std::optional<std::string>& comment_key) const {
  if (comment_key && !comment_key->empty()) return {*comment_key, KeySource::comment};
  if (transaction_key_) return {*transaction_key_, KeySource::transaction_setting};
  if (session_key_ && !transaction_reset_) return {*session_key_, KeySource::session_setting};
  if (startup_key_) return {*startup_key_, KeySource::startup};
  return {connection_key_, KeySource::connection};
}

}  // namespace pgshift::routing
