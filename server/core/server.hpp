// The server: configuration, hosts with their modules, workers, the session directory, the
// router, TLS contexts and the listeners. run() blocks until SIGTERM/SIGINT.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "server/core/auth_throttle.hpp"
#include "server/core/config/config.hpp"
#include "server/core/host.hpp"
#include "server/core/router.hpp"
#include "server/core/session_directory.hpp"
#include "server/core/worker.hpp"
#include "server/net/asio.hpp"
#include "server/net/tls.hpp"

namespace herald::core {

// Hands an accepted connection to the protocol layer (c2s now, s2s later), on `worker`'s thread.
using ConnectionHandler =
    std::function<void(Server&, Worker&, asio::ip::tcp::socket, const config::Listener&)>;

class Server {
 public:
  // Builds everything that can fail on bad configuration (TLS contexts, hosts) before any
  // port opens. Throws config::ConfigError.
  explicit Server(config::Config cfg);
  ~Server();

  // Checks the schema, opens the listeners, runs until a signal. Returns the exit code.
  int run(ConnectionHandler c2s, ConnectionHandler s2s);
  void request_shutdown();

  const config::Config& config() const { return config_; }
  Host* host(std::string_view domain);
  Router& router() { return router_; }
  SessionDirectory& directory() { return directory_; }
  net::TlsContexts& tls() { return tls_; }
  AuthThrottle& throttle() { return throttle_; }
  Worker& worker(unsigned i) { return *workers_[i]; }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  bool shutting_down() const { return shutting_down_.load(); }
  // Runs once the schema is checked and the workers run (e.g. periodic maintenance that
  // needs Worker::current()). Register while modules load.
  void on_started(std::function<void()> hook) { started_hooks_.push_back(std::move(hook)); }

 private:
  bool check_schema();
  bool open_listeners();
  awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, config::Listener listener);
  void shutdown_streams();

  config::Config config_;
  net::TlsContexts tls_;
  std::map<std::string, std::unique_ptr<Host>, std::less<>> hosts_;
  SessionDirectory directory_;
  Router router_;
  AuthThrottle throttle_;
  std::vector<std::unique_ptr<Worker>> workers_;
  asio::io_context main_io_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  ConnectionHandler on_c2s_;
  ConnectionHandler on_s2s_;
  unsigned next_worker_ = 0;
  std::atomic<bool> shutting_down_{false};
  std::vector<std::function<void()>> started_hooks_;
};

}  // namespace herald::core
