#include "routing/lexer.hpp"

namespace pgshift::routing {
namespace {

constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_high(char c) noexcept {
  return static_cast<unsigned char>(c) >= 0x80;
}
// scan.l: ident_start [A-Za-z\200-\377_], ident_cont [A-Za-z\200-\377_0-9\$]
constexpr bool is_ident_start(char c) noexcept {
  return is_alpha(c) || is_high(c) || c == '_';
}
constexpr bool is_ident_cont(char c) noexcept {
  return is_ident_start(c) || is_digit(c) || c == '$';
}
// scan.l: dolqdelim \$({dolq_start}{dolq_cont}*)?\$ where dolq_cont has no '$'.
constexpr bool is_dollar_tag_cont(char c) noexcept {
  return is_ident_start(c) || is_digit(c);
}
// scan.l: op_chars [\~\!\@\#\^\&\|\`\?\+\-\*\/\%\<\>\=]
constexpr bool is_op_char(char c) noexcept {
  switch (c) {
    case '~':
    case '!':
    case '@':
    case '#':
    case '^':
    case '&':
    case '|':
    case '`':
    case '?':
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
    case '<':
    case '>':
    case '=':
      return true;
    default:
      return false;
  }
}
constexpr char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

std::string_view to_string(TokenKind k) {
  switch (k) {
    case TokenKind::end:
      return "end";
    case TokenKind::identifier:
      return "identifier";
    case TokenKind::quoted_identifier:
      return "quoted_identifier";
    case TokenKind::string:
      return "string";
    case TokenKind::number:
      return "number";
    case TokenKind::parameter:
      return "parameter";
    case TokenKind::op:
      return "op";
    case TokenKind::punct:
      return "punct";
    case TokenKind::semicolon:
      return "semicolon";
    case TokenKind::line_comment:
      return "line_comment";
    case TokenKind::block_comment:
      return "block_comment";
    case TokenKind::unknown:
      return "unknown";
  }
  return "invalid";
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Token Lexer::make(TokenKind kind, std::size_t start, bool terminated,
                  StringStyle style) const noexcept {
  return Token{kind, style, input_.substr(start, pos_ - start), terminated, start};
}

Token Lexer::next() noexcept {
  const std::size_t n = input_.size();
  while (pos_ < n && is_space(input_[pos_])) ++pos_;
  if (pos_ >= n) return Token{TokenKind::end, StringStyle::none, {}, true, n};

  const std::size_t start = pos_;
  const char c = input_[pos_];
  const char c1 = pos_ + 1 < n ? input_[pos_ + 1] : '\0';
  const char c2 = pos_ + 2 < n ? input_[pos_ + 2] : '\0';

  if (c == '-' && c1 == '-') {
    while (pos_ < n && input_[pos_] != '\n' && input_[pos_] != '\r') ++pos_;
    return make(TokenKind::line_comment, start);
  }
  if (c == '/' && c1 == '*') return lex_block_comment(start);
  if (c == '\'') {
    return lex_quoted(start, start, StringStyle::standard, !options_.standard_conforming_strings);
  }
  if (c == '"') return lex_quoted_identifier(start, start);

  // Prefixed literals: E'..', B'..', X'..', N'..', U&'..', U&"..".
  switch (lower(c)) {
    case 'e':
      if (c1 == '\'') return lex_quoted(start, start + 1, StringStyle::escape, true);
      break;
    case 'b':
    case 'x':
      if (c1 == '\'') return lex_quoted(start, start + 1, StringStyle::bit, false);
      break;
    case 'n':
      if (c1 == '\'') {
        return lex_quoted(start, start + 1, StringStyle::national,
                          !options_.standard_conforming_strings);
      }
      break;
    case 'u':
      if (c1 == '&' && c2 == '\'') return lex_quoted(start, start + 2, StringStyle::unicode, false);
      if (c1 == '&' && c2 == '"') return lex_quoted_identifier(start, start + 2);
      break;
    default:
      break;
  }

  if (is_ident_start(c)) return lex_identifier(start);
  if (is_digit(c) || (c == '.' && is_digit(c1))) return lex_number(start);
  if (c == '$') return lex_dollar(start);
  if (c == ';') {
    ++pos_;
    return make(TokenKind::semicolon, start);
  }
  if (c == '(' || c == ')' || c == '[' || c == ']' || c == ',' || c == ':' || c == '.') {
    ++pos_;
    return make(TokenKind::punct, start);
  }
  if (is_op_char(c)) return lex_operator(start);
  ++pos_;
  return make(TokenKind::unknown, start);
}

Token Lexer::lex_quoted(std::size_t start, std::size_t quote_pos, StringStyle style,
                        bool backslash_escapes) noexcept {
  const std::size_t n = input_.size();
  pos_ = quote_pos + 1;
  while (pos_ < n) {
    const char c = input_[pos_];
    if (backslash_escapes && c == '\\') {
      pos_ += 2;  // the escaped byte, whatever it is
      continue;
    }
    if (c == '\'') {
      if (pos_ + 1 < n && input_[pos_ + 1] == '\'') {
        pos_ += 2;  // '' is a quote inside the literal
        continue;
      }
      ++pos_;
      return make(TokenKind::string, start, true, style);
    }
    ++pos_;
  }
  pos_ = n;
  return make(TokenKind::string, start, false, style);
}

Token Lexer::lex_quoted_identifier(std::size_t start, std::size_t quote_pos) noexcept {
  const std::size_t n = input_.size();
  pos_ = quote_pos + 1;
  while (pos_ < n) {
    if (input_[pos_] == '"') {
      if (pos_ + 1 < n && input_[pos_ + 1] == '"') {
        pos_ += 2;
        continue;
      }
      ++pos_;
      return make(TokenKind::quoted_identifier, start);
    }
    ++pos_;
  }
  return make(TokenKind::quoted_identifier, start, false);
}

Token Lexer::lex_block_comment(std::size_t start) noexcept {
  const std::size_t n = input_.size();
  pos_ = start + 2;
  std::size_t depth = 1;  // PostgreSQL block comments nest
  while (pos_ < n) {
    if (input_[pos_] == '/' && pos_ + 1 < n && input_[pos_ + 1] == '*') {
      ++depth;
      pos_ += 2;
    } else if (input_[pos_] == '*' && pos_ + 1 < n && input_[pos_ + 1] == '/') {
      pos_ += 2;
      if (--depth == 0) return make(TokenKind::block_comment, start);
    } else {
      ++pos_;
    }
  }
  return make(TokenKind::block_comment, start, false);
}

Token Lexer::lex_dollar(std::size_t start) noexcept {
  const std::size_t n = input_.size();
  std::size_t p = start + 1;
  if (p < n && is_digit(input_[p])) {  // positional parameter $1
    while (p < n && is_digit(input_[p])) ++p;
    pos_ = p;
    return make(TokenKind::parameter, start);
  }
  // Opening delimiter: $$ or $tag$ (a tag cannot start with a digit).
  if (p < n && is_ident_start(input_[p])) {
    while (p < n && p - start - 1 <= kMaxDollarTagLength && is_dollar_tag_cont(input_[p])) ++p;
  }
  if (p >= n || input_[p] != '$' || p - start - 1 > kMaxDollarTagLength) {
    pos_ = start + 1;  // a lone '$' is not a token the server accepts either
    return make(TokenKind::unknown, start);
  }
  const std::string_view delimiter = input_.substr(start, p - start + 1);
  const std::size_t body = p + 1;
  const std::size_t close = input_.find(delimiter, body);
  if (close == std::string_view::npos) {
    pos_ = n;
    return make(TokenKind::string, start, false, StringStyle::dollar);
  }
  pos_ = close + delimiter.size();
  return make(TokenKind::string, start, true, StringStyle::dollar);
}

Token Lexer::lex_number(std::size_t start) noexcept {
  const std::size_t n = input_.size();
  pos_ = start;
  bool seen_dot = false;
  while (pos_ < n) {
    const char c = input_[pos_];
    if (is_digit(c) || c == '_') {
      ++pos_;
    } else if (c == '.' && !seen_dot && !(pos_ + 1 < n && input_[pos_ + 1] == '.')) {
      seen_dot = true;  // "1..5" is 1 then ".." (array slices use ':', this is defensive)
      ++pos_;
    } else if ((c == 'e' || c == 'E') && pos_ + 1 < n &&
               (is_digit(input_[pos_ + 1]) ||
                ((input_[pos_ + 1] == '+' || input_[pos_ + 1] == '-') && pos_ + 2 < n &&
                 is_digit(input_[pos_ + 2])))) {
      pos_ += 2;
      seen_dot = true;  // no '.' after an exponent
    } else if (is_alpha(c)) {
      ++pos_;  // 0x1F, 0o17, 0b101 (PostgreSQL 16) or trailing junk the server rejects
    } else {
      break;
    }
  }
  return make(TokenKind::number, start);
}

Token Lexer::lex_operator(std::size_t start) noexcept {
  const std::size_t n = input_.size();
  pos_ = start;
  while (pos_ < n && is_op_char(input_[pos_])) {
    // A comment start ends the operator, even in the middle of a run ("*/*", "+--").
    if (pos_ > start && pos_ + 1 < n &&
        ((input_[pos_] == '-' && input_[pos_ + 1] == '-') ||
         (input_[pos_] == '/' && input_[pos_ + 1] == '*'))) {
      break;
    }
    ++pos_;
  }
  return make(TokenKind::op, start);
}

Token Lexer::lex_identifier(std::size_t start) noexcept {
  const std::size_t n = input_.size();
  pos_ = start;
  while (pos_ < n && is_ident_cont(input_[pos_])) ++pos_;
  return make(TokenKind::identifier, start);
}

std::vector<Token> tokenize(std::string_view input, LexerOptions options) {
  std::vector<Token> out;
  Lexer lexer(input, options);
  for (Token t = lexer.next(); t.kind != TokenKind::end; t = lexer.next()) out.push_back(t);
  return out;
}

}  // namespace pgshift::routing
