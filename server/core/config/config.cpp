#include "server/core/config/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/ip/address.hpp>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "server/xmpp/jid.hpp"

namespace herald::config {
namespace {

// Walks one TOML table, taking keys by name, and reports any key nobody took: a typo in a
// config file must stop the server, not be silently ignored.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, const std::string& source)
      : table_(table), prefix_(std::move(prefix)), source_(source) {}

  std::string key_name(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  [[noreturn]] void fail(std::string_view key, std::string_view what) const {
    throw ConfigError(fmt::format("{}: key '{}': {}", source_, key_name(key), what));
  }

  const toml::node* take(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const auto* node = take(key);
    if (!node) return std::nullopt;
    if (auto v = node->value<std::string>()) return *v;
    fail(key, "must be a string");
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const auto* node = take(key);
    if (!node) return std::nullopt;
    if (!node->is_integer()) fail(key, "must be an integer");
    const auto v = *node->value<std::int64_t>();
    if (v < min || v > max) fail(key, fmt::format("must be between {} and {}, not {}", min, max, v));
    return v;
  }

  template <typename T>
  void integer_into(std::string_view key, T& out, std::int64_t min, std::int64_t max) {
    if (auto v = integer(key, min, max)) out = static_cast<T>(*v);
  }
  void seconds_into(std::string_view key, std::chrono::seconds& out, std::int64_t min, std::int64_t max) {
    if (auto v = integer(key, min, max)) out = std::chrono::seconds(*v);
  }
  void boolean_into(std::string_view key, bool& out) {
    if (const auto* node = take(key)) {
      if (!node->is_boolean()) fail(key, "must be true or false");
      out = *node->value<bool>();
    }
  }

  const toml::table* table(std::string_view key) {
    const auto* node = take(key);
    if (!node) return nullptr;
    if (const auto* t = node->as_table()) return t;
    fail(key, "must be a table ([" + key_name(key) + "])");
  }

  // [[key]] arrays of tables
  const toml::array* table_array(std::string_view key) {
    const auto* node = take(key);
    if (!node) return nullptr;
    const auto* arr = node->as_array();
    if (!arr || !arr->is_array_of_tables()) fail(key, "must be an array of tables ([[" + key_name(key) + "]])");
    return arr;
  }

  void reject_unknown() const {
    for (const auto& [k, v] : table_) {
      if (!seen_.count(std::string(k.str()))) {
        throw ConfigError(fmt::format("{}: unknown key '{}' (see etc/herald.toml for every key)",
                                      source_, key_name(k.str())));
      }
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  const std::string& source_;
  std::set<std::string> seen_;
};

std::optional<DnsServer> parse_dns_server(std::string_view text) {
  DnsServer server;
  std::string host(text);
  if (!text.empty() && text.front() == '[') {  // [v6]:port
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      rest.remove_prefix(1);
      unsigned port = 0;
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
      if (ec != std::errc() || p != rest.data() + rest.size() || port == 0 || port > 65535) return std::nullopt;
      server.port = static_cast<std::uint16_t>(port);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // v4:port
    const auto colon = text.find(':');
    host = std::string(text.substr(0, colon));
    auto rest = text.substr(colon + 1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
    if (ec != std::errc() || p != rest.data() + rest.size() || port == 0 || port > 65535) return std::nullopt;
    server.port = static_cast<std::uint16_t>(port);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  server.address = host;
  return server;
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

void check_readable(const std::filesystem::path& file, const std::string& key, const std::string& source) {
  std::ifstream in(file);
  if (!in) {
    throw ConfigError(fmt::format("{}: key '{}': cannot read file {} (does it exist, and may Herald read it?)",
                                  source, key, file.string()));
  }
  std::string first;
  std::getline(in, first);
  std::stringstream rest;
  rest << first << in.rdbuf();
  if (rest.str().find("-----BEGIN ") == std::string::npos) {
    throw ConfigError(fmt::format("{}: key '{}': file {} is not PEM (no -----BEGIN line)", source, key,
                                  file.string()));
  }
}

LogLevel parse_level(TableReader& r, std::string_view key, const std::string& v) {
  if (v == "trace") return LogLevel::trace;
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "warn") return LogLevel::warn;
  if (v == "error") return LogLevel::error;
  r.fail(key, "must be one of trace, debug, info, warn, error, not '" + v + "'");
}

}  // namespace

const std::vector<std::string>& all_mechanisms() {
  static const std::vector<std::string> names = {
      "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512",
      "SCRAM-SHA-256",      "SCRAM-SHA-1",        "PLAIN"};
  return names;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

const Host* Config::find_host(std::string_view domain) const {
  for (const auto& h : hosts)
    if (h.domain == domain) return &h;
  return nullptr;
}

Config parse(std::string_view text, const std::filesystem::path& base_dir, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: {}", source, where.line, where.column, e.description()));
  }

  Config cfg;
  TableReader top(root, "", source);
  if (auto v = top.string("log_level")) cfg.log_level = parse_level(top, "log_level", *v);
  top.integer_into("workers", cfg.workers, 0, 256);
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());

  if (const auto* t = top.table("database")) {
    TableReader r(*t, "database", source);
    if (auto v = r.string("conninfo")) cfg.database.conninfo = *v;
    r.integer_into("pool_size", cfg.database.pool_size, 1, 64);
    r.seconds_into("connect_timeout", cfg.database.connect_timeout, 1, 600);
    r.reject_unknown();
  }
  if (cfg.database.conninfo.empty())
    throw ConfigError(fmt::format("{}: key 'database.conninfo' is required (a libpq connection string)", source));

  if (const auto* arr = top.table_array("host")) {
    std::size_t i = 0;
    for (const auto& node : *arr) {
      TableReader r(*node.as_table(), fmt::format("host[{}]", i++), source);
      Host h;
      auto domain = r.string("domain");
      if (!domain) r.fail("domain", "is required");
      auto prepped = xmpp::prep_domain(*domain);
      if (!prepped) r.fail("domain", "'" + *domain + "' is not a valid domain name");
      h.domain = *prepped;
      if (cfg.find_host(h.domain)) r.fail("domain", "'" + h.domain + "' is listed twice");
      auto cert = r.string("certificate");
      auto key = r.string("key");
      if (!cert) r.fail("certificate", "is required (PEM certificate chain for " + h.domain + ")");
      if (!key) r.fail("key", "is required (PEM private key for " + h.domain + ")");
      h.certificate = resolve(base_dir, *cert);
      h.key = resolve(base_dir, *key);
      check_readable(h.certificate, r.key_name("certificate"), source);
      check_readable(h.key, r.key_name("key"), source);
      r.reject_unknown();
      cfg.hosts.push_back(std::move(h));
    }
  }
  if (cfg.hosts.empty())
    throw ConfigError(fmt::format("{}: at least one [[host]] table is required (domain, certificate, key)", source));

  bool default_listeners = false;
  if (const auto* arr = top.table_array("listener")) {
    std::size_t i = 0;
    for (const auto& node : *arr) {
      TableReader r(*node.as_table(), fmt::format("listener[{}]", i++), source);
      Listener l;
      if (auto v = r.string("address")) {
        boost::system::error_code ec;
        boost::asio::ip::make_address(*v, ec);
        if (ec) r.fail("address", "'" + *v + "' is not an IP address (use \"::\" or \"0.0.0.0\" for all)");
        l.address = *v;
      }
      r.integer_into("port", l.port, 1, 65535);
      if (auto v = r.string("tls")) {
        if (*v == "starttls") l.tls = TlsMode::starttls;
        else if (*v == "direct") l.tls = TlsMode::direct;
        else r.fail("tls", "must be \"starttls\" or \"direct\", not '" + *v + "'");
      }
      if (auto v = r.string("type")) {
        if (*v == "c2s") l.kind = ListenerKind::c2s;
        else if (*v == "s2s") l.kind = ListenerKind::s2s;
        else r.fail("type", "must be \"c2s\" (clients) or \"s2s\" (other servers), not '" + *v + "'");
      }
      r.reject_unknown();
      cfg.listeners.push_back(std::move(l));
    }
  } else {
    cfg.listeners.push_back(Listener{"::", 5222, TlsMode::starttls});
    cfg.listeners.push_back(Listener{"::", 5223, TlsMode::direct});
    default_listeners = true;
  }

  if (const auto* t = top.table("limits")) {
    TableReader r(*t, "limits", source);
    auto& l = cfg.limits;
    r.integer_into("max_stanza_size", l.max_stanza_size, 1024, 64 * 1024 * 1024);
    r.integer_into("max_stanza_size_unauthenticated", l.max_stanza_size_unauthenticated, 512, 1024 * 1024);
    r.integer_into("max_depth", l.max_depth, 4, 1024);
    r.integer_into("max_attributes", l.max_attributes, 4, 4096);
    r.integer_into("send_queue_bytes", l.send_queue_bytes, 16 * 1024, std::int64_t{1} << 32);
    r.seconds_into("unauthenticated_timeout", l.unauthenticated_timeout, 1, 3600);
    r.integer_into("privacy_lists", l.privacy_lists, 1, 10000);
    r.integer_into("privacy_list_items", l.privacy_list_items, 1, 1000000);
    r.reject_unknown();
  }

  if (const auto* t = top.table("auth")) {
    TableReader r(*t, "auth", source);
    auto& a = cfg.auth;
    r.integer_into("scram_iterations", a.scram_iterations, 4096, 10'000'000);
    if (const auto* node = r.take("mechanisms")) {
      const auto* arr = node->as_array();
      if (!arr) r.fail("mechanisms", "must be an array of strings");
      for (const auto& m : *arr) {
        auto s = m.value<std::string>();
        if (!s) r.fail("mechanisms", "must be an array of strings");
        const auto& all = all_mechanisms();
        if (std::find(all.begin(), all.end(), *s) == all.end())
          r.fail("mechanisms", "unknown mechanism '" + *s + "'; known: SCRAM-SHA-{1,256,512}[-PLUS], PLAIN");
        a.mechanisms.push_back(*s);
      }
      if (a.mechanisms.empty()) r.fail("mechanisms", "must not be empty: nobody could log in");
    }
    r.integer_into("max_attempts_per_connection", a.max_attempts_per_connection, 1, 100);
    r.integer_into("ip_failure_limit", a.ip_failure_limit, 1, 1'000'000);
    r.seconds_into("ip_failure_window", a.ip_failure_window, 1, 86400);
    r.reject_unknown();
  }
  if (cfg.auth.mechanisms.empty()) cfg.auth.mechanisms = all_mechanisms();

  if (const auto* t = top.table("federation")) {
    TableReader r(*t, "federation", source);
    auto& f = cfg.federation;
    r.boolean_into("enabled", f.enabled);
    if (auto v = r.string("ca_file")) f.ca_file = resolve(base_dir, *v);
    r.boolean_into("require_valid_certificates", f.require_valid_certificates);
    r.boolean_into("dialback", f.dialback);
    if (const auto* node = r.take("dns_servers")) {
      const auto* arr = node->as_array();
      if (!arr) r.fail("dns_servers", "must be an array of \"address\" or \"address:port\" strings");
      for (const auto& entry : *arr) {
        auto text = entry.value<std::string>();
        if (!text) r.fail("dns_servers", "must be an array of strings");
        auto server = parse_dns_server(*text);
        if (!server) r.fail("dns_servers", "'" + *text + "' is not an IP address, \"ip:port\" or \"[ipv6]:port\"");
        f.dns_servers.push_back(*server);
      }
    }
    if (auto v = r.integer("dns_timeout_ms", 100, 60000)) f.dns_timeout = std::chrono::milliseconds(*v);
    r.integer_into("dns_tries", f.dns_tries, 1, 10);
    r.seconds_into("connect_timeout", f.connect_timeout, 1, 600);
    r.seconds_into("bounce_after", f.bounce_after, 1, 3600);
    r.integer_into("queue_limit", f.queue_limit, 1, 1000000);
    r.seconds_into("idle_timeout", f.idle_timeout, 1, 86400);
    r.reject_unknown();
  }
  // Outgoing streams verify peers against it even without an s2s listener.
  if (cfg.federation.enabled) check_readable(cfg.federation.ca_file, "federation.ca_file", source);
  if (default_listeners && cfg.federation.enabled) {
    cfg.listeners.push_back(Listener{"::", 5269, TlsMode::starttls, ListenerKind::s2s});
    cfg.listeners.push_back(Listener{"::", 5270, TlsMode::direct, ListenerKind::s2s});
  }
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (cfg.listeners[i].kind == ListenerKind::s2s && !cfg.federation.enabled)
      throw ConfigError(fmt::format("{}: key 'listener[{}].type': an s2s listener needs federation; set "
                                    "[federation] enabled = true or remove the listener", source, i));
  }

  if (const auto* t = top.table("offline")) {
    TableReader r(*t, "offline", source);
    r.integer_into("max_messages", cfg.offline.max_messages, 0, 1'000'000);
    r.reject_unknown();
  }

  if (const auto* t = top.table("stream_management")) {
    TableReader r(*t, "stream_management", source);
    auto& sm = cfg.stream_management;
    r.boolean_into("enabled", sm.enabled);
    r.seconds_into("resume_timeout", sm.resume_timeout, 0, 86400);
    r.integer_into("max_unacked", sm.max_unacked, 10, 1'000'000);
    r.reject_unknown();
  }

  if (const auto* t = top.table("archive")) {
    TableReader r(*t, "archive", source);
    auto& a = cfg.archive;
    r.boolean_into("enabled", a.enabled);
    if (auto v = r.string("default")) {
      if (*v == "always") a.default_mode = Archive::Default::always;
      else if (*v == "never") a.default_mode = Archive::Default::never;
      else if (*v == "roster") a.default_mode = Archive::Default::roster;
      else r.fail("default", "must be \"always\", \"never\" or \"roster\", not '" + *v + "'");
    }
    r.integer_into("retention_days", a.retention_days, 0, 100000);
    r.integer_into("max_page", a.max_page, 1, 10000);
    r.reject_unknown();
  }

  if (const auto* t = top.table("keepalive")) {
    TableReader r(*t, "keepalive", source);
    r.seconds_into("ping_interval", cfg.keepalive.ping_interval, 1, 86400);
    r.seconds_into("ping_timeout", cfg.keepalive.ping_timeout, 1, 3600);
    r.reject_unknown();
  }

  top.reject_unknown();
  return cfg;
}

Config load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(fmt::format("cannot read configuration file {}", file.string()));
  std::stringstream buf;
  buf << in.rdbuf();
  auto base = std::filesystem::absolute(file).parent_path();
  Config cfg = parse(buf.str(), base, file.string());
  cfg.path = std::filesystem::absolute(file);
  return cfg;
}

}  // namespace herald::config
