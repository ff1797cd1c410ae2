// An accepted TCP connection that may switch to TLS (server side), with OpenSSL reading
// and writing the non-blocking descriptor itself.
//
// Why not asio::ssl::stream: it keeps two 17 KiB buffers for the connection's whole life
// and OpenSSL adds a BIO pair with two more, so an idle TLS session cost about 105 KB
// (heaptrack, docs/performance.md). Here OpenSSL uses a socket BIO and
// SSL_MODE_RELEASE_BUFFERS, so an idle connection holds no record buffers at all, and
// bytes are copied once fewer on each side. Readiness comes from Asio's reactor
// (async_wait), so everything stays on the worker's io_context.
//
// Like Asio's stream: at most one read_some() and one write() in progress at a time (they
// may overlap each other, on the one thread that runs the io_context); handshake() must
// not overlap either. Failures throw boost::system::system_error: asio::error::eof when
// the peer closed (TLS close_notify or TCP FIN), an SSL-category code otherwise.
#pragma once

#include <cstddef>
#include <string_view>

#include <openssl/ssl.h>

#include "server/net/asio.hpp"

namespace herald::net {

class TlsSocket {
 public:
  // The SSL object is created at once (SNI may switch its context during the handshake;
  // callers may set verification options on native_handle() before it).
  TlsSocket(asio::ip::tcp::socket socket, SSL_CTX* context);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  asio::ip::tcp::socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_; }
  bool tls() const { return tls_; }

  // Server-side TLS handshake; afterwards reads and writes go through TLS.
  awaitable<void> handshake();
  // Some bytes (at least one) into `buffer`, which is written only after this coroutine
  // has resumed (so it may be a buffer shared by the thread's connections).
  awaitable<std::size_t> read_some(asio::mutable_buffer buffer);
  // All of `data`. TLS: one SSL_write, so small stanzas written together share records.
  awaitable<void> write(std::string_view data);
  // Closes the descriptor now (no close_notify; the stream protocol has already ended).
  void close();

 private:
  // After SSL_get_error() said WANT_READ or WANT_WRITE: wait until the socket is ready.
  // Anything else throws.
  awaitable<void> wait_or_throw(int ret, const char* what);

  asio::ip::tcp::socket socket_;
  SSL* ssl_;
  bool tls_ = false;
};

}  // namespace herald::net
