// Grammar: https://www.postgresql.org/docs/15/sql-dropdatabase.html, sql-alterdatabase.html,
// sql-createdatabase.html.
#include "routing/database_ddl.hpp"

namespace pgshift::routing {
namespace {

bool is_code(const Token& t) {
  return t.kind != TokenKind::line_comment && t.kind != TokenKind::block_comment;
}

bool keyword(const Token& t, std::string_view word) {
  return t.kind == TokenKind::identifier && iequals(t.text, word);
}

// A database name as the server sees it, or "" if the token is not a name.
std::string name_of(const Token& t) {
  if (t.kind == TokenKind::identifier) {
    std::string out(t.text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  if (t.kind == TokenKind::quoted_identifier && t.terminated && t.text.size() >= 2 &&
      t.text.front() == '"') {
    std::string out;
    const std::string_view inner = t.text.substr(1, t.text.size() - 2);
    for (std::size_t i = 0; i < inner.size(); ++i) {
      out += inner[i];
      if (inner[i] == '"') ++i;  // "" stands for one "
    }
    return out;
  }
  return {};
}

// One statement's code tokens (comments removed).
void check_statement(const std::vector<Token>& s, std::vector<std::string>& out) {
  auto at = [&](std::size_t i) -> const Token& {
    static const Token kEnd{};
    return i < s.size() ? s[i] : kEnd;
  };
  if (keyword(at(0), "drop") && keyword(at(1), "database")) {
    std::size_t i = 2;
    if (keyword(at(i), "if") && keyword(at(i + 1), "exists")) i += 2;
    if (std::string name = name_of(at(i)); !name.empty()) out.push_back(std::move(name));
    return;
  }
  if (keyword(at(0), "alter") && keyword(at(1), "database")) {
    const std::string name = name_of(at(2));
    if (name.empty()) return;
    if (keyword(at(3), "rename") || (keyword(at(3), "set") && keyword(at(4), "tablespace"))) {
      out.push_back(name);
    }
    return;
  }
  if (keyword(at(0), "create") && keyword(at(1), "database")) {
    std::string source = "template1";
    for (std::size_t i = 3; i < s.size(); ++i) {  // options start after the new name
      if (!keyword(s[i], "template")) continue;
      std::size_t v = i + 1;
      if (at(v).kind == TokenKind::op && at(v).text == "=") ++v;
      if (keyword(at(v), "default")) break;
      if (std::string name = name_of(at(v)); !name.empty()) source = std::move(name);
      break;
    }
    out.push_back(std::move(source));
  }
}

bool lasting(const std::vector<Token>& s) {
  if (s.empty()) return false;
  if (keyword(s[0], "load")) return true;
  if (s.size() < 2) return false;
  return (keyword(s[0], "prepare") && keyword(s[1], "transaction")) ||
         ((keyword(s[0], "commit") || keyword(s[0], "rollback")) && keyword(s[1], "prepared"));
}

bool drops_all_prepared(const std::vector<Token>& s) {
  if (s.size() < 2) return false;
  if (keyword(s[0], "discard")) return keyword(s[1], "all");
  if (!keyword(s[0], "deallocate")) return false;
  const std::size_t name = keyword(s[1], "prepare") ? 2 : 1;
  return name < s.size() && keyword(s[name], "all");
}

// Calls f(tokens) for each statement's code tokens (comments removed); stops when f
// returns true, and returns whether it did.
template <typename F>
bool for_each_statement(std::string_view sql, LexerOptions options, F f) {
  Lexer lexer(sql, options);
  std::vector<Token> statement;
  for (;;) {
    const Token t = lexer.next();
    if (t.kind == TokenKind::end || t.kind == TokenKind::semicolon) {
      if (f(statement)) return true;
      statement.clear();
      if (t.kind == TokenKind::end) return false;
      continue;
    }
    if (is_code(t)) statement.push_back(t);
  }
}

}  // namespace

bool outlives_discard_all(std::string_view sql, LexerOptions options) {
  return for_each_statement(sql, options, [](const std::vector<Token>& s) { return lasting(s); });
}

bool drops_prepared_statements(std::string_view sql, LexerOptions options) {
  return for_each_statement(sql, options, drops_all_prepared);
}

std::vector<std::string> databases_needing_exclusive_access(std::string_view sql,
                                                            LexerOptions options) {
  std::vector<std::string> out;
  for_each_statement(sql, options, [&out](const std::vector<Token>& s) {
    check_statement(s, out);
    return false;
  });
  return out;
}

}  // namespace pgshift::routing
