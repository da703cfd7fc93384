#include "wire/builder.hpp"

#include <gtest/gtest.h>

#include <array>

#include "test_bytes.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"
#include "wire/startup.hpp"

namespace pgshift::wire::test {
namespace {

template <typename F>
Bytes build(F&& f) {
  Bytes out;
  f(out);
  return out;
}

constexpr std::array<std::uint8_t, 4> kSalt{0x93, 0xa5, 0x1e, 0x7c};

// ---- byte-exact layouts ----

TEST(BuilderTest, AuthenticationRequests) {
  EXPECT_EQ(build([](Bytes& o) { auth_ok(o); }), (Bytes{'R', 0, 0, 0, 8, 0, 0, 0, 0}));
  EXPECT_EQ(build([](Bytes& o) { auth_cleartext(o); }), (Bytes{'R', 0, 0, 0, 8, 0, 0, 0, 3}));
  EXPECT_EQ(build([](Bytes& o) { auth_md5(o, kSalt); }),
            (Bytes{'R', 0, 0, 0, 12, 0, 0, 0, 5, 0x93, 0xa5, 0x1e, 0x7c}));
  const std::array<std::string_view, 1> mechs{"SCRAM-SHA-256"};
  EXPECT_EQ(build([&](Bytes& o) { auth_sasl(o, mechs); }),
            concat({Bytes{'R', 0, 0, 0, 23, 0, 0, 0, 10}, lit("SCRAM-SHA-256\0\0")}));
  EXPECT_EQ(build([](Bytes& o) { auth_sasl_continue(o, "r=a"); }),
            (Bytes{'R', 0, 0, 0, 11, 0, 0, 0, 11, 'r', '=', 'a'}));
  EXPECT_EQ(build([](Bytes& o) { auth_sasl_final(o, "v=b"); }),
            (Bytes{'R', 0, 0, 0, 11, 0, 0, 0, 12, 'v', '=', 'b'}));
}

TEST(BuilderTest, ErrorResponse) {
  const Bytes got = build([](Bytes& o) {
    error_response(o, {.severity = "FATAL", .sqlstate = "28P01", .message = "bad password"});
  });
  const Bytes fields = lit("SFATAL\0VFATAL\0C28P01\0Mbad password\0\0");
  EXPECT_EQ(got,
            concat({Bytes{'E', 0, 0, 0, static_cast<std::uint8_t>(fields.size() + 4)}, fields}));
}

TEST(BuilderTest, NoticeWithDetailAndHint) {
  const Bytes got = build([](Bytes& o) {
    notice_response(
        o,
        {.severity = "WARNING", .sqlstate = "01000", .message = "m", .detail = "d", .hint = "h"});
  });
  const Bytes fields = lit("SWARNING\0VWARNING\0C01000\0Mm\0Dd\0Hh\0\0");
  EXPECT_EQ(got,
            concat({Bytes{'N', 0, 0, 0, static_cast<std::uint8_t>(fields.size() + 4)}, fields}));
}

TEST(BuilderTest, SessionMessages) {
  EXPECT_EQ(build([](Bytes& o) { parameter_status(o, "a", "b"); }),
            (Bytes{'S', 0, 0, 0, 8, 'a', 0, 'b', 0}));
  EXPECT_EQ(build([](Bytes& o) { backend_key_data(o, 1, -1); }),
            (Bytes{'K', 0, 0, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(build([](Bytes& o) { ready_for_query(o, 'I'); }), (Bytes{'Z', 0, 0, 0, 5, 'I'}));
  EXPECT_EQ(build([](Bytes& o) { command_complete(o, "BEGIN"); }),
            concat({Bytes{'C', 0, 0, 0, 10}, lit("BEGIN\0")}));
  EXPECT_EQ(build([](Bytes& o) { empty_query_response(o); }), (Bytes{'I', 0, 0, 0, 4}));
  const std::array<std::string, 1> opts{"_pq_.x"};
  EXPECT_EQ(build([&](Bytes& o) { negotiate_protocol_version(o, 0, opts); }),
            concat({Bytes{'v', 0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 1}, lit("_pq_.x\0")}));
}

TEST(BuilderTest, StartupPhasePackets) {
  const std::array<std::pair<std::string, std::string>, 1> params{{{"user", "u"}}};
  EXPECT_EQ(build([&](Bytes& o) { startup_message(o, params); }),
            concat({Bytes{0, 0, 0, 16, 0, 3, 0, 0}, lit("user\0u\0\0")}));
  EXPECT_EQ(build([](Bytes& o) { ssl_request(o); }), (Bytes{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}));
  EXPECT_EQ(build([](Bytes& o) { cancel_request(o, 1234, 5678); }),
            (Bytes{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x04, 0xd2, 0, 0, 0x16, 0x2e}));
}

TEST(BuilderTest, FrontendMessages) {
  EXPECT_EQ(build([](Bytes& o) { query(o, "SELECT 1"); }),
            concat({Bytes{'Q', 0, 0, 0, 13}, lit("SELECT 1\0")}));
  const std::array<std::uint32_t, 1> types{23};
  EXPECT_EQ(build([&](Bytes& o) { parse(o, "s", "q", types); }),
            concat({Bytes{'P', 0, 0, 0, 14}, lit("s\0q\0"), Bytes{0, 1, 0, 0, 0, 23}}));
  EXPECT_EQ(build([](Bytes& o) { close_statement(o, "s"); }),
            (Bytes{'C', 0, 0, 0, 7, 'S', 's', 0}));
  EXPECT_EQ(build([](Bytes& o) { password_message(o, "pw"); }),
            (Bytes{'p', 0, 0, 0, 7, 'p', 'w', 0}));
  EXPECT_EQ(build([](Bytes& o) { sasl_initial_response(o, "SCRAM-SHA-256", "n,,n=,r=x"); }),
            concat({Bytes{'p', 0, 0, 0, 31}, lit("SCRAM-SHA-256\0"), Bytes{0, 0, 0, 9},
                    bytes("n,,n=,r=x")}));
  EXPECT_EQ(build([](Bytes& o) { sasl_response(o, "abc"); }),
            (Bytes{'p', 0, 0, 0, 7, 'a', 'b', 'c'}));
  EXPECT_EQ(build([](Bytes& o) { sync(o); }), (Bytes{'S', 0, 0, 0, 4}));
  EXPECT_EQ(build([](Bytes& o) { flush(o); }), (Bytes{'H', 0, 0, 0, 4}));
  EXPECT_EQ(build([](Bytes& o) { terminate(o); }), (Bytes{'X', 0, 0, 0, 4}));
}

TEST(BuilderTest, AppendsAndBatches) {
  Bytes out{0xaa};
  sync(out);
  ready_for_query(out, 'T');
  EXPECT_EQ(out, (Bytes{0xaa, 'S', 0, 0, 0, 4, 'Z', 0, 0, 0, 5, 'T'}));
}

TEST(BuilderTest, EmbeddedNulCannotBreakFraming) {
  const Bytes got = build([](Bytes& o) { parameter_status(o, std::string_view("a\0b", 3), "c"); });
  EXPECT_EQ(got, (Bytes{'S', 0, 0, 0, 8, 'a', 0, 'c', 0}));
}

TEST(BuilderTest, LongMessageLength) {
  const std::string sql(70'000, 'x');
  const Bytes got = build([&](Bytes& o) { query(o, sql); });
  ASSERT_EQ(got.size(), 70'006u);
  EXPECT_EQ((Bytes(got.begin(), got.begin() + 5)), (Bytes{'Q', 0, 0x01, 0x11, 0x75}));
}

// ---- round trips: builder output re-parsed by the scanner and the parsers ----

std::vector<ScanResult> scan_all(Direction dir, const Bytes& data) {
  MessageScanner s(dir, {}, MessageScanner::TypeSet{}.set());
  std::vector<ScanResult> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    const ScanResult r = s.feed(std::span(data).subspan(pos));
    EXPECT_EQ(r.kind, ScanKind::message);
    if (r.kind != ScanKind::message) break;
    out.push_back(r);
    pos += r.consumed;
  }
  return out;
}

TEST(BuilderTest, BackendRoundTrip) {
  Bytes out;
  const std::array<std::string_view, 2> mechs{"SCRAM-SHA-256", "X"};
  auth_ok(out);
  auth_md5(out, kSalt);
  auth_sasl(out, mechs);
  auth_sasl_continue(out, "r=abc");
  parameter_status(out, "server_version", "15.4");
  backend_key_data(out, 99, -99);
  error_response(out, {.severity = "ERROR", .sqlstate = "57P01", .message = "bye", .hint = "h"});
  command_complete(out, "UPDATE 3");
  ready_for_query(out, 'E');
  const auto msgs = scan_all(Direction::backend, out);
  ASSERT_EQ(msgs.size(), 9u);

  Authentication a;
  ASSERT_FALSE(parse_authentication(msgs[0].body, a));
  EXPECT_EQ(a.code, AuthCode::ok);
  ASSERT_FALSE(parse_authentication(msgs[1].body, a));
  EXPECT_EQ(a.code, AuthCode::md5);
  EXPECT_TRUE(std::equal(a.md5_salt.begin(), a.md5_salt.end(), kSalt.begin(), kSalt.end()));
  ASSERT_FALSE(parse_authentication(msgs[2].body, a));
  EXPECT_EQ(a.sasl_mechanisms, (std::vector<std::string_view>{"SCRAM-SHA-256", "X"}));
  ASSERT_FALSE(parse_authentication(msgs[3].body, a));
  EXPECT_EQ(a.code, AuthCode::sasl_continue);
  EXPECT_EQ(a.sasl_data.size(), 5u);
  ParameterStatus ps;
  ASSERT_FALSE(parse_parameter_status(msgs[4].body, ps));
  EXPECT_EQ(ps.name, "server_version");
  EXPECT_EQ(ps.value, "15.4");
  BackendKeyData k;
  ASSERT_FALSE(parse_backend_key_data(msgs[5].body, k));
  EXPECT_EQ(k.pid, 99);
  EXPECT_EQ(k.secret, -99);
  ErrorFields ef;
  ASSERT_FALSE(parse_error_fields(msgs[6].body, ef));
  EXPECT_EQ(ef.severity(), "ERROR");
  EXPECT_EQ(ef.get('S'), "ERROR");
  EXPECT_EQ(ef.sqlstate(), "57P01");
  EXPECT_EQ(ef.message(), "bye");
  EXPECT_EQ(ef.get('H'), "h");
  EXPECT_EQ(ef.get('D'), "");
  std::string_view tag;
  ASSERT_FALSE(parse_command_complete(msgs[7].body, tag));
  EXPECT_EQ(tag, "UPDATE 3");
  char status = 0;
  ASSERT_FALSE(parse_ready_for_query(msgs[8].body, status));
  EXPECT_EQ(status, 'E');
}

TEST(BuilderTest, FrontendRoundTrip) {
  Bytes out;
  const std::array<std::uint32_t, 3> types{23, 25, 0};
  query(out, "SELECT 1");
  parse(out, "stmt", "SELECT $1, $2, $3", types);
  close_statement(out, "stmt");
  password_message(out, "md5deadbeef");
  sasl_initial_response(out, "SCRAM-SHA-256", "n,,n=,r=nonce");
  sync(out);
  const auto msgs = scan_all(Direction::frontend, out);
  ASSERT_EQ(msgs.size(), 6u);

  std::string_view sv;
  ASSERT_FALSE(parse_query(msgs[0].body, sv));
  EXPECT_EQ(sv, "SELECT 1");
  Parse p;
  ASSERT_FALSE(parse_parse(msgs[1].body, p));
  EXPECT_EQ(p.statement, "stmt");
  EXPECT_EQ(p.query, "SELECT $1, $2, $3");
  EXPECT_EQ(p.param_types, (std::vector<std::uint32_t>{23, 25, 0}));
  CloseOrDescribe c;
  ASSERT_FALSE(parse_close(msgs[2].body, c));
  EXPECT_EQ(c.kind, 'S');
  EXPECT_EQ(c.name, "stmt");
  ASSERT_FALSE(parse_password(msgs[3].body, sv));
  EXPECT_EQ(sv, "md5deadbeef");
  SaslInitialResponse s;
  ASSERT_FALSE(parse_sasl_initial_response(msgs[4].body, s));
  EXPECT_EQ(s.mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(std::string(s.data.begin(), s.data.end()), "n,,n=,r=nonce");
  EXPECT_EQ(msgs[5].type, 'S');
  EXPECT_TRUE(msgs[5].body.empty());
}

TEST(BuilderTest, StartupRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> params{
      {"user", "svc"}, {"database", "auth_db"}, {"application_name", "pgshift"}};
  Bytes out;
  ssl_request(out);
  startup_message(out, params);
  cancel_request(out, 42, -42);
  std::span<const std::uint8_t> rest(out);
  StartupResult r = decode_startup(rest, {});
  EXPECT_EQ(r.kind, StartupKind::ssl_request);
  rest = rest.subspan(r.consumed);
  r = decode_startup(rest, {});
  ASSERT_EQ(r.kind, StartupKind::startup);
  EXPECT_EQ(r.startup.params, params);
  EXPECT_EQ(r.startup.protocol, kProtocol3);
  rest = rest.subspan(r.consumed);
  r = decode_startup(rest, {});
  ASSERT_EQ(r.kind, StartupKind::cancel_request);
  EXPECT_EQ(r.cancel, (CancelKey{42, -42}));
  EXPECT_EQ(r.consumed, rest.size());
}

}  // namespace
}  // namespace pgshift::wire::test
