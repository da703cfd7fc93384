// connect_upstream against scripted servers on loopback: behaviour a real PostgreSQL rarely
// or never shows (refused TLS, plaintext injected after 'S', GSSAPI, messages out of order).
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <functional>

#include "pool/errc.hpp"
#include "pool/upstream.hpp"
#include "pool/upstream_detail.hpp"
#include "test_util.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"

namespace pgshift::pool::test {
namespace {

using namespace std::chrono_literals;
using detail::use_tuple;
using Script = std::function<asio::awaitable<void>(tcp::socket&)>;

// Reads one startup-phase packet (Int32 length, then the rest).
asio::awaitable<wire::Bytes> read_packet(tcp::socket& s) {
  wire::Bytes packet(4);
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(packet), use_tuple);
  if (ec) co_return wire::Bytes{};
  const std::size_t length = wire::read_be32(packet.data());
  if (length < 4 || length > 10000) co_return wire::Bytes{};
  packet.resize(length);
  std::tie(ec, n) =
      co_await asio::async_read(s, asio::buffer(packet.data() + 4, length - 4), use_tuple);
  co_return packet;
}

asio::awaitable<void> send(tcp::socket& s, const wire::Bytes& bytes) {
  co_await asio::async_write(s, asio::buffer(bytes), use_tuple);
}

// Keeps the connection open until the client closes it.
asio::awaitable<void> drain(tcp::socket& s) {
  std::array<std::uint8_t, 256> sink{};
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(sink), use_tuple);
    if (ec) co_return;
  }
}

asio::awaitable<void> serve(tcp::acceptor acceptor, Script script) {
  auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
  if (ec) co_return;
  co_await script(socket);
  co_await drain(socket);
}

struct Outcome {
  std::optional<ConnInfo> conn;  // set if connected
  ConnectError error;
  wire::Bytes after_ready;  // the first 5 bytes readable after ReadyForQuery, if asked for
};

Outcome connect_to(Script script, config::UpstreamTlsMode tls = config::UpstreamTlsMode::disable,
                   std::size_t read_after_ready = 0) {
  return run_io([&]() -> asio::awaitable<Outcome> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    UpstreamParams p;
    p.host = "127.0.0.1";
    p.port = acceptor.local_endpoint().port();
    p.database = "db";
    p.credentials.user = "alice";
    p.credentials.password = "pw";
    p.connect_timeout = 5s;
    p.tls_mode = tls;
    p.tls_context = make_upstream_tls_context(config::UpstreamTls{tls, "", ""});
    asio::co_spawn(ex, serve(std::move(acceptor), std::move(script)), asio::detached);
    Outcome out;
    auto conn = co_await connect_upstream(p, out.error);
    if (conn) {
      out.conn = info_of(*conn);
      if (read_after_ready > 0) {
        out.after_ready.resize(read_after_ready);
        if (co_await conn->stream.read_exact(out.after_ready)) out.after_ready.clear();
      }
      conn->stream.close();
    }
    co_return out;
  });
}

// Answers an SSLRequest with `answer` (bytes written as given).
Script answer_ssl_request(wire::Bytes answer) {
  return [answer](tcp::socket& s) -> asio::awaitable<void> {
    auto request = co_await read_packet(s);
    EXPECT_EQ(request.size(), 8u);
    co_await send(s, answer);
  };
}

// Reads the StartupMessage, then sends `reply`.
Script after_startup(wire::Bytes reply) {
  return [reply](tcp::socket& s) -> asio::awaitable<void> {
    auto packet = co_await read_packet(s);
    auto startup = wire::decode_startup(packet, wire::Limits{});
    EXPECT_EQ(startup.kind, wire::StartupKind::startup);
    co_await send(s, reply);
  };
}

TEST(UpstreamFakeServer, ServerWithoutTls) {
  auto out = connect_to(answer_ssl_request({'N'}), config::UpstreamTlsMode::require);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::tls_not_supported));
  EXPECT_NE(out.error.message.find("server does not support TLS"), std::string::npos)
      << out.error.message;
}

TEST(UpstreamFakeServer, GarbageAnswerToSslRequest) {
  auto out = connect_to(answer_ssl_request({'X'}), config::UpstreamTlsMode::require);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::protocol_violation));
  EXPECT_NE(out.error.message.find("0x58"), std::string::npos) << out.error.message;
}

// CVE-2021-23222: bytes sent in plaintext right after 'S' must never be read as messages.
TEST(UpstreamFakeServer, PlaintextAfterSIsNotTrusted) {
  wire::Bytes answer{'S'};
  wire::auth_ok(answer);
  wire::ready_for_query(answer, 'I');
  auto out = connect_to(answer_ssl_request(answer), config::UpstreamTlsMode::require);
  ASSERT_FALSE(out.conn);
  EXPECT_NE(out.error.message.find("TLS handshake with 127.0.0.1:"), std::string::npos)
      << out.error.message;
}

TEST(UpstreamFakeServer, StartupCollectsParametersKeyAndStatusAndReadsNoFurther) {
  wire::Bytes reply;
  wire::auth_ok(reply);
  wire::parameter_status(reply, "server_version", "15.99");
  wire::notice_response(reply, {.severity = "NOTICE", .sqlstate = "00000", .message = "hi"});
  wire::parameter_status(reply, "TimeZone", "UTC");
  wire::backend_key_data(reply, 4242, 99);
  wire::ready_for_query(reply, 'T');
  wire::command_complete(reply, "AFTER");  // belongs to whoever reads the stream next
  auto out = connect_to(after_startup(reply), config::UpstreamTlsMode::disable, 5);
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_EQ(out.conn->backend_key, (wire::CancelKey{4242, 99}));
  EXPECT_EQ(out.conn->txn_status, 'T');
  ASSERT_EQ(out.conn->parameters.size(), 2u);
  EXPECT_EQ(out.conn->parameters[0],
            (std::pair<std::string, std::string>{"server_version", "15.99"}));
  ASSERT_EQ(out.after_ready.size(), 5u);
  EXPECT_EQ(out.after_ready[0], 'C');
}

TEST(UpstreamFakeServer, GssapiIsRefusedClearly) {
  wire::Bytes reply;
  wire::MessageWriter(reply).begin('R').i32(7).end();
  auto out = connect_to(after_startup(reply));
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::unsupported_auth_method));
  EXPECT_NE(out.error.message.find("GSSAPI"), std::string::npos) << out.error.message;
}

TEST(UpstreamFakeServer, ReadyForQueryBeforeAuthenticationIsAViolation) {
  wire::Bytes reply;
  wire::ready_for_query(reply, 'I');
  auto out = connect_to(after_startup(reply));
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::protocol_violation)) << out.error.message;
}

TEST(UpstreamFakeServer, ErrorResponseIsRelayable) {
  wire::Bytes reply;
  wire::error_response(
      reply,
      {.severity = "FATAL", .sqlstate = "53300", .message = "sorry, too many clients already"});
  auto out = connect_to(after_startup(reply));
  ASSERT_FALSE(out.conn);
  EXPECT_TRUE(out.error.from_server());
  EXPECT_EQ(out.error.sqlstate, "53300");
  EXPECT_EQ(out.error.server_message, "sorry, too many clients already");
}

TEST(UpstreamFakeServer, ServerClosingDuringStartup) {
  auto out = connect_to([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_packet(s);
    s.close();
  });
  ASSERT_FALSE(out.conn);
  EXPECT_NE(out.error.message.find("server closed the connection"), std::string::npos)
      << out.error.message;
}

TEST(UpstreamFakeServer, HugeLengthIsRejectedWithoutReadingIt) {
  // 'R' with a length of 1 GiB: over the authentication message limit.
  auto out = connect_to(after_startup({'R', 0x40, 0, 0, 0}));
  ASSERT_FALSE(out.conn);
  EXPECT_FALSE(out.error.message.empty());
}

TEST(UpstreamFakeServer, ScramSkippingTheFinalMessageIsRefused) {
  auto out = connect_to([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_packet(s);
    wire::Bytes msg;
    const std::array<std::string_view, 1> mechanisms{"SCRAM-SHA-256"};
    wire::auth_sasl(msg, mechanisms);
    co_await send(s, msg);
    std::array<std::uint8_t, 5> header{};
    co_await asio::async_read(s, asio::buffer(header), use_tuple);  // SASLInitialResponse...
    msg.clear();
    wire::auth_ok(msg);  // ...answered with "you are in", without proving anything
    co_await send(s, msg);
  });
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::protocol_violation)) << out.error.message;
}

}  // namespace
}  // namespace pgshift::pool::test
