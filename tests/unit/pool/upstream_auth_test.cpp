// UpstreamAuth against canned server requests, and against wire::ScramServer end to end.
#include "pool/upstream_auth.hpp"

#include <gtest/gtest.h>

#include "pool/errc.hpp"

namespace pgshift::pool {
namespace {

using Step = UpstreamAuth::Step;

wire::Body body_of(const wire::Bytes& message) {
  return wire::Body(message).subspan(5);  // type byte + length
}

// Parses an Authentication message built by wire's builders; keeps the bytes alive.
struct Request {
  wire::Bytes bytes;
  wire::Authentication auth;
  explicit Request(wire::Bytes b) : bytes(std::move(b)) {
    EXPECT_FALSE(wire::parse_authentication(body_of(bytes), auth));
  }
};

Request sasl(std::initializer_list<std::string_view> mechanisms) {
  std::vector<std::string_view> m(mechanisms);
  wire::Bytes out;
  wire::auth_sasl(out, m);
  return Request(std::move(out));
}

Request auth_code(std::int32_t code) {
  wire::Bytes out;
  wire::MessageWriter(out).begin('R').i32(code).end();
  return Request(std::move(out));
}

Credentials creds(std::string password) {
  return Credentials{"alice", std::move(password), {}, {}};
}

TEST(UpstreamAuth, CleartextSendsThePassword) {
  auto c = creds("pw");
  UpstreamAuth auth(c);
  wire::Bytes reply;
  ConnectError error;
  wire::Bytes msg;
  wire::auth_cleartext(msg);
  ASSERT_EQ(auth.on_request(Request(msg).auth, reply, error), Step::reply);
  std::string_view password;
  ASSERT_EQ(reply[0], 'p');
  ASSERT_FALSE(wire::parse_password(body_of(reply), password));
  EXPECT_EQ(password, "pw");
}

TEST(UpstreamAuth, Md5FromPlaintextAndFromStoredHashAgree) {
  const std::array<std::uint8_t, 4> salt{1, 2, 3, 4};
  wire::Bytes msg;
  wire::auth_md5(msg, salt);
  Request request(msg);

  auto plain = creds("pw");
  auto stored = creds(wire::md5_stored_hash("alice", "pw"));
  wire::Bytes reply1, reply2;
  ConnectError error;
  ASSERT_EQ(UpstreamAuth(plain).on_request(request.auth, reply1, error), Step::reply);
  ASSERT_EQ(UpstreamAuth(stored).on_request(request.auth, reply2, error), Step::reply);
  EXPECT_EQ(reply1, reply2);
  std::string_view response;
  ASSERT_FALSE(wire::parse_password(body_of(reply1), response));
  EXPECT_EQ(response, wire::md5_password_response("alice", "pw", salt));
}

TEST(UpstreamAuth, StoredHashCannotAnswerCleartextOrScram) {
  auto c = creds(wire::md5_stored_hash("alice", "pw"));
  wire::Bytes msg, reply;
  wire::auth_cleartext(msg);
  ConnectError error;
  EXPECT_EQ(UpstreamAuth(c).on_request(Request(msg).auth, reply, error), Step::failed);
  EXPECT_EQ(error.ec, error_code(errc::missing_credentials));
  EXPECT_EQ(UpstreamAuth(c).on_request(sasl({"SCRAM-SHA-256"}).auth, reply, error), Step::failed);
  EXPECT_EQ(error.ec, error_code(errc::missing_credentials));
  EXPECT_EQ(error.message.find(c.password), std::string::npos);
}

TEST(UpstreamAuth, RefusesGssSspiPlusOnlyAndUnknownMethods) {
  auto c = creds("pw");
  wire::Bytes reply;
  ConnectError error;
  EXPECT_EQ(UpstreamAuth(c).on_request(auth_code(7).auth, reply, error), Step::failed);
  EXPECT_NE(error.message.find("GSSAPI"), std::string::npos);
  EXPECT_EQ(UpstreamAuth(c).on_request(auth_code(9).auth, reply, error), Step::failed);
  EXPECT_NE(error.message.find("SSPI"), std::string::npos);
  EXPECT_EQ(UpstreamAuth(c).on_request(sasl({"SCRAM-SHA-256-PLUS"}).auth, reply, error),
            Step::failed);
  EXPECT_EQ(error.ec, error_code(errc::unsupported_auth_method));
  EXPECT_NE(error.message.find("SCRAM-SHA-256-PLUS"), std::string::npos);
  EXPECT_EQ(UpstreamAuth(c).on_request(sasl({"OAUTHBEARER"}).auth, reply, error), Step::failed);
  EXPECT_NE(error.message.find("OAUTHBEARER"), std::string::npos);
  EXPECT_TRUE(reply.empty());
}

// Drives UpstreamAuth against wire::ScramServer. `tamper` flips a byte of the server final.
Step scram_exchange(const Credentials& c, const wire::ScramSecret& secret, bool tamper,
                    ConnectError& error) {
  UpstreamAuth auth(c, "client-nonce");
  wire::ScramServer server(secret, "server-nonce");
  wire::Bytes reply;
  if (auto s = auth.on_request(sasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}).auth, reply, error);
      s != Step::reply) {
    return s;
  }
  wire::SaslInitialResponse initial;
  EXPECT_FALSE(wire::parse_sasl_initial_response(body_of(reply), initial));
  EXPECT_EQ(initial.mechanism, "SCRAM-SHA-256");
  std::string server_first;
  EXPECT_FALSE(server.handle_client_first(
      {reinterpret_cast<const char*>(initial.data.data()), initial.data.size()}, server_first));

  wire::Bytes msg;
  wire::auth_sasl_continue(msg, server_first);
  reply.clear();
  if (auto s = auth.on_request(Request(msg).auth, reply, error); s != Step::reply) return s;
  EXPECT_EQ(reply[0], 'p');
  const auto final_body = body_of(reply);  // SASLResponse: the raw client-final-message
  std::string_view client_final(reinterpret_cast<const char*>(final_body.data()),
                                final_body.size());
  std::string server_final;
  if (server.handle_client_final(client_final, server_final)) return Step::failed;
  if (tamper) server_final[2] = server_final[2] == 'A' ? 'B' : 'A';  // "v=" + base64

  msg.clear();
  wire::auth_sasl_final(msg, server_final);
  reply.clear();
  if (auto s = auth.on_request(Request(msg).auth, reply, error); s != Step::wait) return s;
  EXPECT_TRUE(reply.empty());
  msg.clear();
  wire::auth_ok(msg);
  return auth.on_request(Request(msg).auth, reply, error);
}

TEST(UpstreamAuth, ScramWithPasswordAndWithPassthroughKeys) {
  auto secret = wire::make_scram_secret("pw", "0123456789abcdef", 4096);
  ConnectError error;
  EXPECT_EQ(scram_exchange(creds("pw"), secret, false, error), Step::done) << error.message;

  Credentials keys{"alice", "", *secret.client_key, secret.server_key};
  EXPECT_EQ(scram_exchange(keys, secret, false, error), Step::done) << error.message;
}

TEST(UpstreamAuth, ScramRejectsABadServerSignature) {
  auto secret = wire::make_scram_secret("pw", "0123456789abcdef", 4096);
  ConnectError error;
  EXPECT_EQ(scram_exchange(creds("pw"), secret, true, error), Step::failed);
  EXPECT_EQ(error.ec, error_code(std::error_code(wire::errc::auth_failed))) << error.message;
}

TEST(UpstreamAuth, OkBeforeScramFinalIsAProtocolViolation) {
  auto c = creds("pw");
  UpstreamAuth auth(c);
  wire::Bytes reply, ok;
  ConnectError error;
  ASSERT_EQ(auth.on_request(sasl({"SCRAM-SHA-256"}).auth, reply, error), Step::reply);
  wire::auth_ok(ok);
  EXPECT_EQ(auth.on_request(Request(ok).auth, reply, error), Step::failed);
  EXPECT_EQ(error.ec, error_code(errc::protocol_violation));
}

}  // namespace
}  // namespace pgshift::pool
