#include "routing/lexer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace pgshift::routing {
namespace {

struct Expected {
  TokenKind kind;
  std::string_view text;
};

void expect_tokens(std::string_view sql, const std::vector<Expected>& want) {
  const auto got = tokenize(sql);
  ASSERT_EQ(got.size(), want.size()) << sql;
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].kind, want[i].kind) << sql << " token " << i;
    EXPECT_EQ(got[i].text, want[i].text) << sql << " token " << i;
    EXPECT_TRUE(got[i].terminated) << sql << " token " << i;
    EXPECT_EQ(sql.substr(got[i].offset, got[i].text.size()), got[i].text);
  }
}

using K = TokenKind;

TEST(Lexer, BasicStatement) {
  expect_tokens("SELECT a, b FROM t WHERE x >= 10;", {{K::identifier, "SELECT"},
                                                      {K::identifier, "a"},
                                                      {K::punct, ","},
                                                      {K::identifier, "b"},
                                                      {K::identifier, "FROM"},
                                                      {K::identifier, "t"},
                                                      {K::identifier, "WHERE"},
                                                      {K::identifier, "x"},
                                                      {K::op, ">="},
                                                      {K::number, "10"},
                                                      {K::semicolon, ";"}});
}

TEST(Lexer, Comments) {
  expect_tokens("select/*c*/1",
                {{K::identifier, "select"}, {K::block_comment, "/*c*/"}, {K::number, "1"}});
  expect_tokens("/* a /* nested */ b */x",
                {{K::block_comment, "/* a /* nested */ b */"}, {K::identifier, "x"}});
  expect_tokens(
      "a -- rest ; of line\nb",
      {{K::identifier, "a"}, {K::line_comment, "-- rest ; of line"}, {K::identifier, "b"}});
  // A comment start inside an operator run ends the operator.
  expect_tokens("1+--x\n2",
                {{K::number, "1"}, {K::op, "+"}, {K::line_comment, "--x"}, {K::number, "2"}});
  expect_tokens(
      "a*/*c*/b",
      {{K::identifier, "a"}, {K::op, "*"}, {K::block_comment, "/*c*/"}, {K::identifier, "b"}});
}

TEST(Lexer, Strings) {
  expect_tokens("'it''s'", {{K::string, "'it''s'"}});
  expect_tokens("'a\\'", {{K::string, "'a\\'"}});  // backslash is literal
  expect_tokens("E'it\\'s'", {{K::string, "E'it\\'s'"}});
  expect_tokens("e'\\\\' x", {{K::string, "e'\\\\'"}, {K::identifier, "x"}});
  expect_tokens("E'a''b'", {{K::string, "E'a''b'"}});
  expect_tokens("U&'d\\0061t'", {{K::string, "U&'d\\0061t'"}});
  expect_tokens("B'101' X'ff' N'n'",
                {{K::string, "B'101'"}, {K::string, "X'ff'"}, {K::string, "N'n'"}});
  const auto t = tokenize("E'x' U&'y' $$z$$");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].style, StringStyle::escape);
  EXPECT_EQ(t[1].style, StringStyle::unicode);
  EXPECT_EQ(t[2].style, StringStyle::dollar);
}

TEST(Lexer, DollarQuotes) {
  expect_tokens("$$a;b$$", {{K::string, "$$a;b$$"}});
  expect_tokens("$tag$ $$ inner $$ $tag$", {{K::string, "$tag$ $$ inner $$ $tag$"}});
  expect_tokens("$a$x$b$y$a$", {{K::string, "$a$x$b$y$a$"}});
  expect_tokens("$1 $23", {{K::parameter, "$1"}, {K::parameter, "$23"}});
  expect_tokens("a$b", {{K::identifier, "a$b"}});  // '$' continues an identifier
  expect_tokens("$_t1$x$_t1$", {{K::string, "$_t1$x$_t1$"}});
  expect_tokens("$", {{K::unknown, "$"}});
  expect_tokens("$1a$", {{K::parameter, "$1"}, {K::identifier, "a$"}});
}

TEST(Lexer, QuotedIdentifiers) {
  expect_tokens("\"delete\"", {{K::quoted_identifier, "\"delete\""}});
  expect_tokens("\"a\"\"b\"", {{K::quoted_identifier, "\"a\"\"b\""}});
  expect_tokens("U&\"d\\0061t\"", {{K::quoted_identifier, "U&\"d\\0061t\""}});
}

TEST(Lexer, Numbers) {
  expect_tokens("1 1.5 .5 1e10 1.5E-3 0x1F 1_000", {{K::number, "1"},
                                                    {K::number, "1.5"},
                                                    {K::number, ".5"},
                                                    {K::number, "1e10"},
                                                    {K::number, "1.5E-3"},
                                                    {K::number, "0x1F"},
                                                    {K::number, "1_000"}});
  expect_tokens("t.1", {{K::identifier, "t"}, {K::number, ".1"}});
  expect_tokens("a[1:2]", {{K::identifier, "a"},
                           {K::punct, "["},
                           {K::number, "1"},
                           {K::punct, ":"},
                           {K::number, "2"},
                           {K::punct, "]"}});
  expect_tokens("x::int",
                {{K::identifier, "x"}, {K::punct, ":"}, {K::punct, ":"}, {K::identifier, "int"}});
}

TEST(Lexer, PrefixLettersOnlyCountBeforeAQuote) {
  // b' starts a bit string even after a space, as in the server's scanner.
  expect_tokens("a b'1'", {{K::identifier, "a"}, {K::string, "b'1'"}});
  expect_tokens("ab'1'", {{K::identifier, "ab"}, {K::string, "'1'"}});
  expect_tokens("e", {{K::identifier, "e"}});
  expect_tokens("u&x", {{K::identifier, "u"}, {K::op, "&"}, {K::identifier, "x"}});
}

TEST(Lexer, Unknown) {
  expect_tokens("\\ { }", {{K::unknown, "\\"}, {K::unknown, "{"}, {K::unknown, "}"}});
  expect_tokens(std::string_view("\0", 1), {{K::unknown, std::string_view("\0", 1)}});
}

TEST(Lexer, StandardConformingStringsOff) {
  const auto on = tokenize("'a\\' c'");
  ASSERT_EQ(on.size(), 3u);  // 'a\'  c  '  (unterminated)
  const auto off = tokenize("'a\\' c'", LexerOptions{false});
  ASSERT_EQ(off.size(), 1u);
  EXPECT_TRUE(off[0].terminated);
}

struct Unterminated {
  std::string_view sql;
  TokenKind kind;
};

TEST(LexerAdversarial, UnterminatedConstructsRunToTheEnd) {
  const Unterminated cases[] = {
      {"'abc", K::string},
      {"E'abc\\'", K::string},
      {"E'\\", K::string},
      {"U&'x", K::string},
      {"B'1", K::string},
      {"$$abc", K::string},
      {"$tag$abc$tag", K::string},
      {"$a$ $b$ $b$", K::string},
      {"\"abc", K::quoted_identifier},
      {"U&\"x", K::quoted_identifier},
      {"/* abc", K::block_comment},
      {"/* /* */", K::block_comment},
      {"/*", K::block_comment},
      {"'", K::string},
      {"\"", K::quoted_identifier},
  };
  for (const auto& c : cases) {
    const auto t = tokenize(c.sql);
    ASSERT_FALSE(t.empty()) << c.sql;
    EXPECT_EQ(t.back().kind, c.kind) << c.sql;
    EXPECT_FALSE(t.back().terminated) << c.sql;
    EXPECT_EQ(t.back().offset + t.back().text.size(), c.sql.size()) << c.sql;
  }
}

TEST(LexerAdversarial, OverlongDollarTagIsNotATag) {
  const std::string tag(kMaxDollarTagLength + 1, 'a');
  const std::string sql = "$" + tag + "$ x $" + tag + "$";
  const auto t = tokenize(sql);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t[0].kind, K::unknown);
  const std::string ok_tag(kMaxDollarTagLength, 'a');
  const auto ok = tokenize("$" + ok_tag + "$ x $" + ok_tag + "$");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].kind, K::string);
}

// Tokens tile the input: every non-space byte belongs to exactly one token, in order, and
// the lexer always makes progress. Checked on random bytes biased towards SQL syntax.
TEST(LexerAdversarial, RandomInputsTileTheInput) {
  std::mt19937 rng(12345);
  const std::string alphabet = "'\"$-/*\\eEuU&bBxXnN;()[],.:0123456789aZ_ \n\t+<>=!@#%^|`?{}";
  for (int round = 0; round < 20000; ++round) {
    const std::size_t len = rng() % 40;
    std::string s;
    for (std::size_t i = 0; i < len; ++i) {
      s.push_back(rng() % 8 == 0 ? static_cast<char>(rng() % 256)
                                 : alphabet[rng() % alphabet.size()]);
    }
    Lexer lexer(s);
    std::size_t pos = 0;
    std::size_t count = 0;
    for (Token t = lexer.next(); t.kind != K::end; t = lexer.next()) {
      ASSERT_GE(t.offset, pos) << s;
      ASSERT_FALSE(t.text.empty()) << s;
      ASSERT_LE(t.offset + t.text.size(), s.size()) << s;
      for (std::size_t i = pos; i < t.offset; ++i) {
        ASSERT_TRUE(std::string_view(" \n\t\r\f\v").find(s[i]) != std::string_view::npos)
            << "byte " << i << " skipped in " << s;
      }
      pos = t.offset + t.text.size();
      ASSERT_LE(++count, s.size()) << s;
    }
    EXPECT_EQ(lexer.next().kind, K::end);  // stays at the end
  }
}

TEST(LexerAdversarial, LargeInputsAreLinear) {
  // Pathological shapes for a naive lexer: many dollar-quote openers, deep comments.
  std::string dollars;
  for (int i = 0; i < 100000; ++i) dollars += "$a$";
  EXPECT_FALSE(tokenize(dollars).empty());
  std::string comments(200000, '/');
  for (std::size_t i = 1; i < comments.size(); i += 2) comments[i] = '*';
  const auto t = tokenize(comments);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(t[0].terminated);
  std::string quotes(300001, '\'');
  EXPECT_FALSE(tokenize(quotes).empty());
}

TEST(Lexer, Iequals) {
  EXPECT_TRUE(iequals("SELECT", "select"));
  EXPECT_FALSE(iequals("SELECT", "selec"));
  EXPECT_FALSE(iequals("\xC9", "\xE9"));  // ASCII folding only
  EXPECT_EQ(to_string(K::block_comment), "block_comment");
}

}  // namespace
}  // namespace pgshift::routing
