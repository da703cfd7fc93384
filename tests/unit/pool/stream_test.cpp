// Stream over loopback: plain and TLS, read/write, wait_readable with bytes held inside the
// TLS layer, idempotent close.
#include "pool/stream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "pool/upstream.hpp"
#include "pool/upstream_detail.hpp"
#include "test_util.hpp"

namespace pgshift::pool::test {
namespace {

using namespace std::chrono_literals;
using detail::use_tuple;

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A connected pair of plain Streams on loopback.
asio::awaitable<std::pair<Stream, Stream>> connected_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), use_tuple);
  auto [ec, server] = co_await acceptor.async_accept(use_tuple);
  EXPECT_FALSE(ec);
  co_return std::pair{Stream(std::move(client)), Stream(std::move(server))};
}

// Moves `stream` to a fresh io_context on another thread, as ServerPool's hand-over does
// (detach here, adopt there), and there writes "ping" and reads four bytes, which it
// returns; `peer`, on this thread, answers "pong".
asio::awaitable<std::string> ping_from_another_thread(Stream& stream, Stream& peer) {
  error_code ec;
  DetachedStream detached = stream.detach(ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(detached);
  EXPECT_FALSE(stream.is_open());
  std::promise<std::string> result;
  auto future = result.get_future();
  std::thread other([&] {
    asio::io_context io;
    error_code adopt_ec;
    Stream moved = Stream::adopt(io.get_executor(), std::move(detached), adopt_ec);
    EXPECT_FALSE(adopt_ec) << adopt_ec.message();
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::string> {
          EXPECT_FALSE(co_await moved.write_all(bytes("ping")));
          std::array<std::uint8_t, 4> four{};
          EXPECT_FALSE(co_await moved.read_exact(four));
          co_return text(four);
        },
        asio::use_future);
    io.run();
    moved.close();
    result.set_value(done.get());
  });
  std::array<std::uint8_t, 4> got{};
  EXPECT_FALSE(co_await peer.read_exact(got));
  EXPECT_EQ(text(got), "ping");
  EXPECT_FALSE(co_await peer.write_all(bytes("pong")));
  while (future.wait_for(0s) != std::future_status::ready) {
    asio::steady_timer tick(co_await asio::this_coro::executor, 1ms);
    co_await tick.async_wait(use_tuple);
  }
  other.join();
  co_return future.get();
}

// Succeeds if wait_readable() returns within `timeout`.
asio::awaitable<bool> readable_within(Stream& s, std::chrono::milliseconds timeout) {
  error_code why;
  auto r = co_await detail::with_timeout(s.wait_readable(), timeout, why);
  co_return r.has_value() && !*r;
}

TEST(Stream, PlainReadWriteWaitAndIdempotentClose) {
  run_io([]() -> asio::awaitable<void> {
    auto [a, b] = co_await connected_pair();
    EXPECT_FALSE(co_await readable_within(b, 50ms));
    EXPECT_FALSE(co_await a.write_all(bytes("hello world")));
    EXPECT_TRUE(co_await readable_within(b, 5s));
    std::array<std::uint8_t, 5> five{};
    EXPECT_FALSE(co_await b.read_exact(five));
    EXPECT_EQ(text(five), "hello");
    std::array<std::uint8_t, 64> buf{};
    auto [ec, n] = co_await b.read_some(buf);
    EXPECT_FALSE(ec);
    EXPECT_EQ(text(std::span(buf).first(n)), " world");

    a.close();
    a.close();
    EXPECT_FALSE(a.is_open());
    std::tie(ec, n) = co_await b.read_some(buf);
    EXPECT_EQ(ec, asio::error::eof);
    auto [ec2, n2] = co_await a.read_some(buf);  // on a closed stream: an error, no throw
    EXPECT_TRUE(ec2);
    b.close();
  });
}

TEST(Stream, DetachedSocketWorksOnAnotherIoContext) {
  run_io([]() -> asio::awaitable<void> {
    auto [a, b] = co_await connected_pair();
    // A pending wait (like the pool's idle watch) ends with operation_aborted at the detach.
    bool aborted = false;
    a.socket().async_wait(tcp::socket::wait_read, [&](const error_code& ec) {
      aborted = ec == asio::error::operation_aborted;
    });
    EXPECT_EQ(co_await ping_from_another_thread(a, b), "pong");
    EXPECT_TRUE(aborted);
    // The other thread closed it: the peer sees the end.
    std::array<std::uint8_t, 8> buf{};
    auto [ec, n] = co_await b.read_some(buf);
    EXPECT_EQ(ec, asio::error::eof);
    b.close();
  });
}

TEST(Stream, DetachedStreamNotAdoptedClosesTheSocket) {
  run_io([]() -> asio::awaitable<void> {
    auto [a, b] = co_await connected_pair();
    error_code ec;
    {
      DetachedStream detached = a.detach(ec);
      EXPECT_TRUE(detached);
    }
    std::array<std::uint8_t, 8> buf{};
    auto [read_ec, n] = co_await b.read_some(buf);
    EXPECT_EQ(read_ec, asio::error::eof);
    EXPECT_FALSE(a.detach(ec));  // closed: nothing to detach
    EXPECT_TRUE(ec);
    b.close();
  });
}

// read_some_drained: the reader's `more` flag, and why the relays must set it inside a
// message (docs/threading.md, "System calls per message").
TEST(Stream, DrainedReadsTellWhenTheBufferWasFilledAndWhenToLookAgain) {
  run_io([]() -> asio::awaitable<void> {
    auto [a, b] = co_await connected_pair();
    auto read = [&b](std::span<std::uint8_t> buf, bool& more,
                     std::chrono::milliseconds timeout) -> asio::awaitable<std::string> {
      error_code why;
      auto r = co_await detail::with_timeout(b.read_some_drained(buf, more), timeout, why);
      if (!r) co_return "<timed out>";
      if (r->first) co_return "<" + r->first.message() + ">";
      co_return text(buf.first(r->second));
    };
    std::array<std::uint8_t, 4> four{};
    std::array<std::uint8_t, 64> big{};
    bool more = false;

    // A read that fills the buffer says so; the next one, told so, reads the rest at once.
    EXPECT_FALSE(co_await a.write_all(bytes("0123456789")));
    EXPECT_EQ(co_await read(four, more, 5s), "0123");
    EXPECT_TRUE(more);
    EXPECT_EQ(co_await read(four, more, 5s), "4567");
    EXPECT_TRUE(more);
    EXPECT_EQ(co_await read(big, more, 5s), "89");
    EXPECT_FALSE(more);
    // After a short read the next one waits for the peer's next bytes.
    EXPECT_EQ(co_await read(big, more, 50ms), "<timed out>");
    EXPECT_FALSE(co_await a.write_all(bytes("later")));
    more = false;
    EXPECT_EQ(co_await read(big, more, 5s), "later");

    // Bytes and a FIN that reach the event loop as one event: after the short read no event
    // is left for the FIN, so a reader that waits is never woken; told to look again (as
    // the relays are inside a message), it sees the end at once.
    EXPECT_FALSE(co_await a.write_all(bytes("last")));
    a.socket().shutdown(tcp::socket::shutdown_send);
    asio::steady_timer settle(co_await asio::this_coro::executor, 50ms);
    co_await settle.async_wait(use_tuple);  // the loop takes the event with no read pending
    more = false;
    EXPECT_EQ(co_await read(big, more, 5s), "last");
    EXPECT_FALSE(more);
    EXPECT_EQ(co_await read(big, more, 100ms), "<timed out>");
    more = true;
    EXPECT_EQ(co_await read(big, more, 5s), "<End of file>");
    a.close();
    b.close();
  });
}

// Two parts written as one (sendmsg), including when the second is far larger than the
// socket buffers and most of it goes out through Asio while the peer reads.
asio::awaitable<void> expect_two_part_writes(Stream& writer, Stream& reader) {
  std::string large(4 << 20, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + i % 26);
  const std::string expected = "head:" + std::string("tail") + "HEAD" + large;
  std::string got;
  bool done = false;
  asio::co_spawn(
      co_await asio::this_coro::executor,
      [&]() -> asio::awaitable<void> {
        std::array<std::uint8_t, 65536> buf{};
        while (got.size() < expected.size()) {
          auto [ec, n] = co_await reader.read_some(buf);
          if (ec) break;
          got += text(std::span(buf).first(n));
        }
        done = true;
      },
      asio::detached);
  EXPECT_FALSE(co_await writer.write_all(bytes("head:"), bytes("tail")));
  EXPECT_FALSE(co_await writer.write_all(bytes("HEAD"), bytes(large)));
  while (!done) {
    asio::steady_timer tick(co_await asio::this_coro::executor, 1ms);
    co_await tick.async_wait(use_tuple);
  }
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "the bytes arrived out of order or damaged";
}

TEST(Stream, TwoPartWritesArriveWholeAndInOrder) {
  run_io([]() -> asio::awaitable<void> {
    auto [a, b] = co_await connected_pair();
    co_await expect_two_part_writes(a, b);
    a.close();
    b.close();
  });
}

class TlsStream : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = "/tmp/pgshift-stream-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const std::string cmd = "cd " + dir_ +
                            " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
                            " -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost"
                            " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static asio::ssl::context server_context() {
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.use_certificate_chain_file(dir_ + "/cert.pem");
    ctx.use_private_key_file(dir_ + "/key.pem", asio::ssl::context::pem);
    SSL_CTX_set_num_tickets(ctx.native_handle(), 0);  // only our records after the handshake
    return ctx;
  }

  // Handshakes both ends, then runs `body(client, server)`.
  template <class F>
  static void with_tls_pair(F body) {
    run_io([&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      auto server_ctx = server_context();
      auto client_ctx = make_upstream_tls_context({config::UpstreamTlsMode::require, "", ""});
      auto [client, server] = co_await connected_pair();
      error_code server_ec = asio::error::would_block;
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            server_ec = co_await server.handshake(server_ctx, asio::ssl::stream_base::server);
          },
          asio::detached);
      EXPECT_FALSE(
          co_await client.handshake(*client_ctx, asio::ssl::stream_base::client, "localhost"));
      // The server side finishes its handshake once it has read our Finished.
      while (server_ec == asio::error::would_block) {
        asio::steady_timer tick(ex, 1ms);
        co_await tick.async_wait(use_tuple);
      }
      EXPECT_FALSE(server_ec);
      EXPECT_TRUE(client.is_tls());
      co_await body(client, server);
      client.close();
      server.close();
    });
  }

  static inline std::string dir_;
};

TEST_F(TlsStream, TwoPartWritesArriveWholeAndInOrder) {
  with_tls_pair([](Stream& client, Stream& server) -> asio::awaitable<void> {
    co_await expect_two_part_writes(client, server);
  });
}

TEST_F(TlsStream, WaitReadableSeesDecryptedBytesHeldByOpenSsl) {
  with_tls_pair([](Stream& client, Stream& server) -> asio::awaitable<void> {
    EXPECT_FALSE(co_await readable_within(client, 50ms));
    EXPECT_FALSE(co_await server.write_all(bytes("abcdef")));  // one record
    std::array<std::uint8_t, 2> two{};
    EXPECT_FALSE(co_await client.read_exact(two));
    // The other 4 bytes are decrypted inside OpenSSL; the socket has nothing.
    EXPECT_TRUE(co_await readable_within(client, 2s));
    std::array<std::uint8_t, 4> four{};
    EXPECT_FALSE(co_await client.read_exact(four));
    EXPECT_EQ(text(four), "cdef");
    EXPECT_FALSE(co_await readable_within(client, 50ms));
  });
}

TEST_F(TlsStream, WaitReadableSeesRecordsReadAheadButNotDecrypted) {
  with_tls_pair([](Stream& client, Stream& server) -> asio::awaitable<void> {
    EXPECT_FALSE(co_await server.write_all(bytes("abc")));  // two records...
    EXPECT_FALSE(co_await server.write_all(bytes("def")));
    // ...both in the client's socket buffer before it reads (2 x (3 + 22) bytes in TLS 1.3),
    // so one socket read takes both and OpenSSL decrypts only the first.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (client.socket().available() < 50 && std::chrono::steady_clock::now() < deadline) {
      co_await client.socket().async_wait(tcp::socket::wait_read, use_tuple);
      asio::steady_timer tick(co_await asio::this_coro::executor, 1ms);
      co_await tick.async_wait(use_tuple);
    }
    EXPECT_GE(client.socket().available(), 50u);
    std::array<std::uint8_t, 3> three{};
    EXPECT_FALSE(co_await client.read_exact(three));
    EXPECT_EQ(text(three), "abc");
    EXPECT_EQ(client.socket().available(), 0u);
    EXPECT_TRUE(co_await readable_within(client, 2s));
    EXPECT_FALSE(co_await client.read_exact(three));
    EXPECT_EQ(text(three), "def");
  });
}

// The SSL object moves with the socket: keys and record sequence numbers carry on, so the
// peer reads the next record without noticing.
TEST_F(TlsStream, DetachedTlsStreamWorksOnAnotherIoContext) {
  with_tls_pair([](Stream& client, Stream& server) -> asio::awaitable<void> {
    EXPECT_FALSE(co_await client.write_all(bytes("before")));
    std::array<std::uint8_t, 6> six{};
    EXPECT_FALSE(co_await server.read_exact(six));
    EXPECT_EQ(co_await ping_from_another_thread(client, server), "pong");
  });
}

TEST_F(TlsStream, DetachRefusesWhileOpenSslHoldsInput) {
  with_tls_pair([](Stream& client, Stream& server) -> asio::awaitable<void> {
    EXPECT_FALSE(co_await server.write_all(bytes("abcdef")));
    std::array<std::uint8_t, 2> two{};
    EXPECT_FALSE(co_await client.read_exact(two));
    error_code ec;
    EXPECT_FALSE(client.detach(ec));  // "cdef" is inside OpenSSL: it would be lost
    EXPECT_TRUE(ec);
    std::array<std::uint8_t, 4> four{};
    EXPECT_FALSE(co_await client.read_exact(four));  // the stream is untouched
    EXPECT_EQ(text(four), "cdef");
  });
}

}  // namespace
}  // namespace pgshift::pool::test
