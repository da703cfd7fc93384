#include "wire/messages.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "test_bytes.hpp"

namespace pgshift::wire::test {
namespace {

using Parser = std::function<std::error_code(Body)>;

// Each strict prefix of a valid body is an error (exact-size copies, so ASan sees any
// over-read), and so is the body with one extra byte.
void expect_strict(const Bytes& valid, const Parser& parse) {
  EXPECT_FALSE(parse(valid)) << "valid body rejected";
  for (std::size_t k = 0; k < valid.size(); ++k) {
    const Bytes prefix(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(k));
    const std::error_code ec = parse(prefix);
    EXPECT_TRUE(ec == errc::truncated_message || ec == errc::malformed_message)
        << "prefix " << k << ": " << ec.message();
  }
  Bytes longer = valid;
  longer.push_back('x');
  EXPECT_EQ(parse(longer), errc::malformed_message);
}

// ---- backend ----

TEST(MessagesTest, AuthenticationCodes) {
  Authentication a;
  EXPECT_FALSE(parse_authentication(Bytes{0, 0, 0, 0}, a));
  EXPECT_EQ(a.code, AuthCode::ok);
  EXPECT_FALSE(parse_authentication(Bytes{0, 0, 0, 3}, a));
  EXPECT_EQ(a.code, AuthCode::cleartext);

  const Bytes md5{0, 0, 0, 5, 1, 2, 3, 4};
  ASSERT_FALSE(parse_authentication(md5, a));
  EXPECT_EQ(a.code, AuthCode::md5);
  EXPECT_EQ(Bytes(a.md5_salt.begin(), a.md5_salt.end()), (Bytes{1, 2, 3, 4}));
  expect_strict(md5, [](Body b) {
    Authentication x;
    return parse_authentication(b, x);
  });

  const Bytes sasl = lit("\0\0\0\x0aSCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0");
  ASSERT_FALSE(parse_authentication(sasl, a));
  EXPECT_EQ(a.code, AuthCode::sasl);
  EXPECT_EQ(a.sasl_mechanisms,
            (std::vector<std::string_view>{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}));
  expect_strict(sasl, [](Body b) {
    Authentication x;
    return parse_authentication(b, x);
  });

  const Bytes cont = lit("\0\0\0\x0br=abc,s=xyz,i=4096");
  ASSERT_FALSE(parse_authentication(cont, a));
  EXPECT_EQ(a.code, AuthCode::sasl_continue);
  EXPECT_EQ(test::as_string(Bytes(a.sasl_data.begin(), a.sasl_data.end())), "r=abc,s=xyz,i=4096");
  EXPECT_TRUE(a.sasl_mechanisms.empty());
}

TEST(MessagesTest, AuthenticationErrors) {
  Authentication a;
  EXPECT_EQ(parse_authentication(Bytes{}, a), errc::truncated_message);
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0}, a), errc::truncated_message);
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0, 0, 1}, a), errc::malformed_message);
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0, 2}, a), errc::malformed_message);  // KerberosV5
  EXPECT_EQ(parse_authentication(Bytes{0xff, 0xff, 0xff, 0xff}, a), errc::malformed_message);
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0, 5, 1, 2, 3}, a), errc::truncated_message);
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0, 10, 0}, a), errc::malformed_message);  // none
  EXPECT_EQ(parse_authentication(Bytes{0, 0, 0, 10, 'A'}, a), errc::malformed_message);
}

TEST(MessagesTest, BackendKeyData) {
  const Bytes b{0, 0, 0x10, 0x92, 0xff, 0xff, 0xff, 0xfe};
  BackendKeyData k;
  ASSERT_FALSE(parse_backend_key_data(b, k));
  EXPECT_EQ(k.pid, 4242);
  EXPECT_EQ(k.secret, -2);
  expect_strict(b, [](Body body) {
    BackendKeyData x;
    return parse_backend_key_data(body, x);
  });
}

TEST(MessagesTest, ParameterStatus) {
  const Bytes b = lit("TimeZone\0UTC\0");
  ParameterStatus p;
  ASSERT_FALSE(parse_parameter_status(b, p));
  EXPECT_EQ(p.name, "TimeZone");
  EXPECT_EQ(p.value, "UTC");
  expect_strict(b, [](Body body) {
    ParameterStatus x;
    return parse_parameter_status(body, x);
  });
}

TEST(MessagesTest, ReadyForQuery) {
  char s = 0;
  for (char c : {'I', 'T', 'E'}) {
    ASSERT_FALSE(parse_ready_for_query(Bytes{static_cast<std::uint8_t>(c)}, s));
    EXPECT_EQ(s, c);
  }
  EXPECT_EQ(parse_ready_for_query(Bytes{'X'}, s), errc::malformed_message);
  EXPECT_EQ(parse_ready_for_query(Bytes{}, s), errc::truncated_message);
  EXPECT_EQ(parse_ready_for_query(Bytes{'I', 'I'}, s), errc::malformed_message);
}

TEST(MessagesTest, ErrorFields) {
  const Bytes b = lit("SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0");
  ErrorFields f;
  ASSERT_FALSE(parse_error_fields(b, f));
  EXPECT_EQ(f.fields.size(), 4u);
  EXPECT_EQ(f.sqlstate(), "28P01");
  EXPECT_EQ(f.severity(), "FATAL");
  EXPECT_EQ(f.message(), "password authentication failed for user \"x\"");
  EXPECT_EQ(f.get('H'), "");
  expect_strict(b, [](Body body) {
    ErrorFields x;
    return parse_error_fields(body, x);
  });
  // Severity falls back to S when V is absent (servers before 9.6).
  const Bytes old_server = lit("SERREUR\0\0");  // the views point into it: keep it alive
  ASSERT_FALSE(parse_error_fields(old_server, f));
  EXPECT_EQ(f.severity(), "ERREUR");
  EXPECT_FALSE(parse_error_fields(Bytes{0}, f));
  EXPECT_TRUE(f.fields.empty());
}

TEST(MessagesTest, CommandComplete) {
  const Bytes b = lit("INSERT 0 1\0");
  std::string_view tag;
  ASSERT_FALSE(parse_command_complete(b, tag));
  EXPECT_EQ(tag, "INSERT 0 1");
  expect_strict(b, [](Body body) {
    std::string_view x;
    return parse_command_complete(body, x);
  });
}

// ---- frontend ----

TEST(MessagesTest, Query) {
  const Bytes b = lit("SELECT 1\0");
  std::string_view sql;
  ASSERT_FALSE(parse_query(b, sql));
  EXPECT_EQ(sql, "SELECT 1");
  expect_strict(b, [](Body body) {
    std::string_view x;
    return parse_query(body, x);
  });
  EXPECT_EQ(parse_query(lit("a\0b\0"), sql), errc::malformed_message);
}

TEST(MessagesTest, Parse) {
  Bytes b = lit("s1\0SELECT $1, $2\0");
  put16(b, 2);
  put32(b, 23);
  put32(b, 0xffffffff);
  Parse p;
  ASSERT_FALSE(parse_parse(b, p));
  EXPECT_EQ(p.statement, "s1");
  EXPECT_EQ(p.query, "SELECT $1, $2");
  EXPECT_EQ(p.param_types, (std::vector<std::uint32_t>{23, 0xffffffff}));
  expect_strict(b, [](Body body) {
    Parse x;
    return parse_parse(body, x);
  });
}

TEST(MessagesTest, ParseBadCounts) {
  Parse p;
  Bytes most = lit("\0q\0");
  put16(most, 0xffff);  // 65535 types claimed (a legal count), none carried
  EXPECT_EQ(parse_parse(most, p), errc::truncated_message);
  Bytes huge = lit("\0q\0");
  put16(huge, 0x7fff);  // claims 32767 types, carries none: no big allocation, no over-read
  EXPECT_EQ(parse_parse(huge, p), errc::truncated_message);
  EXPECT_EQ(p.param_types.capacity(), 0u);
}

TEST(MessagesTest, BindNames) {
  Bytes b = lit("portal\0stmt\0");
  put16(b, 0);
  put16(b, 0);
  put16(b, 0);
  BindNames n;
  ASSERT_FALSE(parse_bind_names(b, n));
  EXPECT_EQ(n.portal, "portal");
  EXPECT_EQ(n.statement, "stmt");
  EXPECT_EQ(parse_bind_names(lit("portal\0stm"), n), errc::malformed_message);
  EXPECT_EQ(parse_bind_names(Bytes{}, n), errc::malformed_message);
}

TEST(MessagesTest, CloseAndDescribe) {
  const Bytes b = lit("Sname\0");
  CloseOrDescribe c;
  ASSERT_FALSE(parse_close(b, c));
  EXPECT_EQ(c.kind, 'S');
  EXPECT_EQ(c.name, "name");
  const Bytes portal = lit("P\0");
  ASSERT_FALSE(parse_describe(portal, c));
  EXPECT_EQ(c.kind, 'P');
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(parse_close(lit("Xname\0"), c), errc::malformed_message);
  expect_strict(b, [](Body body) {
    CloseOrDescribe x;
    return parse_describe(body, x);
  });
}

TEST(MessagesTest, Execute) {
  Bytes b = lit("p1\0");
  put32(b, 100);
  Execute e;
  ASSERT_FALSE(parse_execute(b, e));
  EXPECT_EQ(e.portal, "p1");
  EXPECT_EQ(e.max_rows, 100);
  expect_strict(b, [](Body body) {
    Execute x;
    return parse_execute(body, x);
  });
}

TEST(MessagesTest, Password) {
  const Bytes b = lit("md5abc\0");
  std::string_view pw;
  ASSERT_FALSE(parse_password(b, pw));
  EXPECT_EQ(pw, "md5abc");
  expect_strict(b, [](Body body) {
    std::string_view x;
    return parse_password(body, x);
  });
}

TEST(MessagesTest, SaslInitialResponse) {
  Bytes b = lit("SCRAM-SHA-256\0");
  put32(b, 5);
  append(b, bytes("n,,xx"));
  SaslInitialResponse s;
  ASSERT_FALSE(parse_sasl_initial_response(b, s));
  EXPECT_EQ(s.mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(test::as_string(Bytes(s.data.begin(), s.data.end())), "n,,xx");
  expect_strict(b, [](Body body) {
    SaslInitialResponse x;
    return parse_sasl_initial_response(body, x);
  });

  Bytes none = lit("M\0");
  put32(none, 0xffffffff);  // -1: no initial response
  ASSERT_FALSE(parse_sasl_initial_response(none, s));
  EXPECT_TRUE(s.data.empty());
  Bytes bad = lit("M\0");
  put32(bad, 0xfffffffe);
  EXPECT_EQ(parse_sasl_initial_response(bad, s), errc::malformed_message);
  Bytes lying = lit("M\0");
  put32(lying, 0x7fffffff);
  EXPECT_EQ(parse_sasl_initial_response(lying, s), errc::truncated_message);
}

// Every parser on every prefix of arbitrary bytes: never crashes, never over-reads. A parser
// either fails with a framing error, or every view it returns lies inside the body it was
// given; the empty body is an error for every parser (each message has a required field).
bool inside(const Bytes& b, std::string_view v) {
  if (v.empty()) return true;
  const auto* begin = reinterpret_cast<const char*>(b.data());
  return v.data() >= begin && v.data() + v.size() <= begin + b.size();
}

void expect_framing_error_or(std::error_code ec, bool views_inside, std::size_t k,
                             const char* parser) {
  if (ec) {
    EXPECT_TRUE(ec == errc::truncated_message || ec == errc::malformed_message)
        << parser << " on a " << k << "-byte prefix: " << ec.message();
  } else {
    EXPECT_TRUE(views_inside) << parser << " returned a view outside its " << k << "-byte body";
  }
  if (k == 0) {
    EXPECT_TRUE(ec) << parser << " accepted an empty body";
  }
}

TEST(MessagesTest, AllParsersSurviveGarbage) {
  Bytes junk;
  for (int i = 0; i < 64; ++i) junk.push_back(static_cast<std::uint8_t>((i * 37) % 5 == 0 ? 0 : i));
  for (std::size_t k = 0; k <= junk.size(); ++k) {
    const Bytes b(junk.begin(), junk.begin() + static_cast<std::ptrdiff_t>(k));
    Authentication a;
    BackendKeyData kd;
    ParameterStatus ps;
    ErrorFields ef;
    Parse p;
    BindNames bn;
    CloseOrDescribe cd;
    Execute ex;
    SaslInitialResponse sr;
    std::string_view sv;
    char c = 0;
    expect_framing_error_or(parse_authentication(b, a), true, k, "Authentication");
    expect_framing_error_or(parse_backend_key_data(b, kd), true, k, "BackendKeyData");
    expect_framing_error_or(parse_parameter_status(b, ps), true, k, "ParameterStatus");
    expect_framing_error_or(parse_ready_for_query(b, c), true, k, "ReadyForQuery");
    expect_framing_error_or(parse_error_fields(b, ef), true, k, "ErrorResponse");
    expect_framing_error_or(parse_command_complete(b, sv), inside(b, sv), k, "CommandComplete");
    expect_framing_error_or(parse_query(b, sv), inside(b, sv), k, "Query");
    expect_framing_error_or(parse_parse(b, p), inside(b, p.statement) && inside(b, p.query), k,
                            "Parse");
    expect_framing_error_or(parse_bind_names(b, bn),
                            inside(b, bn.portal) && inside(b, bn.statement), k, "Bind");
    expect_framing_error_or(parse_close(b, cd), inside(b, cd.name), k, "Close");
    expect_framing_error_or(parse_describe(b, cd), inside(b, cd.name), k, "Describe");
    expect_framing_error_or(parse_execute(b, ex), inside(b, ex.portal), k, "Execute");
    expect_framing_error_or(parse_password(b, sv), inside(b, sv), k, "PasswordMessage");
    const std::error_code sasl = parse_sasl_initial_response(b, sr);
    const std::string_view sasl_data(reinterpret_cast<const char*>(sr.data.data()), sr.data.size());
    expect_framing_error_or(sasl, inside(b, sr.mechanism) && inside(b, sasl_data), k,
                            "SASLInitialResponse");
  }
}

}  // namespace
}  // namespace pgshift::wire::test
