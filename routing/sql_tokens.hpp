#pragma once
// Small token helpers shared by the statement analyzer and the classifier. Internal to
// routing/: pure functions over lexer tokens, no I/O.
#include <cstddef>
#include <string>
#include <string_view>

#include "routing/lexer.hpp"

namespace pgshift::routing::detail {

inline std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Reserved (and col_name) keywords that may stand directly before '(' as syntax: IN (...),
// EXISTS (...), FROM (subquery), ... PostgreSQL does not accept them as unquoted function
// names, so treating them as syntax can never hide a call.
inline constexpr std::string_view kReservedBeforeParen[] = {
    "all",    "and",      "any",       "array", "as",      "asc",    "between", "case",   "default",
    "desc",   "distinct", "else",      "end",   "except",  "exists", "fetch",   "from",   "group",
    "having", "in",       "intersect", "into",  "lateral", "limit",  "not",     "offset", "on",
    "only",   "or",       "returning", "row",   "select",  "some",   "table",   "then",   "to",
    "union",  "using",    "values",    "when",  "where",   "window", "with",
};

// Reserved keywords: never an alias or a value, so a name after one of them is not the
// right-hand side of LIKE & co. (PostgreSQL's reserved_keyword list, abridged to those that
// can precede an expression.)
inline constexpr std::string_view kReserved[] = {
    "all",    "and",     "any",      "array",     "as",       "asc",      "both",      "case",
    "cast",   "collate", "default",  "desc",      "distinct", "do",       "else",      "end",
    "except", "fetch",   "for",      "from",      "group",    "having",   "in",        "intersect",
    "into",   "lateral", "leading",  "limit",     "not",      "offset",   "on",        "only",
    "or",     "order",   "placing",  "returning", "select",   "some",     "symmetric", "table",
    "then",   "to",      "trailing", "union",     "using",    "variadic", "when",      "where",
    "window", "with",
};

template <std::size_t N>
inline bool one_of(std::string_view word, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), word) != std::end(list);
}

inline bool is_comment(const Token& t) {
  return t.kind == TokenKind::line_comment || t.kind == TokenKind::block_comment;
}

inline bool is_punct(const Token& t, char c) {
  return t.kind == TokenKind::punct && t.text.size() == 1 && t.text[0] == c;
}

inline bool is_name_token(const Token& t) {
  return t.kind == TokenKind::identifier || t.kind == TokenKind::quoted_identifier;
}

// The name a token denotes: unquoted -> lower case; "quoted" -> unescaped, case kept;
// U&"..." -> empty (escapes not decoded here, so it never matches a listed name).
inline std::string name_of(const Token& t) {
  if (t.kind == TokenKind::identifier) return lower_copy(t.text);
  if (t.kind != TokenKind::quoted_identifier || !t.terminated || t.text.size() < 2 ||
      t.text[0] != '"') {
    return {};
  }
  std::string out;
  const std::string_view inner = t.text.substr(1, t.text.size() - 2);
  for (std::size_t i = 0; i < inner.size(); ++i) {
    out.push_back(inner[i]);
    if (inner[i] == '"' && i + 1 < inner.size() && inner[i + 1] == '"') ++i;
  }
  return out;
}

// The value of a string literal token, for SET values. Good enough for routing keys:
// '' and \-escapes are undone, dollar quotes stripped.
inline std::string unquote_string(const Token& t) {
  std::string_view s = t.text;
  if (t.style == StringStyle::dollar) {
    const std::size_t open = s.find('$', 1);
    if (open == std::string_view::npos || s.size() < 2 * (open + 1)) return {};
    return std::string(s.substr(open + 1, s.size() - 2 * (open + 1)));
  }
  const std::size_t q = s.find('\'');
  if (q == std::string_view::npos || s.size() < q + 2) return {};
  const bool backslash = t.style == StringStyle::escape;
  s = s.substr(q + 1, s.size() - q - 2);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (backslash && s[i] == '\\' && i + 1 < s.size()) {
      out.push_back(s[++i]);
    } else if (s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
      out.push_back(s[++i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace pgshift::routing::detail
