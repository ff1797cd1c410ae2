// bench-floor: the performance floor for Herald's benchmarks (docs/performance.md).
//
// A TLS relay with no XMPP in it. Each connection is TLS from the first byte and starts
// with a hello, <floor id='I' peer='J'/>; from then on every byte it sends goes, unchanged
// and in order, to the connection registered under J. What Herald does on top of this
// (parsing, routing, stanza handling) is what the benchmark measures against it.
//
// TLS as Herald does it: the same SSL_CTX settings (server/net/tls.cpp) and the same
// socket layer (net::TlsSocket: OpenSSL on the descriptor, no asio::ssl::stream), one
// read buffer per thread, one SSL_write per batch of queued bytes, the same 4 MiB send
// queue limit.
//
// Threads: one io_context per thread; one acceptor hands connections out round-robin, as
// Herald does. A connection lives on one thread; bytes for a peer on another thread go
// there through asio::post. Handlers only ever own connections of their own io_context
// (cross-thread handlers hold weak pointers), so the contexts may go in any order.

#include "server/net/asio.hpp"
#include "server/net/tls_socket.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::size_t kReadBuffer = 16384;  // as Herald's StreamIn
constexpr std::size_t kMaxHello = 8192;
constexpr auto kHelloTimeout = std::chrono::seconds(10);
constexpr std::size_t kMaxPending = 1024 * 1024;        // per unregistered destination
constexpr std::size_t kMaxSendQueue = 4 * 1024 * 1024;  // Herald's default limits.send_queue_bytes

constexpr const char* kHelp =
    "usage: bench-floor --port P --cert FILE --key FILE [--address 127.0.0.1] [--threads 1]\n"
    "\n"
    "A TLS relay with no XMPP logic: the performance floor for Herald's benchmarks.\n"
    "Every connection is TLS from the first byte (TLS 1.2 minimum, Herald's TLS settings)\n"
    "and starts with a hello, <floor id='I' peer='J'/>; it is registered under I (replacing\n"
    "an older one) and everything it sends after the hello is relayed, unchanged, to the\n"
    "connection registered under J (J = -1: nobody, bytes are discarded). Bytes for a J\n"
    "not registered are kept (up to 1 MiB, beyond that the sender is dropped) and delivered\n"
    "when J registers, unless their sender has closed by then. Bytes queued for a\n"
    "connection that closes are dropped. No valid hello within 8 KiB or 10 s closes the\n"
    "connection.\n"
    "\n"
    "  --port P        TCP port to listen on (required)\n"
    "  --address A     address to listen on (default 127.0.0.1)\n"
    "  --cert FILE     certificate chain, PEM (required)\n"
    "  --key FILE      private key, PEM (required)\n"
    "  --threads N     threads, one io_context each (default 1)\n"
    "  --help          this text\n";

class Conn;

// id -> connection. Registered entries carry the connection's io_context so senders on
// other threads can post to it without touching the connection itself. Bytes for an id
// not registered are kept with their sender, and forgotten when that sender closes: a
// new connection under the id gets what live senders sent it, never leftovers of
// connections gone meanwhile (say, of a previous benchmark run).
class Registry {
 public:
  struct Route {
    std::weak_ptr<Conn> conn;
    asio::io_context* io = nullptr;
  };
  enum class Result { routed, buffered, overflow };

  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Registers c under id and returns the bytes kept for id so far, in arrival order.
  std::string add(std::int64_t id, const std::shared_ptr<Conn>& c, asio::io_context* io) {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[id];
    e.conn = c;
    e.raw = c.get();
    e.io = io;
    generation_.fetch_add(1, std::memory_order_acq_rel);
    std::string out;
    out.reserve(e.pending_bytes);
    for (const auto& chunk : e.pending) out += chunk.bytes;
    e.pending.clear();
    e.pending.shrink_to_fit();
    e.pending_bytes = 0;
    return out;
  }

  // c closes: unregister it (if still the one under id) and forget what it kept for peer.
  void remove(std::int64_t id, const Conn* c, std::int64_t peer) {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end() && it->second.raw == c) {
      it->second.conn.reset();
      it->second.raw = nullptr;
      it->second.io = nullptr;
      generation_.fetch_add(1, std::memory_order_acq_rel);
      if (it->second.pending.empty()) entries_.erase(it);
    }
    if (peer < 0) return;
    if (auto it = entries_.find(peer); it != entries_.end() && !it->second.pending.empty()) {
      Entry& e = it->second;
      std::erase_if(e.pending, [&](const Chunk& k) {
        if (k.from != c) return false;
        e.pending_bytes -= k.bytes.size();
        return true;
      });
      if (!e.raw && e.pending.empty()) entries_.erase(it);
    }
  }

  // Where bytes for id go. If id is not registered, data is kept for it under the same
  // lock, so a registration cannot slip in between.
  Result route(std::int64_t id, const Conn* from, std::string_view data, Route& out, std::uint64_t& generation) {
    std::lock_guard lock(mutex_);
    generation = generation_.load(std::memory_order_acquire);
    Entry& e = entries_[id];
    if (e.raw) {
      out.conn = e.conn;
      out.io = e.io;
      return Result::routed;
    }
    if (e.pending_bytes + data.size() > kMaxPending) return Result::overflow;
    if (!e.pending.empty() && e.pending.back().from == from) {
      e.pending.back().bytes.append(data);
    } else {
      e.pending.push_back(Chunk{from, std::string(data)});
    }
    e.pending_bytes += data.size();
    return Result::buffered;
  }

 private:
  struct Chunk {
    const Conn* from;
    std::string bytes;
  };
  struct Entry {
    std::weak_ptr<Conn> conn;
    const Conn* raw = nullptr;  // non-null while registered
    asio::io_context* io = nullptr;
    std::vector<Chunk> pending;
    std::size_t pending_bytes = 0;
  };
  std::mutex mutex_;
  std::unordered_map<std::int64_t, Entry> entries_;
  std::atomic<std::uint64_t> generation_{0};
};

Registry g_registry;

// <floor id='I' peer='J'/> with either quote, optional whitespace, attributes in any order.
bool parse_hello(std::string_view s, std::int64_t& id, std::int64_t& peer) {
  auto skip_ws = [&s] {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
      s.remove_prefix(1);
  };
  skip_ws();
  if (!s.starts_with("<floor")) return false;
  s.remove_prefix(6);
  bool have_id = false, have_peer = false;
  for (;;) {
    const bool had_ws = !s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n');
    skip_ws();
    if (s == "/>") break;
    if (!had_ws) return false;
    const auto eq = s.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = s.substr(0, eq);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    s.remove_prefix(eq + 1);
    skip_ws();
    if (s.empty() || (s.front() != '\'' && s.front() != '"')) return false;
    const char quote = s.front();
    s.remove_prefix(1);
    const auto close = s.find(quote);
    if (close == std::string_view::npos) return false;
    const std::string_view value = s.substr(0, close);
    s.remove_prefix(close + 1);
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || ptr != value.data() + value.size() || value.empty()) return false;
    if (name == "id" && !have_id) {
      id = v;
      have_id = true;
    } else if (name == "peer" && !have_peer) {
      peer = v;
      have_peer = true;
    } else {
      return false;
    }
  }
  return have_id && have_peer && id >= 0 && peer >= -1;
}

// One read buffer per thread, as Herald's StreamIn: what is read is copied on (to the
// destination's queue, a post, or the hello) before the reader can suspend again.
thread_local std::array<char, kReadBuffer> read_buffer;

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& io, asio::ip::tcp::socket socket, asio::ssl::context& tls)
      : io_(io), stream_(std::move(socket), tls.native_handle()), deadline_(io), wake_(io) {
    boost::system::error_code ec;
    // As Herald's StreamIn.
    stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    stream_.socket().set_option(asio::socket_base::keep_alive(true), ec);
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void start() {
    auto self = shared_from_this();
    std::weak_ptr<Conn> weak = self;
    deadline_.expires_after(kHelloTimeout);
    deadline_.async_wait([weak](const boost::system::error_code& ec) {
      if (ec) return;
      auto s = weak.lock();
      if (!s || s->hello_done_ || s->closed_) return;
      std::fprintf(stderr, "bench-floor: %s: no hello within %llds, closing\n", s->remote_.c_str(),
                   static_cast<long long>(kHelloTimeout.count()));
      s->close();
    });
    auto run = [self]() { return self->reader(); };
    asio::co_spawn(io_, run, asio::detached);
  }

  // On this connection's thread only.
  void enqueue(std::string_view data) {
    if (closed_) return;
    if (queue_.size() + writing_ + data.size() > kMaxSendQueue) {
      std::fprintf(stderr, "bench-floor: %s (id %lld): send queue over %zu bytes (not reading), closing\n",
                   remote_.c_str(), static_cast<long long>(id_), kMaxSendQueue);
      close();
      return;
    }
    queue_.append(data);
    if (writer_waiting_) {
      writer_waiting_ = false;
      wake_.cancel();
    }
  }

 private:
  awaitable<void> reader() {
    auto self = shared_from_this();
    const char* phase = "TLS handshake";
    std::string error;
    try {
      co_await stream_.handshake();
      phase = "hello";
      co_await read_hello();
      phase = nullptr;
      while (!closed_) {
        const std::size_t n = co_await stream_.read_some(asio::buffer(read_buffer));
        forward(std::string_view(read_buffer.data(), n));
      }
    } catch (const boost::system::system_error& e) {
      if (phase && !closed_ && e.code() != asio::error::eof) error = e.code().message();
    }
    if (!error.empty()) std::fprintf(stderr, "bench-floor: %s: %s: %s\n", remote_.c_str(), phase, error.c_str());
    close();
  }

  // Reads up to the hello's "/>", registers, and forwards what came after it.
  awaitable<void> read_hello() {
    auto self = shared_from_this();
    std::string hello;
    std::size_t end = std::string::npos;
    while (end == std::string::npos) {
      const std::size_t n = co_await stream_.read_some(asio::buffer(read_buffer));
      const std::size_t from = hello.empty() ? 0 : hello.size() - 1;
      hello.append(read_buffer.data(), n);
      const std::size_t p = hello.find("/>", from);
      if (p != std::string::npos && p + 2 <= kMaxHello) {
        end = p + 2;
      } else if (hello.size() >= kMaxHello) {
        std::fprintf(stderr, "bench-floor: %s: no hello in the first %zu bytes, closing\n", remote_.c_str(),
                     kMaxHello);
        close();
        co_return;
      }
    }
    if (!parse_hello(std::string_view(hello).substr(0, end), id_, peer_)) {
      std::fprintf(stderr, "bench-floor: %s: bad hello, closing\n", remote_.c_str());
      close();
      co_return;
    }
    if (closed_) co_return;
    hello_done_ = true;
    deadline_.cancel();

    // Register, then take what was kept for us, before anything posted to us can run.
    std::string pending = g_registry.add(id_, self, &io_);
    registered_ = true;
    if (!pending.empty()) enqueue(pending);
    pending = std::string();
    auto write = [self]() { return self->writer(); };
    asio::co_spawn(io_, write, asio::detached);

    if (end < hello.size()) forward(std::string_view(hello).substr(end));
  }

  // One writer per connection: never two writes in flight on the stream. Each write takes
  // everything queued so far (one SSL_write, as Herald's StreamIn); an idle connection
  // keeps no buffer.
  awaitable<void> writer() {
    auto self = shared_from_this();
    try {
      while (!closed_) {
        if (queue_.empty()) {
          boost::system::error_code ec;
          writer_waiting_ = true;
          wake_.expires_at(asio::steady_timer::time_point::max());
          co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
          writer_waiting_ = false;
          continue;
        }
        std::string batch = std::move(queue_);
        queue_ = std::string();
        writing_ = batch.size();
        co_await stream_.write(batch);
        writing_ = 0;
      }
    } catch (const boost::system::system_error&) {
    }
    writing_ = 0;
    close();
  }

  void forward(std::string_view data) {
    if (peer_ < 0 || data.empty() || closed_) return;
    if (!route_valid_ || g_registry.generation() != route_generation_) {
      Registry::Route r;
      std::uint64_t generation = 0;
      switch (g_registry.route(peer_, this, data, r, generation)) {
        case Registry::Result::routed:
          route_ = std::move(r);
          route_generation_ = generation;
          route_valid_ = true;
          break;
        case Registry::Result::buffered:
          route_valid_ = false;
          return;
        case Registry::Result::overflow:
          std::fprintf(stderr, "bench-floor: %s (id %lld): over %zu bytes kept for absent peer %lld, closing\n",
                       remote_.c_str(), static_cast<long long>(id_), kMaxPending, static_cast<long long>(peer_));
          route_valid_ = false;
          close();
          return;
      }
    }
    if (route_.io == &io_) {
      if (auto c = route_.conn.lock()) c->enqueue(data);
    } else {
      asio::post(*route_.io, [weak = route_.conn, bytes = std::string(data)]() {
        if (auto c = weak.lock()) c->enqueue(bytes);
      });
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (registered_) g_registry.remove(id_, this, peer_);
    deadline_.cancel();
    wake_.cancel();
    queue_ = std::string();
    stream_.close();
  }

  asio::io_context& io_;
  herald::net::TlsSocket stream_;
  asio::steady_timer deadline_;
  asio::steady_timer wake_;
  std::string remote_ = "?";
  std::string queue_;
  std::size_t writing_ = 0;  // bytes of the write in progress
  std::int64_t id_ = -1;
  std::int64_t peer_ = -1;
  bool hello_done_ = false;
  bool registered_ = false;
  bool closed_ = false;
  bool writer_waiting_ = false;
  Registry::Route route_;
  std::uint64_t route_generation_ = 0;
  bool route_valid_ = false;
};

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// Mirrors server/net/tls.cpp make_context().
std::unique_ptr<asio::ssl::context> make_tls(const std::string& cert, const std::string& key) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_SINGLE_ECDH_USE);
  SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1");
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
    throw std::runtime_error("cannot use certificate " + cert + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("cannot use private key " + key + ": " + openssl_error());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("private key " + key + " does not match certificate " + cert);
  return ctx;
}

struct Worker {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
};

awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, std::vector<std::unique_ptr<Worker>>& workers,
                            asio::ssl::context& tls) {
  std::size_t next = 0;
  for (;;) {
    boost::system::error_code ec;
    Worker& w = *workers[next++ % workers.size()];
    auto socket = co_await acceptor.async_accept(w.io, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      std::fprintf(stderr, "bench-floor: accept: %s\n", ec.message().c_str());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (&w == workers[0].get()) {  // the acceptor's own thread
      std::make_shared<Conn>(w.io, std::move(socket), tls)->start();
    } else {
      // The connection is created on its own thread.
      auto fd = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      asio::post(w.io, [&w, &tls, fd]() { std::make_shared<Conn>(w.io, std::move(*fd), tls)->start(); });
    }
  }
}

void raise_nofile() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
      std::fprintf(stderr, "bench-floor: cannot raise RLIMIT_NOFILE: %s\n", std::strerror(errno));
  }
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "bench-floor: %s\n%.*s(--help for more)\n", message.c_str(),
               static_cast<int>(std::strchr(kHelp, '\n') - kHelp + 1), kHelp);
  std::exit(2);
}

bool parse_int(std::string_view s, long long& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  std::string cert;
  std::string key;
  long long port = -1;
  long long threads = 1;

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (arg != "--port" && arg != "--address" && arg != "--cert" && arg != "--key" && arg != "--threads")
      usage_error("unknown option " + std::string(arg));
    if (!has_inline) {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      value = argv[++i];
    }
    if (arg == "--port") {
      if (!parse_int(value, port) || port < 1 || port > 65535) usage_error("--port: not a port: " + value);
    } else if (arg == "--address") {
      address = value;
    } else if (arg == "--cert") {
      cert = value;
    } else if (arg == "--key") {
      key = value;
    } else if (arg == "--threads") {
      if (!parse_int(value, threads) || threads < 1 || threads > 1024) usage_error("--threads: not 1..1024: " + value);
    }
  }
  if (port < 0) usage_error("--port is required");
  if (cert.empty() || key.empty()) usage_error("--cert and --key are required");

  raise_nofile();
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<asio::ssl::context> tls;
  try {
    tls = make_tls(cert, key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-floor: %s\n", e.what());
    return 1;
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (long long i = 0; i < threads; ++i) workers.push_back(std::make_unique<Worker>());
  asio::io_context& main_io = workers[0]->io;

  asio::ip::tcp::acceptor acceptor(main_io);
  try {
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(address), static_cast<unsigned short>(port));
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-floor: cannot listen on %s:%lld: %s\n", address.c_str(), port, e.what());
    return 1;
  }

  asio::signal_set signals(main_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& w : workers) w->io.stop();
  });
  asio::co_spawn(main_io, accept_loop(acceptor, workers, *tls), asio::detached);

  std::printf("bench-floor listening on %s:%lld (%lld threads)\n", address.c_str(), port, threads);
  std::fflush(stdout);

  std::vector<std::thread> pool;
  for (std::size_t i = 1; i < workers.size(); ++i) pool.emplace_back([&w = *workers[i]] { w.io.run(); });
  main_io.run();
  for (auto& t : pool) t.join();
  std::fprintf(stderr, "bench-floor: stopped\n");
  // Locals go in reverse order: the signal set and acceptor before the io_contexts they
  // belong to; connections go with their io_contexts (handlers own only their own).
  return 0;
}
