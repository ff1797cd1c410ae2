// herald: the XMPP server. Reads one TOML configuration file, validates all of it (and the
// certificates) before opening any port, then runs until SIGTERM or SIGINT.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "federation/s2s/s2s_in.hpp"
#include "federation/s2s/s2s_manager.hpp"
#include "server/c2s/c2s_session.hpp"
#include "server/core/config/config.hpp"
#include "server/core/server.hpp"

namespace {

constexpr const char* kUsage = R"(Usage: herald [--config FILE] [--check]

Runs the Herald XMPP server.

Options:
  -c, --config FILE   configuration file (default: $HERALD_CONFIG or /etc/herald/herald.toml)
      --check         validate the configuration and certificates, then exit
  -V, --version       print the version and exit
  -h, --help          show this help

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT) or a good --check;
1 when the server cannot start (database, schema, ports); 2 on usage errors;
3 when the configuration is invalid.
)";

spdlog::level::level_enum to_spdlog(herald::config::LogLevel l) {
  using herald::config::LogLevel;
  switch (l) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenSSL writes to client sockets itself (net::TlsSocket) with plain write(2): a peer
  // that has gone must give EPIPE, not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  std::string config_path;
  if (const char* env = std::getenv("HERALD_CONFIG")) config_path = env;
  if (config_path.empty()) config_path = "/etc/herald/herald.toml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-V" || arg == "--version") {
      std::printf("herald %s\n", HERALD_VERSION);
      return 0;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check") {
      check_only = true;
    } else {
      std::fprintf(stderr, "herald: unknown argument '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  auto logger = spdlog::stderr_color_mt("herald");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");

  try {
    auto cfg = herald::config::load(config_path);
    spdlog::set_level(to_spdlog(cfg.log_level));
    herald::core::Server server(std::move(cfg));
    // Federation state lives on the workers' io_contexts: released before the Server (and
    // its workers) is destroyed, however run() ends.
    struct ReleaseFederation {
      herald::core::Server& server;
      ~ReleaseFederation() { herald::federation::S2sManager::release(server); }
    } release_federation{server};
    if (check_only) {
      std::printf("%s: configuration OK\n", config_path.c_str());
      return 0;
    }
    return server.run(&herald::c2s::C2sSession::accept, &herald::federation::S2sIn::accept);
  } catch (const herald::config::ConfigError& e) {
    spdlog::critical("configuration error: {}", e.what());
    return 3;
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
