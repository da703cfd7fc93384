// StatementMapper + ResponseFilter: what goes to the server and what comes back to the client
// when a client's named statements move between pooled servers.
#include "proxy/session/prepared_statements.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wire/messages.hpp"
#include "wire/scanner.hpp"

namespace pgshift::proxy {
namespace {

struct Msg {
  char type;
  std::vector<std::uint8_t> body;
};

std::vector<Msg> split(const wire::Bytes& bytes) {
  wire::MessageScanner sc(wire::Direction::frontend, {}, wire::MessageScanner::TypeSet{}.set());
  std::vector<Msg> out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto r = sc.feed(std::span(bytes).subspan(pos));
    EXPECT_EQ(r.kind, wire::ScanKind::message);
    if (r.kind != wire::ScanKind::message) break;
    out.push_back({static_cast<char>(r.type), {r.body.begin(), r.body.end()}});
    pos += r.consumed;
  }
  return out;
}

wire::Bytes parse_body(std::string_view name, std::string_view sql) {
  wire::Bytes b;
  wire::parse(b, name, sql, {});
  return {b.begin() + 5, b.end()};
}

wire::Bytes bind_body(std::string_view portal, std::string_view stmt) {
  wire::Bytes b;
  wire::MessageWriter(b).begin('B').str(portal).str(stmt).i16(0).i16(0).i16(0).end();
  return {b.begin() + 5, b.end()};
}

std::string statement_of(const Msg& m) {
  if (m.type == 'P') {
    wire::Parse p;
    EXPECT_FALSE(wire::parse_parse(m.body, p));
    return std::string(p.statement);
  }
  wire::BindNames n;
  EXPECT_FALSE(wire::parse_bind_names(m.body, n));
  return std::string(n.statement);
}

TEST(PreparedStatements, NamedParseIsRenamedAndBindFollows) {
  StatementMapper mapper(7);
  pool::PreparedSet server;
  ResponseFilter filter;
  wire::Bytes out;
  ASSERT_TRUE(mapper.rewrite('P', parse_body("s1", "SELECT 1"), server, filter, out));
  ASSERT_TRUE(mapper.rewrite('B', bind_body("", "s1"), server, filter, out));
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, 'P');
  EXPECT_EQ(statement_of(msgs[0]), "pgs_7_0");
  EXPECT_EQ(statement_of(msgs[1]), "pgs_7_0");
  EXPECT_TRUE(filter.should_forward('1', server));  // the client's own ParseComplete
}

TEST(PreparedStatements, BindOnAnotherServerInjectsParseAndDropsItsParseComplete) {
  StatementMapper mapper(1);
  pool::PreparedSet a, b;
  ResponseFilter filter;
  wire::Bytes out;
  ASSERT_TRUE(mapper.rewrite('P', parse_body("s", "SELECT $1"), a, filter, out));
  EXPECT_TRUE(filter.should_forward('1', a));
  EXPECT_TRUE(filter.should_forward('Z', a));
  EXPECT_TRUE(a.contains("pgs_1_0"));

  out.clear();
  ASSERT_TRUE(mapper.rewrite('B', bind_body("", "s"), b, filter, out));
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, 'P');
  EXPECT_EQ(msgs[1].type, 'B');
  EXPECT_FALSE(filter.should_forward('1', b));  // injected: the client never sent a Parse
  EXPECT_TRUE(filter.should_forward('2', b));
  EXPECT_TRUE(b.contains("pgs_1_0"));

  out.clear();  // second use on the same server: no injection
  ASSERT_TRUE(mapper.rewrite('B', bind_body("", "s"), b, filter, out));
  EXPECT_EQ(split(out).size(), 1u);
}

TEST(PreparedStatements, FailedInjectedParseIsForgotten) {
  StatementMapper mapper(1);
  pool::PreparedSet a, b;
  ResponseFilter filter;
  wire::Bytes out;
  ASSERT_TRUE(mapper.rewrite('P', parse_body("s", "SELECT 1"), a, filter, out));
  filter.clear();
  ASSERT_TRUE(mapper.rewrite('B', bind_body("", "s"), b, filter, out));
  EXPECT_TRUE(b.contains("pgs_1_0"));
  EXPECT_TRUE(filter.should_forward('E', b));  // the injected Parse failed
  EXPECT_FALSE(b.contains("pgs_1_0"));
  EXPECT_TRUE(filter.should_forward('1', b));  // later ParseCompletes are the client's own
}

TEST(PreparedStatements, ErrorBeforeInjectedParseKeepsClientParseComplete) {
  // Client Parse A (answered), then an injected Parse that the server skips after an error.
  StatementMapper mapper(1);
  pool::PreparedSet a, b;
  ResponseFilter filter;
  wire::Bytes out;
  ASSERT_TRUE(mapper.rewrite('P', parse_body("x", "SELECT 2"), a, filter, out));
  filter.clear();
  ASSERT_TRUE(mapper.rewrite('P', parse_body("y", "SELECT 3"), b, filter, out));
  ASSERT_TRUE(mapper.rewrite('B', bind_body("", "x"), b, filter, out));
  EXPECT_TRUE(filter.should_forward('1', b));  // y's ParseComplete reaches the client
  EXPECT_TRUE(filter.should_forward('E', b));  // error before x's injected Parse ran
  EXPECT_FALSE(b.contains("pgs_1_0"));         // x's injected Parse never ran on b
  EXPECT_TRUE(b.contains("pgs_1_1"));          // y's did
}

TEST(PreparedStatements, CloseIsForwardedUnderServerNameAndForgotten) {
  StatementMapper mapper(3);
  pool::PreparedSet server;
  ResponseFilter filter;
  wire::Bytes out;
  ASSERT_TRUE(mapper.rewrite('P', parse_body("s", "SELECT 1"), server, filter, out));
  filter.clear();
  out.clear();
  wire::Bytes close;
  wire::close_statement(close, "s");
  ASSERT_TRUE(mapper.rewrite('C', {close.begin() + 5, close.end()}, server, filter, out));
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 1u);
  wire::CloseOrDescribe c;
  ASSERT_FALSE(wire::parse_close(msgs[0].body, c));
  EXPECT_EQ(c.name, "pgs_3_0");
  EXPECT_TRUE(filter.should_forward('3', server));
  EXPECT_FALSE(server.contains("pgs_3_0"));
  EXPECT_EQ(mapper.size(), 0u);
}

TEST(PreparedStatements, FullCacheEvictsLeastRecentlyUsedWithSilentClose) {
  StatementMapper mapper(1);
  pool::PreparedSet server(2);
  ResponseFilter filter;
  wire::Bytes out;
  for (auto name : {"a", "b", "c"}) {
    ASSERT_TRUE(mapper.rewrite('P', parse_body(name, "SELECT 1"), server, filter, out));
  }
  auto msgs = split(out);
  ASSERT_EQ(msgs.size(), 4u);  // P a, P b, C a (eviction), P c
  EXPECT_EQ(msgs[2].type, 'C');
  EXPECT_EQ(server.size(), 2u);
  EXPECT_TRUE(filter.should_forward('1', server));
  EXPECT_TRUE(filter.should_forward('1', server));
  EXPECT_FALSE(filter.should_forward('3', server));  // the eviction's CloseComplete
  EXPECT_TRUE(filter.should_forward('1', server));
}

TEST(PreparedStatements, MalformedBodiesAreRejected) {
  StatementMapper mapper(1);
  pool::PreparedSet server;
  ResponseFilter filter;
  wire::Bytes out;
  std::vector<std::uint8_t> junk = {'s'};  // no terminator
  EXPECT_FALSE(mapper.rewrite('P', junk, server, filter, out));
  EXPECT_FALSE(mapper.rewrite('B', junk, server, filter, out));
  EXPECT_FALSE(mapper.rewrite('C', junk, server, filter, out));
}

}  // namespace
}  // namespace pgshift::proxy
