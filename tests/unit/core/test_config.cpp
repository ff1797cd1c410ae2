#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "server/core/config/config.hpp"

namespace fs = std::filesystem;
using herald::config::ConfigError;
using herald::config::parse;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("herald-config-test-" + std::to_string(::getpid()));
    fs::create_directories(path);
    std::ofstream(path / "a.crt") << "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
    std::ofstream(path / "a.key") << "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n";
    std::ofstream(path / "junk.crt") << "not a certificate\n";
  }
  ~TempDir() { fs::remove_all(path); }
};

const std::string kMinimal = R"(
[database]
conninfo = "dbname=herald"
[[host]]
domain = "Example.COM"
certificate = "a.crt"
key = "a.key"
)";

std::string error_of(const std::string& text, const fs::path& dir) {
  try {
    parse(text, dir, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a minimal configuration gets every default") {
  TempDir dir;
  auto cfg = parse(kMinimal, dir.path, "test.toml");
  CHECK(cfg.hosts.size() == 1);
  CHECK(cfg.hosts[0].domain == "example.com");  // prepared
  CHECK(cfg.hosts[0].certificate == dir.path / "a.crt");
  CHECK(cfg.workers >= 1);
  CHECK(cfg.listeners.size() == 2);
  CHECK(cfg.listeners[0].port == 5222);
  CHECK(cfg.listeners[1].tls == herald::config::TlsMode::direct);
  CHECK(cfg.limits.max_stanza_size == 256 * 1024);
  CHECK(cfg.limits.max_stanza_size_unauthenticated == 8 * 1024);
  CHECK(cfg.keepalive.ping_interval + cfg.keepalive.ping_timeout <= std::chrono::seconds(90));
  CHECK(cfg.auth.mechanisms.size() == 7);
  CHECK(cfg.find_host("example.com") != nullptr);
  CHECK(cfg.find_host("other.com") == nullptr);
}

TEST_CASE("every section and key is read") {
  TempDir dir;
  auto cfg = parse(R"(
log_level = "debug"
workers = 3
)" + kMinimal + R"(
[limits]
max_stanza_size = 100000
max_stanza_size_unauthenticated = 4096
max_depth = 10
max_attributes = 20
send_queue_bytes = 65536
unauthenticated_timeout = 5
[auth]
scram_iterations = 10000
mechanisms = ["SCRAM-SHA-256", "PLAIN"]
max_attempts_per_connection = 2
ip_failure_limit = 4
ip_failure_window = 30
[keepalive]
ping_interval = 20
ping_timeout = 7
[[listener]]
address = "127.0.0.1"
port = 15222
tls = "starttls"
)",
                   dir.path, "test.toml");
  CHECK(cfg.log_level == herald::config::LogLevel::debug);
  CHECK(cfg.workers == 3);
  CHECK(cfg.limits.max_stanza_size == 100000);
  CHECK(cfg.limits.max_depth == 10);
  CHECK(cfg.limits.unauthenticated_timeout == std::chrono::seconds(5));
  CHECK(cfg.auth.scram_iterations == 10000);
  CHECK(cfg.auth.mechanisms == std::vector<std::string>{"SCRAM-SHA-256", "PLAIN"});
  CHECK(cfg.auth.ip_failure_window == std::chrono::seconds(30));
  CHECK(cfg.keepalive.ping_interval == std::chrono::seconds(20));
  CHECK(cfg.keepalive.ping_timeout == std::chrono::seconds(7));
  REQUIRE(cfg.listeners.size() == 1);
  CHECK(cfg.listeners[0].address == "127.0.0.1");
  CHECK(cfg.listeners[0].port == 15222);
}

TEST_CASE("errors name the offending key or file") {
  TempDir dir;
  const auto& d = dir.path;
  CHECK(error_of("bogus = 1\n" + kMinimal, d).find("'bogus'") != std::string::npos);
  CHECK(error_of(kMinimal + "[limits]\nmax_stanza_sise = 1\n", d).find("'limits.max_stanza_sise'") != std::string::npos);
  CHECK(error_of("workers = \"two\"\n" + kMinimal, d).find("'workers'") != std::string::npos);
  CHECK(error_of("workers = -1\n" + kMinimal, d).find("'workers'") != std::string::npos);
  CHECK(error_of("log_level = \"loud\"\n" + kMinimal, d).find("'log_level'") != std::string::npos);
  CHECK(error_of(kMinimal + "[[listener]]\nport = 70000\n", d).find("'listener[0].port'") != std::string::npos);
  CHECK(error_of(kMinimal + "[[listener]]\naddress = \"localhost\"\n", d).find("'listener[0].address'") != std::string::npos);
  CHECK(error_of(kMinimal + "[[listener]]\ntls = \"maybe\"\n", d).find("'listener[0].tls'") != std::string::npos);
  CHECK(error_of(kMinimal + "[auth]\nmechanisms = [\"DIGEST-MD5\"]\n", d).find("'auth.mechanisms'") != std::string::npos);
  CHECK(error_of(kMinimal + "[auth]\nscram_iterations = 10\n", d).find("'auth.scram_iterations'") != std::string::npos);
  CHECK(error_of("[[host]]\ndomain='a.com'\ncertificate='a.crt'\nkey='a.key'\n", d).find("'database.conninfo'") != std::string::npos);
  CHECK(error_of("[database]\nconninfo='x'\n", d).find("[[host]]") != std::string::npos);
  CHECK(error_of("workers = [", d).find("test.toml:1") != std::string::npos);
}

TEST_CASE("unreadable or non-PEM certificates are named") {
  TempDir dir;
  auto missing = error_of(R"(
[database]
conninfo = "x"
[[host]]
domain = "a.com"
certificate = "missing.crt"
key = "a.key"
)",
                          dir.path);
  CHECK(missing.find("host[0].certificate") != std::string::npos);
  CHECK(missing.find("missing.crt") != std::string::npos);
  auto junk = error_of(R"(
[database]
conninfo = "x"
[[host]]
domain = "a.com"
certificate = "junk.crt"
key = "a.key"
)",
                       dir.path);
  CHECK(junk.find("junk.crt") != std::string::npos);
  CHECK(junk.find("not PEM") != std::string::npos);
}

TEST_CASE("hosts must be valid and distinct") {
  TempDir dir;
  CHECK(error_of(kMinimal + "[[host]]\ndomain='example.com'\ncertificate='a.crt'\nkey='a.key'\n", dir.path)
            .find("listed twice") != std::string::npos);
  CHECK(error_of("[database]\nconninfo='x'\n[[host]]\ndomain='bad domain'\ncertificate='a.crt'\nkey='a.key'\n", dir.path)
            .find("host[0].domain") != std::string::npos);
}
