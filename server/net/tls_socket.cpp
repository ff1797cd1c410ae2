#include "server/net/tls_socket.hpp"

#include <cerrno>
#include <new>

#include <openssl/err.h>

namespace herald::net {

namespace {

// OpenSSL's per-thread error queue must be empty before each call, or SSL_get_error()
// may report an earlier, unrelated failure.
void clear_errors() { ERR_clear_error(); }

}  // namespace

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, SSL_CTX* context)
    : socket_(std::move(socket)), ssl_(SSL_new(context)) {
  if (!ssl_) throw std::bad_alloc();
  // Reads and writes happen here, synchronously, once Asio says the socket is ready.
  socket_.non_blocking(true);
  // No record buffers while idle; write() may be retried with its buffer unchanged.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read what the socket has, not a record header and then its body: one read(2) per
  // batch of records instead of two per record.
  SSL_set_read_ahead(ssl_, 1);
}

TlsSocket::~TlsSocket() { SSL_free(ssl_); }

awaitable<void> TlsSocket::wait_or_throw(int ret, const char* what) {
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ) {
    // OpenSSL allocated a 17 KiB record buffer for this read and keeps it while it waits
    // (RELEASE_BUFFERS frees it only after a record is consumed): give it back, so a
    // connection waiting for its peer holds none. A no-op while a record is half read
    // or a write is half done.
    SSL_free_buffers(ssl_);
    co_await socket_.async_wait(asio::socket_base::wait_read, use_awaitable);
    co_return;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    co_await socket_.async_wait(asio::socket_base::wait_write, use_awaitable);
    co_return;
  }
  if (err == SSL_ERROR_ZERO_RETURN) throw boost::system::system_error(asio::error::eof, what);
  const unsigned long code = ERR_get_error();
  if (err == SSL_ERROR_SYSCALL && code == 0) {
    // The TCP connection ended (or failed) without a TLS close_notify.
    const int e = errno;
    if (e == 0) throw boost::system::system_error(asio::error::eof, what);
    throw boost::system::system_error(boost::system::error_code(e, boost::system::system_category()), what);
  }
  if (code == 0) throw boost::system::system_error(asio::ssl::error::stream_truncated, what);
  throw boost::system::system_error(
      boost::system::error_code(static_cast<int>(code), asio::error::get_ssl_category()), what);
}

awaitable<void> TlsSocket::handshake() {
  if (SSL_set_fd(ssl_, socket_.native_handle()) != 1)
    throw boost::system::system_error(asio::error::bad_descriptor, "SSL_set_fd");
  for (;;) {
    clear_errors();
    errno = 0;
    const int r = SSL_accept(ssl_);
    if (r == 1) break;
    co_await wait_or_throw(r, "TLS handshake");
  }
  tls_ = true;
}

awaitable<std::size_t> TlsSocket::read_some(asio::mutable_buffer buffer) {
  // Wait for bytes, then read them here, synchronously: the caller's buffer may be shared
  // by every connection of the thread (an async_read_some would fill it inside the
  // reactor, before this coroutine resumes, while other connections' handlers run). And
  // SSL_read allocates its 17 KiB record buffer on entry, so a session parked inside it
  // would hold one while idle.
  if (!tls_) {
    for (;;) {
      co_await socket_.async_wait(asio::socket_base::wait_read, use_awaitable);
      boost::system::error_code ec;
      const std::size_t n = socket_.read_some(buffer, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
      if (ec) throw boost::system::system_error(ec, "read");
      co_return n;
    }
  }
  if (!SSL_has_pending(ssl_)) co_await socket_.async_wait(asio::socket_base::wait_read, use_awaitable);
  for (;;) {
    std::size_t n = 0;
    clear_errors();
    errno = 0;
    const int r = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
    if (r == 1) {
      // RELEASE_BUFFERS does not always give the record buffer back after the last
      // record (heaptrack: many idle sessions kept one); free what is not in use (a
      // no-op while a record is half read or a write half done).
      SSL_free_buffers(ssl_);
      co_return n;
    }
    co_await wait_or_throw(r, "TLS read");
  }
}

awaitable<void> TlsSocket::write(std::string_view data) {
  if (!tls_) {
    co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), use_awaitable);
    co_return;
  }
  while (!data.empty()) {
    std::size_t n = 0;
    clear_errors();
    errno = 0;
    const int r = SSL_write_ex(ssl_, data.data(), data.size(), &n);
    if (r == 1) {
      data.remove_prefix(n);
      continue;
    }
    co_await wait_or_throw(r, "TLS write");
  }
}

void TlsSocket::close() {
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace herald::net
