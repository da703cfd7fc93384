// proxy/session/upstream_error: what a client is told when its upstream fails, the same at
// login and in both relays.
#include "proxy/session/upstream_error.hpp"

#include <gtest/gtest.h>

namespace pgshift::proxy {
namespace {

TEST(UpstreamErrorTest, ServerRefusalIsRelayedAsItIs) {
  pool::AcquireError a;
  a.from_server = true;
  a.sqlstate = "28P01";
  a.message = "password authentication failed for user \"app\"";
  const ClientError e = client_error(a);
  EXPECT_EQ(e.sqlstate, "28P01");
  EXPECT_EQ(e.message, a.message);
  EXPECT_EQ(e.detail, "");

  pool::ConnectError c;
  c.sqlstate = "3D000";
  c.server_message = "database \"nope\" does not exist";
  c.message = "server error";
  const ClientError d = client_error(c);
  EXPECT_EQ(d.sqlstate, "3D000");
  EXPECT_EQ(d.message, c.server_message);
  EXPECT_EQ(d.detail, "");
}

TEST(UpstreamErrorTest, WaitTimeoutAndCredentialsSpeakForThemselves) {
  pool::AcquireError t;
  t.timed_out = true;
  t.sqlstate = "53300";
  t.message = "no server connection within query_wait_timeout";
  EXPECT_EQ(client_error(t).sqlstate, "53300");
  EXPECT_EQ(client_error(t).message, t.message);
  EXPECT_EQ(client_error(t).detail, "");

  pool::AcquireError cred;
  cred.sqlstate = "28000";
  cred.message = "no password for upstream user \"app\"";
  EXPECT_EQ(client_error(cred).message, cred.message);
  EXPECT_EQ(client_error(cred).detail, "");
}

TEST(UpstreamErrorTest, ConnectFailureIsSummarisedWithTheReasonInDetail) {
  pool::AcquireError a;
  a.message = "connect to 10.0.0.1:5432: Connection refused";
  const ClientError e = client_error(a);
  EXPECT_EQ(e.sqlstate, "08006");
  EXPECT_EQ(e.message, "pgshift could not connect to the upstream server");
  EXPECT_EQ(e.detail, a.message);

  pool::AcquireError closed;  // pool closed: its own SQLSTATE, summarised
  closed.sqlstate = "57P01";
  closed.message = "pgshift is shutting down";
  EXPECT_EQ(client_error(closed).sqlstate, "57P01");
  EXPECT_EQ(client_error(closed).detail, closed.message);

  pool::ConnectError c;
  c.message = "TLS handshake failed";
  const ClientError d = client_error(c);
  EXPECT_EQ(d.sqlstate, "08006");
  EXPECT_EQ(d.message, "pgshift could not connect to the upstream server");
  EXPECT_EQ(d.detail, c.message);
}

TEST(UpstreamErrorTest, LostServerAndLoginTimeout) {
  for (ServerLoss w : {ServerLoss::query, ServerLoss::transaction, ServerLoss::session}) {
    const ClientError e = server_lost(w);
    EXPECT_EQ(e.sqlstate, kConnectionFailure);
    EXPECT_FALSE(e.message.empty());
  }
  EXPECT_NE(server_lost(ServerLoss::query).message, server_lost(ServerLoss::transaction).message);
  EXPECT_EQ(server_lost(ServerLoss::session).detail, "");
  const ClientError t = upstream_wait_timed_out("shop", "main", "5000");
  EXPECT_EQ(t.sqlstate, "08006");
  EXPECT_EQ(t.message, "could not get a server connection for database \"shop\" within 5000 ms");
  EXPECT_NE(t.detail.find("route \"main\""), std::string::npos);
}

}  // namespace
}  // namespace pgshift::proxy
