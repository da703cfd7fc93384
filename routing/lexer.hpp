#pragma once
// A PostgreSQL SQL lexer for routing decisions. It splits text into tokens with the same
// boundaries the server's scanner uses (src/backend/parser/scan.l), so that keywords inside
// literals, quoted identifiers, comments and dollar-quoted bodies are never mistaken for
// statement structure: https://www.postgresql.org/docs/15/sql-syntax-lexical.html
//
// Contract: any byte sequence is accepted. The lexer never throws, never reads outside the
// input, and does O(n) work in total: every byte is consumed once, and the only search
// (a dollar-quote terminator) uses a tag of at most kMaxDollarTagLength bytes. Constructs it
// cannot close (an unterminated string, comment, quoted identifier or dollar quote) become a
// token with terminated == false that runs to the end of the input; bytes that cannot start
// any token become TokenKind::unknown. Callers treat both as "not understood".
//
// Assumes an ASCII-compatible client encoding (UTF8, LATIN*, ...). Token texts are views
// into the input, which must outlive them. Not thread-safe per instance; no shared state.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pgshift::routing {

enum class TokenKind : std::uint8_t {
  end,                // no more input
  identifier,         // select, my_table, café (unquoted; compare case-insensitively)
  quoted_identifier,  // "delete", U&"d\0061t\+000061"
  string,             // 'x', E'x', U&'x', B'101', X'ff', N'x', $$x$$, $tag$x$tag$
  number,             // 42, 3.14, 1e-5, .5, 0x1F, 1_000
  parameter,          // $1
  op,                 // + - * / < > = ~ ! @ # % ^ & | ` ? and runs of them (<=, ->>, ...)
  punct,              // ( ) [ ] , : .
  semicolon,          // ;
  line_comment,       // -- to end of line
  block_comment,      // /* ... */ (nested)
  unknown,            // a byte that cannot start a token (\, {, control bytes, lone $)
};

std::string_view to_string(TokenKind k);

enum class StringStyle : std::uint8_t {
  none,      // the token is not a string
  standard,  // '...' ('' escapes a quote; backslash is literal)
  escape,    // E'...' (backslash escapes)
  unicode,   // U&'...'
  bit,       // B'...' or X'...'
  national,  // N'...'
  dollar,    // $$...$$ or $tag$...$tag$
};

struct Token {
  TokenKind kind = TokenKind::end;
  StringStyle style = StringStyle::none;
  std::string_view text;   // the whole token, including quotes/delimiters
  bool terminated = true;  // false: string/comment/identifier not closed before the end
  std::size_t offset = 0;  // byte offset of text in the input
};

struct LexerOptions {
  // The server's standard_conforming_strings (reported in ParameterStatus). With "off",
  // backslashes escape in plain '...' strings as well, and the lexer must know it, or a
  // crafted literal could hide a statement from the classifier.
  bool standard_conforming_strings = true;
};

// Dollar-quote tags longer than this are not accepted as tags (the '$' becomes an unknown
// token). PostgreSQL identifiers are at most 63 bytes, so no real tag is affected; the cap
// keeps the terminator search linear.
inline constexpr std::size_t kMaxDollarTagLength = 64;

class Lexer {
 public:
  explicit Lexer(std::string_view input, LexerOptions options = {}) noexcept
      : input_(input), options_(options) {}

  // The next token, skipping whitespace. Returns kind == end at (and after) the end.
  Token next() noexcept;

 private:
  Token make(TokenKind kind, std::size_t start, bool terminated = true,
             StringStyle style = StringStyle::none) const noexcept;
  Token lex_quoted(std::size_t start, std::size_t quote_pos, StringStyle style,
                   bool backslash_escapes) noexcept;
  Token lex_quoted_identifier(std::size_t start, std::size_t quote_pos) noexcept;
  Token lex_block_comment(std::size_t start) noexcept;
  Token lex_dollar(std::size_t start) noexcept;
  Token lex_number(std::size_t start) noexcept;
  Token lex_operator(std::size_t start) noexcept;
  Token lex_identifier(std::size_t start) noexcept;

  std::string_view input_;
  LexerOptions options_;
  std::size_t pos_ = 0;
};

// All tokens of `input` (without the final end token), comments included.
std::vector<Token> tokenize(std::string_view input, LexerOptions options = {});

// ASCII-only lower-case comparison, as the server folds unquoted identifiers.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace pgshift::routing
