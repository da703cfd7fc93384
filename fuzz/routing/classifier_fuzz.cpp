// Lexer + classifier on arbitrary bytes: no crash, no hang, and the safety invariants hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "routing/classifier.hpp"
#include "routing/lexer.hpp"

namespace {

using namespace pgshift::routing;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_tokens(std::string_view sql, LexerOptions options) {
  Lexer lexer(sql, options);
  std::size_t pos = 0;
  std::size_t count = 0;
  for (Token t = lexer.next(); t.kind != TokenKind::end; t = lexer.next()) {
    check(t.offset >= pos);                         // in order, no overlap
    check(!t.text.empty());                         // progress
    check(t.offset + t.text.size() <= sql.size());  // in bounds
    check(t.text.data() == sql.data() + t.offset);  // a view of the input
    pos = t.offset + t.text.size();
    check(++count <= sql.size());
  }
}

bool understood(std::string_view sql, LexerOptions options) {
  for (const Token& t : tokenize(sql, options)) {
    if (t.kind == TokenKind::unknown || !t.terminated) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  static const Classifier standard;
  static const Classifier legacy([] {
    ClassifierOptions o;
    o.lexer.standard_conforming_strings = false;
    o.allowed_functions = {"f", "s.g"};
    return o;
  }());

  check_tokens(sql, LexerOptions{true});
  check_tokens(sql, LexerOptions{false});

  for (const Classifier* c : {&standard, &legacy}) {
    const Classification r = c->classify(sql);
    // Text the lexer could not close or read is never sent to the non-authoritative side.
    if (!understood(sql, c->options().lexer)) {
      check(r.kind != StatementClass::read_only &&
            r.kind != StatementClass::transaction_begin_read_only);
      check(r.not_understood);
    }
    if (r.kind == StatementClass::read_only) {
      check(!r.has_locking_clause && !r.calls_unknown_function);
    }
    if (r.kind == StatementClass::empty) check(r.statement_count == 0);
    check(r.statement_count <= size);
    check(r.only_routing_key == (r.only_routing_key && r.statement_count > 0));
  }
  return 0;
}
