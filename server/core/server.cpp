#include "server/core/server.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include <unistd.h>

#include "storage/pg/pool.hpp"
#include "storage/pg/schema.hpp"

namespace herald::core {

Server::Server(config::Config cfg)
    : config_(std::move(cfg)),
      tls_(config_.hosts),
      router_(*this),
      throttle_(config_.auth.ip_failure_limit, config_.auth.ip_failure_window) {
  for (const auto& h : config_.hosts) hosts_.emplace(h.domain, std::make_unique<Host>(*this, h));
  for (auto& [domain, host] : hosts_) host->load_modules();
  for (unsigned i = 0; i < config_.workers; ++i) workers_.push_back(std::make_unique<Worker>(i, config_));
}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  // Sessions still listed (e.g. waiting for resumption) own timers and sockets on the
  // workers' io_contexts: they go while those still exist.
  directory_.clear();
}

Host* Server::host(std::string_view domain) {
  auto it = hosts_.find(domain);
  return it == hosts_.end() ? nullptr : it->second.get();
}

bool Server::check_schema() {
  // Runs the asynchronous check on worker 0's loop, driven from this thread before the
  // workers start: no blocking libpq call anywhere.
  auto& io = workers_.front()->io();
  std::optional<storage::SchemaCheck> result;
  std::string failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          result = co_await storage::check_schema(workers_.front()->pool(), config_.path.string());
        } catch (const std::exception& e) {
          failure = e.what();
        }
        io.stop();
      },
      asio::detached);
  io.run();
  io.restart();
  if (!failure.empty()) {
    // The conninfo may hold a password: name the setting, not its value.
    spdlog::critical("cannot use the database: {}. Check [database] conninfo in {} and that PostgreSQL is running.",
                     failure, config_.path.string());
    return false;
  }
  if (!result->ok) {
    spdlog::critical("{}", result->message);
    return false;
  }
  return true;
}

bool Server::open_listeners() {
  for (const auto& l : config_.listeners) {
    try {
      auto address = asio::ip::make_address(l.address);
      asio::ip::tcp::endpoint ep(address, l.port);
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(main_io_);
      acceptor->open(ep.protocol());
      acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true));
      if (address.is_v6()) acceptor->set_option(asio::ip::v6_only(false));
      acceptor->bind(ep);
      acceptor->listen(asio::socket_base::max_listen_connections);
      spdlog::info("listening on [{}]:{} ({}, {})", l.address, l.port,
                   l.kind == config::ListenerKind::s2s ? "servers" : "clients",
                   l.tls == config::TlsMode::direct ? "direct TLS" : "STARTTLS");
      asio::co_spawn(main_io_, accept_loop(*acceptor, l), asio::detached);
      acceptors_.push_back(std::move(acceptor));
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen on [{}]:{}: {} (is another server using the port? change [[listener]] in {})",
                       l.address, l.port, e.what(), config_.path.string());
      return false;
    }
  }
  return true;
}

awaitable<void> Server::accept_loop(asio::ip::tcp::acceptor& acceptor, config::Listener listener) {
  for (;;) {
    boost::system::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || shutting_down_) co_return;
      spdlog::warn("accept on port {}: {}", listener.port, ec.message());
      // Out of descriptors and the like: back off instead of spinning.
      asio::steady_timer t(main_io_, std::chrono::milliseconds(100));
      co_await t.async_wait(use_awaitable);
      continue;
    }
    // Round-robin across all listeners' connections, chosen once the connection exists:
    // the descriptor moves to a socket owned by the worker's io_context.
    Worker& w = *workers_[next_worker_++ % workers_.size()];
    const auto protocol = socket.local_endpoint(ec).protocol();
    const int fd = ::dup(socket.native_handle());
    socket.close(ec);
    if (fd < 0) {
      spdlog::warn("accept on port {}: dup failed", listener.port);
      continue;
    }
    asio::post(w.io(), [this, &w, fd, protocol, listener]() {
      boost::system::error_code assign_ec;
      asio::ip::tcp::socket s(w.io());
      s.assign(protocol, fd, assign_ec);
      if (assign_ec) {
        ::close(fd);
        return;
      }
      (listener.kind == config::ListenerKind::s2s ? on_s2s_ : on_c2s_)(*this, w, std::move(s), listener);
    });
  }
}

void Server::request_shutdown() {
  asio::post(main_io_, [this] {
    if (shutting_down_.exchange(true)) return;
    for (auto& a : acceptors_) {
      boost::system::error_code ec;
      a->close(ec);
    }
    main_io_.stop();
  });
}

void Server::shutdown_streams() {
  spdlog::info("shutting down: closing {} streams", [this] {
    std::size_t n = 0;
    for (auto& w : workers_) n += w->live_streams();
    return n;
  }());
  for (auto& w : workers_) asio::post(w->io(), [&w] { w->close_all(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::size_t live = 0;
    for (auto& w : workers_) live += w->live_streams();
    if (live == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Server::run(ConnectionHandler c2s, ConnectionHandler s2s) {
  on_c2s_ = std::move(c2s);
  on_s2s_ = std::move(s2s);
  if (!check_schema()) return 1;
  if (!open_listeners()) return 1;
  for (auto& w : workers_) w->start();
  for (auto& hook : started_hooks_) hook();
  spdlog::info("Herald serving {} on {} worker(s)", [this] {
    std::string names;
    for (auto& [d, h] : hosts_) names += (names.empty() ? "" : ", ") + d;
    return names;
  }(), workers_.size());

  asio::signal_set signals(main_io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("received signal {}, shutting down", sig);
    request_shutdown();
  });
  main_io_.run();
  shutdown_streams();
  for (auto& w : workers_) w->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace herald::core
