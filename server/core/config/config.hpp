// Herald's configuration: one TOML file, validated completely at start. Every key is
// documented in etc/herald.toml and docs/configuration.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald::config {

// Thrown by load(); what() names the offending key or file and says what to do.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class LogLevel { trace, debug, info, warn, error };
enum class TlsMode { starttls, direct };
enum class ListenerKind { c2s, s2s };

struct Host {
  std::string domain;                 // prepared (lowercase, IDNA-checked)
  std::filesystem::path certificate;  // PEM chain
  std::filesystem::path key;          // PEM private key
};

struct Listener {
  std::string address = "::";
  std::uint16_t port = 5222;
  TlsMode tls = TlsMode::starttls;
  ListenerKind kind = ListenerKind::c2s;  // key 'type': "c2s" (clients) or "s2s" (servers)
};

// A DNS server to ask instead of the system's (/etc/resolv.conf).
struct DnsServer {
  std::string address;
  std::uint16_t port = 53;
};

// Server-to-server (RFC 6120, XEP-0220, XEP-0178, XEP-0368).
struct Federation {
  bool enabled = true;
  // CA certificates that peers' certificates must chain to (PEM bundle).
  std::filesystem::path ca_file = "/etc/ssl/certs/ca-certificates.crt";
  // Refuse peers whose certificate is not valid for their domain (no dialback fallback).
  bool require_valid_certificates = false;
  bool dialback = true;  // XEP-0220 when a certificate does not authenticate a peer
  std::vector<DnsServer> dns_servers;  // empty: the system's resolvers
  std::chrono::milliseconds dns_timeout{3000};  // per try
  unsigned dns_tries = 2;
  // A peer that accepts TCP and then does not complete the stream setup within this is
  // given up on (the next target is tried).
  std::chrono::seconds connect_timeout{15};
  // Longest a stanza waits for a stream to come up before it bounces (RFC 2779 5.4.1).
  std::chrono::seconds bounce_after{30};
  std::size_t queue_limit = 10000;  // stanzas waiting per remote domain
  std::chrono::seconds idle_timeout{600};  // unused streams are closed after this
};

struct Database {
  std::string conninfo;             // libpq connection string
  std::size_t pool_size = 2;        // connections per worker
  std::chrono::seconds connect_timeout{10};
};

struct Limits {
  std::size_t max_stanza_size = 256 * 1024;
  std::size_t max_stanza_size_unauthenticated = 8 * 1024;
  std::size_t max_depth = 32;
  std::size_t max_attributes = 64;
  std::size_t send_queue_bytes = 4 * 1024 * 1024;
  std::chrono::seconds unauthenticated_timeout{60};
  std::size_t privacy_lists = 50;         // privacy lists per account (XEP-0016)
  std::size_t privacy_list_items = 5000;  // items per list, blocked JIDs included (XEP-0191)
};

struct Auth {
  std::uint32_t scram_iterations = 4096;
  std::vector<std::string> mechanisms;   // enabled SASL mechanisms; default: all
  unsigned max_attempts_per_connection = 3;
  unsigned ip_failure_limit = 10;       // failed authentications per IP per window
  std::chrono::seconds ip_failure_window{60};
};

// Out-of-contact detection (RFC 2779 3.2.4): a client silent for ping_interval gets an
// XEP-0199 ping; no data within ping_timeout after it closes the stream. TCP keepalive
// probes use the same bound, for peers that vanish without a FIN.
struct Keepalive {
  std::chrono::seconds ping_interval{60};
  std::chrono::seconds ping_timeout{30};
};

// Offline storage (XEP-0160).
struct Offline {
  std::size_t max_messages = 1000;  // per account; more bounce with resource-constraint
};

// Stream management (XEP-0198).
struct StreamManagement {
  bool enabled = true;
  std::chrono::seconds resume_timeout{300};  // how long a broken session waits to be resumed
  std::size_t max_unacked = 5000;            // stanzas sent but not acknowledged, per session
};

// Message archives (XEP-0313).
struct Archive {
  bool enabled = true;
  enum class Default { always, never, roster };
  Default default_mode = Default::always;  // for users who never set preferences
  unsigned retention_days = 0;             // 0: keep forever
  std::size_t max_page = 250;              // largest page a query returns
};

struct Config {
  std::filesystem::path path;           // the file it came from
  LogLevel log_level = LogLevel::info;
  unsigned workers = 0;                 // resolved: never 0 after load()
  Database database;
  std::vector<Host> hosts;
  std::vector<Listener> listeners;
  Limits limits;
  Auth auth;
  Keepalive keepalive;
  Federation federation;
  Offline offline;
  StreamManagement stream_management;
  Archive archive;

  const Host* find_host(std::string_view domain) const;
};

// Parses and validates FILE. Relative certificate/key paths are resolved against the
// directory of FILE. Checks that every certificate and key file is readable.
Config load(const std::filesystem::path& file);
// Same, from TOML text (base_dir resolves relative paths). For tests and tools.
Config parse(std::string_view toml_text, const std::filesystem::path& base_dir,
             const std::string& source_name = "config");

const std::vector<std::string>& all_mechanisms();
std::string_view to_string(LogLevel);

}  // namespace herald::config
