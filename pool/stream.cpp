#include "pool/stream.hpp"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <utility>

// A receive buffer that makes Asio's reactor take a short read as "socket drained"
// (Stream::read_some_drained). Asio's own receive operation says so only at EOF, so after
// every read it keeps trying the next read before waiting for an epoll event, and with
// request-response traffic that try returns EAGAIN: one wasted system call per message.
namespace pgshift::pool::drained {
struct Buffer : boost::asio::mutable_buffer {
  explicit Buffer(boost::asio::mutable_buffer b) : boost::asio::mutable_buffer(b) {}
};
}  // namespace pgshift::pool::drained

namespace boost::asio::detail {
// The receive operation's reading part for drained::Buffer: the same recv as Asio's
// (reactive_socket_recv_op.hpp, Boost 1.81), and "done_and_exhausted" for a short read
// (the kernel had no more bytes then: anything that arrives later raises a new edge-
// triggered event), so the reactor clears its "try first" flag for the socket.
template <>
class reactive_socket_recv_op_base<pgshift::pool::drained::Buffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state,
                               const pgshift::pool::drained::Buffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const std::size_t size = o->buffer_.size();
    if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), size, o->flags_,
                                        (o->state_ & socket_ops::stream_oriented) != 0, o->ec_,
                                        o->bytes_transferred_)) {
      return not_done;
    }
    return o->bytes_transferred_ < size ? done_and_exhausted : done;
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  mutable_buffer buffer_;
  socket_base::message_flags flags_;
};
}  // namespace boost::asio::detail

namespace pgshift::pool {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Asks OpenSSL to check the peer certificate against `host` during the handshake, so a
// mismatch is reported as a verify result (X509_V_ERR_HOSTNAME_MISMATCH), as libpq does.
bool set_expected_host(SSL* ssl, const std::string& host) {
  if (is_ip_literal(host)) {
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(ssl, host.c_str()) == 1;
}

bool ssl_has_buffered_input(SSL* ssl) {
  return SSL_pending(ssl) > 0 || SSL_has_pending(ssl) == 1 ||
         BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
}

}  // namespace

Stream::Stream(tcp::socket socket) : socket_(std::move(socket)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

asio::awaitable<error_code> Stream::handshake(asio::ssl::context& ctx,
                                              asio::ssl::stream_base::handshake_type role,
                                              const std::string& sni_host,
                                              const std::string& verify_host) {
  if (tls_) co_return asio::error::already_connected;
  // The TCP socket moves into the TLS stream; socket_ keeps only its executor.
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), ctx);
  SSL* ssl = tls_->native_handle();
  if (role == asio::ssl::stream_base::client) {
    if (!sni_host.empty() && !is_ip_literal(sni_host) &&
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(sni_host.c_str())) != 1) {
      co_return asio::error::invalid_argument;
    }
    if (!verify_host.empty() && !set_expected_host(ssl, verify_host)) {
      co_return asio::error::invalid_argument;
    }
  }
  auto [ec] = co_await tls_->async_handshake(role, use_tuple);
  co_return ec;
}

asio::awaitable<std::pair<error_code, std::size_t>> Stream::read_some(std::span<std::uint8_t> buf) {
  auto buffer = asio::buffer(buf.data(), buf.size());
  if (tls_) {
    auto [ec, n] = co_await tls_->async_read_some(buffer, use_tuple);
    co_return std::pair{ec, n};
  }
  auto [ec, n] = co_await socket_.async_read_some(buffer, use_tuple);
  co_return std::pair{ec, n};
}

asio::awaitable<std::pair<error_code, std::size_t>> Stream::read_some_drained(
    std::span<std::uint8_t> buf, bool& more) {
  if (tls_ || buf.empty()) {
    auto [ec, n] = co_await read_some(buf);
    more = n == buf.size();
    co_return std::pair{ec, n};
  }
  if (more) {
    // The reactor may believe the socket drained: read by hand, without waiting.
    const ssize_t n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      more = static_cast<std::size_t>(n) == buf.size();
      co_return std::pair{error_code{}, static_cast<std::size_t>(n)};
    }
    more = false;
    if (n == 0) co_return std::pair{error_code(asio::error::eof), std::size_t{0}};
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      co_return std::pair{error_code(errno, asio::error::get_system_category()), std::size_t{0}};
    }
  }
  auto [ec, n] = co_await socket_.async_read_some(
      drained::Buffer(asio::buffer(buf.data(), buf.size())), use_tuple);
  more = n == buf.size();
  co_return std::pair{ec, n};
}

asio::awaitable<error_code> Stream::read_exact(std::span<std::uint8_t> buf) {
  auto buffer = asio::buffer(buf.data(), buf.size());
  if (tls_) {
    auto [ec, n] = co_await asio::async_read(*tls_, buffer, use_tuple);
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_read(socket_, buffer, use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::write_all(std::span<const std::uint8_t> data) {
  if (!tls_ && !data.empty()) {
    // Most writes fit the socket's send buffer: one send() here, without Asio's write
    // operation, whose completion would be posted to the event loop (one more round of
    // epoll_wait before this coroutine goes on). The rest, if any, goes through Asio.
    const ssize_t n =
        ::send(socket_.native_handle(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data = data.subspan(static_cast<std::size_t>(n));
      if (data.empty()) co_return error_code{};
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      co_return error_code(errno, asio::error::get_system_category());
    }
  }
  auto buffer = asio::buffer(data.data(), data.size());
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, buffer, use_tuple);
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_write(socket_, buffer, use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::write_all(std::span<const std::uint8_t> first,
                                              std::span<const std::uint8_t> second) {
  if (first.empty() || second.empty()) co_return co_await write_all(first.empty() ? second : first);
  if (!tls_) {
    // Both in one sendmsg() (see write_all above).
    iovec iov[2] = {{const_cast<std::uint8_t*>(first.data()), first.size()},
                    {const_cast<std::uint8_t*>(second.data()), second.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      co_return error_code(errno, asio::error::get_system_category());
    }
    auto sent = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    if (sent >= first.size()) co_return co_await write_all(second.subspan(sent - first.size()));
    first = first.subspan(sent);
  }
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(first.data(), first.size()),
                                                     asio::buffer(second.data(), second.size())};
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, buffers, use_tuple);
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_write(socket_, buffers, use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::wait_readable() {
  // Bytes already taken from the socket never make it readable again: decrypted ones
  // (SSL_pending), and records Asio's engine read ahead into the BIO pair it feeds OpenSSL
  // from (several records can arrive in one socket read). Asio only keeps bytes outside
  // that BIO when the BIO is full, so checking the BIO covers them too.
  if (tls_ && ssl_has_buffered_input(tls_->native_handle())) co_return error_code{};
  auto [ec] = co_await socket().async_wait(tcp::socket::wait_read, use_tuple);
  co_return ec;
}

bool Stream::has_buffered_input() const noexcept {
  return tls_ && ssl_has_buffered_input(tls_->native_handle());
}

tcp::socket& Stream::socket() noexcept {
  return tls_ ? tls_->next_layer() : socket_;
}

asio::any_io_executor Stream::get_executor() {
  return socket().get_executor();
}

void Stream::close() noexcept {
  tcp::socket& s = socket();
  if (!s.is_open()) return;
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_both, ignored);
  s.close(ignored);
}

DetachedStream::DetachedStream(DetachedStream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      protocol_(other.protocol_),
      ssl_(std::exchange(other.ssl_, nullptr)) {}

DetachedStream& DetachedStream::operator=(DetachedStream&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    protocol_ = other.protocol_;
    ssl_ = std::exchange(other.ssl_, nullptr);
  }
  return *this;
}

DetachedStream::~DetachedStream() {
  reset();
}

void DetachedStream::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
}

DetachedStream Stream::detach(error_code& ec) {
  DetachedStream out;
  tcp::socket& s = socket();
  if (!s.is_open()) {
    ec = asio::error::not_connected;
    return out;
  }
  if (has_buffered_input()) {
    ec = asio::error::in_progress;  // out of step: bytes the next owner would never see
    return out;
  }
  const auto local = s.local_endpoint(ec);
  if (ec) return out;
  SSL* ssl = nullptr;
  if (tls_) {
    ssl = tls_->native_handle();
    SSL_up_ref(ssl);  // survives the asio::ssl::stream, which frees its own reference
  }
  const int fd = s.release(ec);  // aborts pending operations, leaves the reactor
  if (ec) {
    if (ssl) SSL_free(ssl);
    return out;
  }
  out.fd_ = fd;
  out.protocol_ = local.protocol();
  out.ssl_ = ssl;
  // Asio's TLS engine goes (its BIO pair: nothing buffered, checked above); the SSL object's
  // session state stays with `out`.
  tls_.reset();
  return out;
}

Stream Stream::adopt(const asio::any_io_executor& executor, DetachedStream detached,
                     error_code& ec) {
  tcp::socket socket(executor);
  socket.assign(detached.protocol_, detached.fd_, ec);
  if (ec) return Stream(tcp::socket(executor));  // `detached` closes the descriptor
  detached.fd_ = -1;
  if (!detached.ssl_) return Stream(std::move(socket));
  Stream out{tcp::socket(executor)};
  // A new engine around the same SSL object: it gets a fresh BIO pair, the keys and
  // sequence numbers stay.
  out.tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(
      std::move(socket), std::exchange(detached.ssl_, nullptr));
  return out;
}

bool Stream::is_open() const noexcept {
  return tls_ ? tls_->next_layer().is_open() : socket_.is_open();
}

}  // namespace pgshift::pool
