#pragma once
// A byte stream that is plain TCP or TLS over TCP, with one interface for both, used for
// client and server connections alike. Not thread-safe: one coroutine chain on one
// io_context uses it; at most one reader and one writer at a time.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace pgshift::pool {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// A connection taken off one io_context by Stream::detach(), to be adopted on another
// (Stream::adopt): the socket's descriptor and, for TLS, OpenSSL's SSL object, which is not
// tied to a thread (one reference held here). Move-only. Destroying one that was not adopted
// closes the socket and frees the reference.
class DetachedStream {
 public:
  DetachedStream() = default;
  DetachedStream(DetachedStream&& other) noexcept;
  DetachedStream& operator=(DetachedStream&& other) noexcept;
  ~DetachedStream();
  explicit operator bool() const noexcept { return fd_ >= 0; }
  bool is_tls() const noexcept { return ssl_ != nullptr; }

 private:
  friend class Stream;
  void reset() noexcept;
  int fd_ = -1;
  tcp protocol_ = tcp::v4();
  SSL* ssl_ = nullptr;
};

class Stream {
 public:
  explicit Stream(tcp::socket socket);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  ~Stream();

  // Upgrades to TLS. role client: `sni_host` is sent as SNI (may be empty; IP literals are
  // not sent, as RFC 6066 requires). The context decides chain verification; a non-empty
  // `verify_host` (client role, verify-full) also requires the certificate to match that host
  // name or IP address, and a mismatch fails with X509_V_ERR_HOSTNAME_MISMATCH /
  // X509_V_ERR_IP_ADDRESS_MISMATCH as the verify result. On failure the stream is unusable
  // and should be closed; tls_stream() stays available to read the verify result.
  asio::awaitable<error_code> handshake(asio::ssl::context& ctx,
                                        asio::ssl::stream_base::handshake_type role,
                                        const std::string& sni_host = {},
                                        const std::string& verify_host = {});

  // Reads at least one byte (or fails). Never throws.
  asio::awaitable<std::pair<error_code, std::size_t>> read_some(std::span<std::uint8_t> buf);
  // read_some for the relays' hot reads, with one system call per read instead of two on
  // plain TCP. Asio's epoll reactor is edge-triggered; before waiting for an event it tries
  // the read once, and that try returns EAGAIN whenever the peer has not answered yet.
  // Here a read that comes back short tells the reactor the socket is drained, so the next
  // read waits for the next event without trying first. (TLS streams read as read_some.)
  // `more` (in/out) is the caller's per-stream state between reads: true in means "read at
  // once, do not rely on an event" (one non-blocking recv first); out, it says whether this
  // read filled `buf` (the socket may hold more, and no event will come for it). A caller
  // also sets it when it holds part of a message: a peer that stopped mid-message and
  // closed (its last bytes and its FIN in one event) is then seen at once. At a message
  // boundary a FIN that came in the same event as the last bytes raises no new event: the
  // caller must look again by other means (the hot sessions' sweep, docs/threading.md).
  asio::awaitable<std::pair<error_code, std::size_t>> read_some_drained(std::span<std::uint8_t> buf,
                                                                        bool& more);
  // Reads exactly buf.size() bytes.
  asio::awaitable<error_code> read_exact(std::span<std::uint8_t> buf);
  // Writes all bytes. On plain TCP, one send() without a trip through the event loop when
  // the socket's send buffer takes them all (the usual case).
  asio::awaitable<error_code> write_all(std::span<const std::uint8_t> data);
  // Writes `first` then `second`, in one system call when they fit (sendmsg with two parts).
  asio::awaitable<error_code> write_all(std::span<const std::uint8_t> first,
                                        std::span<const std::uint8_t> second);
  // Waits until the stream has bytes to read without holding a buffer (used by idle
  // sessions so they hold no I/O memory). For TLS, returns at once if bytes were already
  // taken from the socket (decrypted in OpenSSL, or records read ahead but not decrypted).
  asio::awaitable<error_code> wait_readable();
  // True if bytes were already taken from the socket (TLS: decrypted or read ahead), so a
  // wait on the socket alone could miss them.
  bool has_buffered_input() const noexcept;

  // Moving a connection to another io_context (ServerPool's hand-over between I/O threads,
  // docs/threading.md). detach(), on this stream's thread, with no operation of the caller's
  // pending: pending operations (an idle watch) complete with operation_aborted, the socket
  // leaves this io_context's reactor, and the stream is left closed. Fails with the stream
  // untouched (empty result, `ec` set) when it is not open, or when TLS holds input already
  // taken from the socket (only an idle connection in step with its server can move).
  DetachedStream detach(error_code& ec);
  // The connection as a stream of `executor`'s io_context; call on that executor's thread. On
  // failure (`ec` set) the result is closed and the connection gone.
  static Stream adopt(const asio::any_io_executor& executor, DetachedStream detached,
                      error_code& ec);

  bool is_tls() const noexcept { return tls_ != nullptr; }
  // The TLS stream after handshake() (nullptr before): SSL details, verify result...
  asio::ssl::stream<tcp::socket>* tls_stream() noexcept { return tls_.get(); }
  tcp::socket& socket() noexcept;  // the underlying TCP socket
  asio::any_io_executor get_executor();
  // Idempotent; cancels pending operations. TLS is closed without a close_notify wait.
  void close() noexcept;
  bool is_open() const noexcept;

 private:
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace pgshift::pool
