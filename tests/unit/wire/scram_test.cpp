// SCRAM-SHA-256 exchanges. The reference exchange is RFC 7677 §3.
#include <gtest/gtest.h>

#include "wire/auth.hpp"
#include "wire/base64.hpp"

namespace pgshift::wire {
namespace {

constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
constexpr std::string_view kClientFinalNoProof =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

ScramSecret rfc_secret() {
  return make_scram_secret("pencil", *detail::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
}

ScramServer rfc_server() {
  return ScramServer(rfc_secret(), std::string(kServerNonce));
}

// ---- client ----

TEST(ScramClientTest, Rfc7677Exchange) {
  ScramClient c("pencil", std::string(kClientNonce));
  c.set_username("user");
  EXPECT_EQ(c.client_first(), kClientFirst);
  std::string client_final;
  ASSERT_FALSE(c.handle_server_first(kServerFirst, client_final));
  EXPECT_EQ(client_final, kClientFinal);
  EXPECT_FALSE(c.handle_server_final(kServerFinal));
}

TEST(ScramClientTest, PassthroughKeysGiveTheSameProof) {
  const ScramSecret s = rfc_secret();
  ScramClient c(*s.client_key, s.server_key, std::string(kClientNonce));
  c.set_username("user");
  EXPECT_EQ(c.client_first(), kClientFirst);
  std::string client_final;
  ASSERT_FALSE(c.handle_server_first(kServerFirst, client_final));
  EXPECT_EQ(client_final, kClientFinal);
  EXPECT_FALSE(c.handle_server_final(kServerFinal));
}

TEST(ScramClientTest, DefaultUsernameIsEmptyLikeLibpq) {
  ScramClient c("pencil", "abc");
  EXPECT_EQ(c.client_first(), "n,,n=,r=abc");
  ScramClient escaped("pencil", "abc");
  escaped.set_username("a=b,c");
  EXPECT_EQ(escaped.client_first(), "n,,n=a=3Db=2Cc,r=abc");
}

TEST(ScramClientTest, WrongServerSignatureFails) {
  ScramClient c("pencil", std::string(kClientNonce));
  c.set_username("user");
  c.client_first();
  std::string client_final;
  ASSERT_FALSE(c.handle_server_first(kServerFirst, client_final));
  EXPECT_EQ(c.handle_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            errc::auth_failed);
  EXPECT_EQ(c.handle_server_final("e=invalid-proof"), errc::auth_failed);
  EXPECT_EQ(c.handle_server_final("v=AAAA"), errc::bad_scram_message);
  EXPECT_EQ(c.handle_server_final(""), errc::bad_scram_message);
}

TEST(ScramClientTest, WrongPasswordGivesDifferentProof) {
  ScramClient c("pencil2", std::string(kClientNonce));
  c.set_username("user");
  c.client_first();
  std::string client_final;
  ASSERT_FALSE(c.handle_server_first(kServerFirst, client_final));
  EXPECT_NE(client_final, kClientFinal);
  EXPECT_EQ(c.handle_server_final(kServerFinal), errc::auth_failed);
}

TEST(ScramClientTest, RejectsBadServerFirst) {
  const std::string tail = ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  for (const std::string& bad : {
           std::string("r=someoneelse") + tail,           // nonce not extending ours
           std::string("r=rOprNGfwEbeRWgbNEkqO") + tail,  // nothing added by the server
           std::string("m=ext,r=rOprNGfwEbeRWgbNEkqOxyz") + tail,
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=!!!!,i=4096"),
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096"),
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"),
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x"),
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"),
           std::string("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=="),
           std::string(""),
       }) {
    ScramClient c("pencil", std::string(kClientNonce));
    c.client_first();
    std::string client_final;
    EXPECT_EQ(c.handle_server_first(bad, client_final), errc::bad_scram_message) << bad;
  }
}

TEST(ScramClientTest, OutOfOrder) {
  ScramClient c("pencil", std::string(kClientNonce));
  std::string client_final;
  EXPECT_EQ(c.handle_server_first(kServerFirst, client_final), errc::bad_scram_message);
  EXPECT_EQ(c.handle_server_final(kServerFinal), errc::bad_scram_message);
}

// ---- server ----

TEST(ScramServerTest, Rfc7677Exchange) {
  ScramServer s = rfc_server();
  std::string server_first, server_final;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, server_first));
  EXPECT_EQ(server_first, kServerFirst);
  ASSERT_FALSE(s.handle_client_final(kClientFinal, server_final));
  EXPECT_EQ(server_final, kServerFinal);
}

TEST(ScramServerTest, WorksFromAStoredSecret) {
  // pg_authid secrets have no ClientKey; the server needs only StoredKey and ServerKey.
  auto parsed = parse_scram_secret(format_scram_secret(rfc_secret()));
  ASSERT_TRUE(parsed);
  ScramServer s(*parsed, std::string(kServerNonce));
  std::string server_first, server_final;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, server_first));
  ASSERT_FALSE(s.handle_client_final(kClientFinal, server_final));
  EXPECT_EQ(server_final, kServerFinal);
}

TEST(ScramServerTest, RecoversClientKey) {
  ScramServer s = rfc_server();
  EXPECT_FALSE(s.client_key());
  std::string server_first, server_final;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, server_first));
  ASSERT_FALSE(s.handle_client_final(kClientFinal, server_final));
  ASSERT_TRUE(s.client_key());
  EXPECT_EQ(*s.client_key(), *rfc_secret().client_key);
  EXPECT_EQ(detail::base64_encode(*s.client_key()), "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=");

  // PgBouncer-style passthrough: the recovered key authenticates to an upstream that has the
  // same secret, without ever knowing the password.
  ScramClient upstream_client(*s.client_key(), rfc_secret().server_key, random_nonce());
  ScramServer upstream(rfc_secret(), random_nonce());
  std::string cf, sf, cfin, sfin;
  ASSERT_FALSE(upstream.handle_client_first(upstream_client.client_first(), sf));
  ASSERT_FALSE(upstream_client.handle_server_first(sf, cfin));
  ASSERT_FALSE(upstream.handle_client_final(cfin, sfin));
  EXPECT_FALSE(upstream_client.handle_server_final(sfin));
}

TEST(ScramServerTest, WrongPasswordFails) {
  ScramServer s(make_scram_secret("pencil", "saltsaltsaltsalt", 16), random_nonce());
  ScramClient c("crayon", random_nonce());
  std::string sf, cfin, sfin;
  ASSERT_FALSE(s.handle_client_first(c.client_first(), sf));
  ASSERT_FALSE(c.handle_server_first(sf, cfin));
  EXPECT_EQ(s.handle_client_final(cfin, sfin), errc::auth_failed);
  EXPECT_TRUE(sfin.empty());
  EXPECT_FALSE(s.client_key());
  // Failure is final.
  EXPECT_EQ(s.handle_client_final(cfin, sfin), errc::bad_scram_message);
}

TEST(ScramServerTest, EndToEndWithRandomNonces) {
  const ScramSecret secret = make_scram_secret("correct horse", "0123456789abcdef", 64);
  for (int i = 0; i < 5; ++i) {
    ScramServer s(secret, random_nonce());
    ScramClient c("correct horse", random_nonce());
    std::string sf, cfin, sfin;
    ASSERT_FALSE(s.handle_client_first(c.client_first(), sf));
    ASSERT_FALSE(c.handle_server_first(sf, cfin));
    ASSERT_FALSE(s.handle_client_final(cfin, sfin));
    EXPECT_FALSE(c.handle_server_final(sfin));
  }
}

TEST(ScramServerTest, TamperedProofFails) {
  ScramServer s = rfc_server();
  std::string sf, sfin;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, sf));
  EXPECT_EQ(s.handle_client_final(std::string(kClientFinalNoProof) +
                                      ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                                  sfin),
            errc::auth_failed);
}

TEST(ScramServerTest, ChannelBindingRefused) {
  ScramServer s = rfc_server();
  std::string sf;
  EXPECT_EQ(s.handle_client_first("p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO", sf),
            errc::channel_binding_refused);
  EXPECT_TRUE(sf.empty());
  std::string sfin;
  EXPECT_EQ(s.handle_client_final(kClientFinal, sfin), errc::bad_scram_message);
}

TEST(ScramServerTest, ClientSupportingBindingButNotUsingItIsAccepted) {
  // gs2 flag "y": the client could bind but thinks we cannot; c= must then be base64("y,,").
  ScramServer s = rfc_server();
  std::string sf, sfin;
  ASSERT_FALSE(s.handle_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO", sf));
  EXPECT_EQ(sf, kServerFirst);
  // A proof computed for "c=biws" does not carry the right header.
  EXPECT_EQ(s.handle_client_final(kClientFinal, sfin), errc::bad_scram_message);

  ScramServer s2 = rfc_server();
  ASSERT_FALSE(s2.handle_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO", sf));
  // Compute the right proof for the "y" exchange with the key-based client math.
  const ScramSecret secret = rfc_secret();
  ScramClient c(*secret.client_key, secret.server_key, std::string(kClientNonce));
  c.set_username("user");
  c.client_first();
  std::string cfin;
  ASSERT_FALSE(c.handle_server_first(sf, cfin));
  // The client builds "c=biws" (flag n); a "y" client sends "c=eSws" and signs that instead,
  // so this proof does not match once the header is swapped.
  std::string swapped = "c=eSws" + cfin.substr(6);
  EXPECT_EQ(s2.handle_client_final(swapped, sfin), errc::auth_failed);
}

TEST(ScramServerTest, NonceMismatchRefused) {
  ScramServer s = rfc_server();
  std::string sf, sfin;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, sf));
  // The client's own part of the nonce changed.
  EXPECT_EQ(s.handle_client_final("c=biws,r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                                  sfin),
            errc::bad_scram_message);
  ScramServer s2 = rfc_server();
  ASSERT_FALSE(s2.handle_client_first(kClientFirst, sf));
  EXPECT_EQ(s2.handle_client_final("c=biws,r=rOprNGfwEbeRWgbNEkqO,"
                                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                                   sfin),
            errc::bad_scram_message);
}

TEST(ScramServerTest, RejectsBadClientFirst) {
  for (std::string_view bad : {
           "",
           "n",
           "n,",
           "x,,n=,r=abc",
           "n,a=admin,n=,r=abc",  // authzid
           "n,,m=ext,n=,r=abc",   // mandatory extension
           "n,,n=,r=",            // empty nonce
           "n,,n=,r=a\x01"
           "b",             // non-printable nonce
           "n,,r=abc",      // no username attribute
           "n,,n=,r=abc,",  // trailing comma
           "n,,n=",
       }) {
    ScramServer s = rfc_server();
    std::string sf;
    EXPECT_EQ(s.handle_client_first(bad, sf), errc::bad_scram_message) << bad;
  }
  // Extensions after the nonce are ignored.
  ScramServer s = rfc_server();
  std::string sf;
  EXPECT_FALSE(s.handle_client_first("n,,n=,r=abc,x=ext", sf));
}

TEST(ScramServerTest, RejectsBadClientFinal) {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  for (const std::string& bad : {
           std::string(""),
           "c=biws," + nonce,                         // no proof
           "c=biws," + proof + "," + nonce,           // proof not last / wrong order
           "c=biws," + nonce + "," + proof + ",x=1",  // proof not last
           "c=biws," + nonce + ",p=AAAA",             // proof not 32 bytes
           "c=biws," + nonce + ",p=!!!",              // not base64
           "c=cCws," + nonce + "," + proof,           // "p,," header
           "c=," + nonce + "," + proof,               // empty binding
           nonce + ",c=biws," + proof,                // wrong order
           "c=biws," + nonce + "," + proof + ",",     // trailing comma
       }) {
    ScramServer s = rfc_server();
    std::string sf, sfin;
    ASSERT_FALSE(s.handle_client_first(kClientFirst, sf));
    EXPECT_EQ(s.handle_client_final(bad, sfin), errc::bad_scram_message) << bad;
  }
  // Extensions before the proof are allowed.
  ScramServer s = rfc_server();
  std::string sf, sfin;
  ASSERT_FALSE(s.handle_client_first(kClientFirst, sf));
  EXPECT_EQ(s.handle_client_final("c=biws," + nonce + ",x=1," + proof, sfin), errc::auth_failed);
}

TEST(ScramServerTest, OutOfOrderCalls) {
  ScramServer s = rfc_server();
  std::string out;
  EXPECT_EQ(s.handle_client_final(kClientFinal, out), errc::bad_scram_message);
  ScramServer s2 = rfc_server();
  ASSERT_FALSE(s2.handle_client_first(kClientFirst, out));
  EXPECT_EQ(s2.handle_client_first(kClientFirst, out), errc::bad_scram_message);
  ScramServer s3 = rfc_server();
  ASSERT_FALSE(s3.handle_client_first(kClientFirst, out));
  ASSERT_FALSE(s3.handle_client_final(kClientFinal, out));
  EXPECT_EQ(s3.handle_client_final(kClientFinal, out), errc::bad_scram_message);
}

}  // namespace
}  // namespace pgshift::wire
