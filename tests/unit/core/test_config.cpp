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
  // Clients on 5222/5223 and, federation being on by default, servers on 5269/5270.
  REQUIRE(cfg.listeners.size() == 4);
  CHECK(cfg.listeners[0].port == 5222);
  CHECK(cfg.listeners[1].tls == herald::config::TlsMode::direct);
  CHECK(cfg.listeners[2].port == 5269);
  CHECK(cfg.listeners[2].kind == herald::config::ListenerKind::s2s);
  CHECK(cfg.listeners[3].port == 5270);
  CHECK(cfg.listeners[3].tls == herald::config::TlsMode::direct);
  CHECK(cfg.federation.enabled);
  CHECK(cfg.federation.connect_timeout == std::chrono::seconds(15));
  CHECK_FALSE(cfg.federation.require_valid_certificates);
  CHECK(cfg.federation.dns_servers.empty());
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
[[listener]]
address = "::1"
port = 15269
type = "s2s"
[federation]
enabled = true
ca_file = "a.crt"
require_valid_certificates = true
dialback = false
dns_servers = ["127.0.0.1:5353", "::1", "[::1]:54"]
dns_timeout_ms = 700
dns_tries = 3
connect_timeout = 9
bounce_after = 20
queue_limit = 50
idle_timeout = 120
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
  REQUIRE(cfg.listeners.size() == 2);
  CHECK(cfg.listeners[0].address == "127.0.0.1");
  CHECK(cfg.listeners[0].port == 15222);
  CHECK(cfg.listeners[0].kind == herald::config::ListenerKind::c2s);
  CHECK(cfg.listeners[1].kind == herald::config::ListenerKind::s2s);
  const auto& f = cfg.federation;
  CHECK(f.ca_file == dir.path / "a.crt");
  CHECK(f.require_valid_certificates);
  CHECK_FALSE(f.dialback);
  REQUIRE(f.dns_servers.size() == 3);
  CHECK(f.dns_servers[0].address == "127.0.0.1");
  CHECK(f.dns_servers[0].port == 5353);
  CHECK(f.dns_servers[1].address == "::1");
  CHECK(f.dns_servers[1].port == 53);
  CHECK(f.dns_servers[2].port == 54);
  CHECK(f.dns_timeout == std::chrono::milliseconds(700));
  CHECK(f.dns_tries == 3);
  CHECK(f.connect_timeout == std::chrono::seconds(9));
  CHECK(f.bounce_after == std::chrono::seconds(20));
  CHECK(f.queue_limit == 50);
  CHECK(f.idle_timeout == std::chrono::seconds(120));
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
  CHECK(error_of(kMinimal + "[[listener]]\ntype = \"p2p\"\n", d).find("'listener[0].type'") != std::string::npos);
  CHECK(error_of(kMinimal + "[federation]\ndns_servers = [\"dns.example\"]\n", d).find("'federation.dns_servers'") != std::string::npos);
  CHECK(error_of(kMinimal + "[federation]\nca_file = \"missing.pem\"\n", d).find("'federation.ca_file'") != std::string::npos);
  CHECK(error_of(kMinimal + "[federation]\nenabled = false\n[[listener]]\ntype = \"s2s\"\n", d).find("'listener[0].type'") != std::string::npos);
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
