// heraldctl check dns DOMAIN: resolve and connect like federation/s2s/s2s_out.cpp does, and
// say what was found. Everything runs on a local io_context, one step at a time (blocking
// this thread is fine in heraldctl); every network step is bounded: DNS by the resolver's
// own timeouts, each connection attempt by [federation] connect_timeout.
#include <fmt/core.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "federation/cert_names.hpp"
#include "federation/dns/plan.hpp"
#include "federation/dns/resolver.hpp"
#include "server/net/asio.hpp"
#include "server/xml/element.hpp"
#include "server/xml/serializer.hpp"
#include "server/xml/stream_parser.hpp"
#include "tools/heraldctl/check.hpp"
#include "tools/heraldctl/check_report.hpp"

namespace herald::heraldctl {

namespace {

namespace dns = federation::dns;

constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kStreamErrorsNs = "urn:ietf:params:xml:ns:xmpp-streams";

// Runs `task` on `io` until it completes. Other work may stay queued (c-ares's socket
// watchers, a cancelled timer's handler): it runs during the next call, or is dropped
// with the io_context.
template <class T>
T run_on(asio::io_context& io, awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    failure = e;
    if (!e) result = std::move(value);
    done = true;
  });
  io.restart();
  while (!done) {
    if (io.run_one() == 0 && !done) throw std::logic_error("internal error: the event loop ran out of work");
  }
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

// ------------------------------------------------------------------ one connection

struct Event {
  enum class Kind { open, element, close } kind;
  xml::Element element;
};

struct Collector : xml::StreamHandler {
  std::deque<Event> events;
  void on_stream_open(xml::Element header) override { events.push_back({Event::Kind::open, std::move(header)}); }
  void on_stanza(xml::Element stanza) override { events.push_back({Event::Kind::element, std::move(stanza)}); }
  void on_stream_close() override { events.push_back({Event::Kind::close, {}}); }
};

// Shared between the attempt's coroutine and its watchdog timer's handler, which may run
// after the coroutine has finished.
struct Connection {
  Connection(asio::io_context& io, asio::ssl::context& tls) : stream(io, tls) {}
  asio::ssl::stream<asio::ip::tcp::socket> stream;
  Collector collector;
  std::unique_ptr<xml::StreamParser> parser;
  std::array<char, 4096> buffer{};
  bool timed_out = false;

  void close() {
    boost::system::error_code ignored;
    stream.lowest_layer().close(ignored);
  }
};

struct Probe {
  asio::ip::tcp::endpoint endpoint;
  std::string domain;  // the remote domain: stream 'to', SNI, the name to check
  std::string from;    // our domain: stream 'from' (may be empty)
  bool direct_tls = false;
  std::string ca_file;
};

std::string words(const boost::system::error_code& ec) {
  if (ec == asio::error::eof) return "the server closed the connection";
  if (ec == asio::error::connection_reset) return "the server reset the connection";
  std::string text = ec.message();
  if (ec.category() == asio::error::get_ssl_category()) text = "TLS error: " + text;
  return text;
}

// "host-unknown (this server does not serve 'x')"
std::pair<std::string, std::string> stream_error_of(const xml::Element& error) {
  std::string condition;
  std::string text;
  for (const auto* child : error.elements()) {
    if (child->ns() != kStreamErrorsNs) continue;
    if (child->name() == "text") {
      text = child->text();
    } else if (condition.empty()) {
      condition = child->name();
    }
  }
  if (condition.empty()) condition = "undefined-condition";
  std::string line = "stream error <" + condition + "/>";
  if (!text.empty()) line += " (" + text + ")";
  return {condition, line};
}

// The next stream event; nullopt with `error` set when the connection fails or the XML is bad.
awaitable<std::optional<Event>> next_event(std::shared_ptr<Connection> c, std::string& error) {
  for (;;) {
    if (!c->collector.events.empty()) {
      Event ev = std::move(c->collector.events.front());
      c->collector.events.pop_front();
      co_return ev;
    }
    boost::system::error_code ec;
    const std::size_t n =
        co_await c->stream.next_layer().async_read_some(asio::buffer(c->buffer), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      error = words(ec);
      co_return std::nullopt;
    }
    if (c->parser->feed(std::string_view(c->buffer.data(), n)) == xml::Status::error) {
      error = "the server sent bad XML";
      if (c->parser->error()) error += ": " + c->parser->error()->detail;
      co_return std::nullopt;
    }
  }
}

// STARTTLS negotiation (RFC 6120 §5): stream header, features, <starttls/>, <proceed/>.
// Returns false with out.reached/out.error set when it fails.
awaitable<bool> negotiate_starttls(std::shared_ptr<Connection> c, const Probe& probe, Attempt& out) {
  out.reached = Stage::stream;
  c->parser = std::make_unique<xml::StreamParser>(c->collector, xml::Limits{});
  std::string header =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
      "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'";
  if (!probe.from.empty()) header += " from='" + xml::escape_attr(probe.from) + "'";
  header += " to='" + xml::escape_attr(probe.domain) + "' version='1.0'>";
  boost::system::error_code ec;
  co_await asio::async_write(c->stream.next_layer(), asio::buffer(header), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.error = "cannot send the stream header: " + words(ec);
    co_return false;
  }
  std::string error;
  std::optional<Event> open = co_await next_event(c, error);
  if (!open) {
    out.error = "no stream header from the server: " + error;
    co_return false;
  }
  if (open->kind != Event::Kind::open) {
    out.error = "the server did not open an XMPP stream";
    co_return false;
  }
  std::optional<Event> features = co_await next_event(c, error);
  if (!features) {
    out.error = "no stream features from the server: " + error;
    co_return false;
  }
  if (features->kind != Event::Kind::element) {
    out.error = "the server closed the stream instead of sending its features";
    co_return false;
  }
  if (features->element.name() == "error" && features->element.ns() == kStreamsNs) {
    std::pair<std::string, std::string> error_words = stream_error_of(features->element);
    out.stream_error = error_words.first;
    out.error = error_words.second;
    co_return false;
  }
  if (features->element.name() != "features" || features->element.ns() != kStreamsNs) {
    out.error = "the server sent <" + features->element.name() + "/> instead of <stream:features/>";
    co_return false;
  }
  out.reached = Stage::starttls;
  if (features->element.child("starttls", kTlsNs) == nullptr) {
    out.error = "the server does not offer STARTTLS";
    co_return false;
  }
  const std::string starttls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
  co_await asio::async_write(c->stream.next_layer(), asio::buffer(starttls), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.error = "cannot send <starttls/>: " + words(ec);
    co_return false;
  }
  std::optional<Event> answer = co_await next_event(c, error);
  if (!answer) {
    out.error = "no answer to <starttls/>: " + error;
    co_return false;
  }
  if (answer->kind != Event::Kind::element) {
    out.error = "the server closed the stream instead of answering <starttls/>";
    co_return false;
  }
  if (answer->element.name() == "proceed" && answer->element.ns() == kTlsNs) co_return true;
  if (answer->element.name() == "failure" && answer->element.ns() == kTlsNs) {
    out.error = "the server answered <starttls/> with <failure/>";
  } else {
    out.error = "the server answered <starttls/> with <" + answer->element.name() + "/> instead of <proceed/>";
  }
  co_return false;
}

awaitable<void> negotiate(std::shared_ptr<Connection> c, const Probe& probe, Attempt& out) {
  boost::system::error_code ec;
  out.reached = Stage::connect;
  co_await c->stream.lowest_layer().async_connect(probe.endpoint, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.error = words(ec);
    co_return;
  }
  SSL_set_tlsext_host_name(c->stream.native_handle(), probe.domain.c_str());
  if (!probe.direct_tls) {
    const bool proceed = co_await negotiate_starttls(c, probe, out);
    if (!proceed) co_return;
  }
  out.reached = Stage::tls;
  co_await c->stream.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.error = words(ec);
    co_return;
  }
  out.reached = Stage::certificate;
  SSL* ssl = c->stream.native_handle();
  out.tls_version = SSL_get_version(ssl);
  X509* leaf = SSL_get0_peer_certificate(ssl);
  federation::CertCheck check;
  if (leaf == nullptr) {
    check.chain_error = "no certificate presented";
  } else {
    // As S2sManager::verify_peer does: the chain the peer sent, against our CA file.
    check = federation::check_chain(leaf, SSL_get_peer_cert_chain(ssl), probe.ca_file, probe.domain);
    if (probe.direct_tls) {
      check.name_ok = federation::matches_domain(check.ids, probe.domain, federation::Service::xmpps_server);
    }
  }
  out.cert = std::move(check);
}

awaitable<Attempt> attempt(asio::io_context& io, asio::ssl::context& tls, Probe probe, std::chrono::seconds timeout) {
  Attempt out;
  out.address = probe.endpoint.address().to_string();
  auto c = std::make_shared<Connection>(io, tls);
  // One bound for the whole attempt, as in S2sOut::attempt.
  asio::steady_timer watchdog(io);
  watchdog.expires_after(timeout);
  // A named handler: GCC 12 mishandles lambda temporaries with non-trivial captures in
  // coroutines.
  auto on_timeout = [c](const boost::system::error_code& ec) {
    if (ec) return;
    c->timed_out = true;
    c->close();
  };
  watchdog.async_wait(on_timeout);
  co_await negotiate(c, probe, out);
  watchdog.cancel();
  if (c->timed_out && !out.cert) {
    out.timed_out = true;
    if (out.reached == Stage::connect) {
      out.error = fmt::format("no connection within {} s ([federation] connect_timeout)", timeout.count());
    } else {
      out.error = fmt::format("no answer within {} s ([federation] connect_timeout)", timeout.count());
    }
  }
  c->close();
  co_return out;
}

// ------------------------------------------------------------------ printing

void print_srv(std::string_view name, std::string_view mode, const dns::SrvResult& result) {
  fmt::print("  {} ({}):\n", name, mode);
  if (result.status == dns::Status::ok && !result.records.empty()) {
    for (const auto& record : result.records) fmt::print("    {}\n", describe_srv_record(record));
  } else {
    fmt::print("    {}\n", describe_srv_failure(result));
  }
}

void print_attempt(const TargetReport& target, const Attempt& a, const std::string& domain, const std::string& ca_file) {
  const std::string where = describe_endpoint(target.target.host, a.address, target.target.port);
  if (!a.cert) {
    std::string_view step;
    switch (a.reached) {
      case Stage::connect: step = "TCP connection failed"; break;
      case Stage::stream: step = "connected; XMPP stream failed"; break;
      case Stage::starttls: step = "connected; STARTTLS failed"; break;
      case Stage::tls: step = "connected; TLS handshake failed"; break;
      case Stage::certificate: step = "connected"; break;
    }
    fmt::print("    {}: {}: {}\n", a.address, step, a.error);
    return;
  }
  fmt::print("    {}: connected; {}TLS handshake done ({}, SNI {})\n", a.address,
             target.target.direct_tls ? "" : "STARTTLS accepted; ", a.tls_version, domain);
  const auto& cert = *a.cert;
  const auto now = SystemClock::now();
  if (cert.chain_ok) {
    fmt::print("      chain:   valid (trusted by {})\n", ca_file);
  } else {
    fmt::print("      chain:   NOT valid: {}\n", cert.chain_error);
  }
  fmt::print("      names:   {}\n", describe(cert.ids));
  fmt::print("      {}: {}\n", domain, cert.name_ok ? "named by the certificate" : "NOT named by the certificate");
  if (cert.not_after) fmt::print("      expires: {}\n", describe_expiry(*cert.not_after, now));
  if (cert.ok()) {
    fmt::print("      => OK\n");
  } else {
    fmt::print("      => {}\n", certificate_problem(cert, domain, where, ca_file, now));
  }
}

}  // namespace

int check_dns(const config::Config& cfg, const std::string& domain) {
  const auto& fed = cfg.federation;
  dns::Resolver::Options options;
  for (const auto& s : fed.dns_servers) options.servers.emplace_back(s.address, s.port);
  options.timeout = fed.dns_timeout;
  options.tries = static_cast<int>(fed.dns_tries);

  // Declaration order is destruction order backwards: the resolver goes before the
  // io_context it runs on, and the io_context (with any connection a pending handler
  // still holds) before the TLS context.
  asio::ssl::context tls(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_options(tls.native_handle(), SSL_OP_NO_COMPRESSION);
  // The certificate is checked after the handshake (check_chain), so every problem can
  // be described rather than ending in a handshake alert.
  SSL_CTX_set_verify(tls.native_handle(), SSL_VERIFY_NONE, nullptr);
  asio::io_context io;
  std::unique_ptr<dns::Resolver> resolver;
  try {
    resolver = std::make_unique<dns::Resolver>(io, options);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot set up the DNS resolver: {} (see [federation] dns_servers in {})",
                                         e.what(), cfg.path.string()));
  }

  std::string servers;
  for (const auto& s : fed.dns_servers) {
    if (!servers.empty()) servers += ", ";
    servers += s.address.find(':') != std::string::npos ? fmt::format("[{}]:{}", s.address, s.port)
                                                        : fmt::format("{}:{}", s.address, s.port);
  }
  if (servers.empty()) servers = "the system's (/etc/resolv.conf)";
  fmt::print("Federation check for {}\n", domain);
  fmt::print("DNS servers: {}; timeout {} ms, {} tr{}\n", servers, fed.dns_timeout.count(), fed.dns_tries,
             fed.dns_tries == 1 ? "y" : "ies");
  if (!fed.enabled) {
    fmt::print("Note: [federation] enabled = false in {}: this server does not federate at all\n",
               cfg.path.string());
  }
  fmt::print("\n");

  DnsReport report;
  report.domain = domain;
  report.ca_file = fed.ca_file.string();
  const std::string xmpps_name = std::string(dns::xmpps_server_service) + domain;
  const std::string xmpp_name = std::string(dns::xmpp_server_service) + domain;
  report.xmpps = run_on(io, resolver->srv(xmpps_name));
  report.xmpp = run_on(io, resolver->srv(xmpp_name));
  fmt::print("SRV records:\n");
  print_srv(xmpps_name, "direct TLS", report.xmpps);
  print_srv(xmpp_name, "STARTTLS", report.xmpp);

  report.plan = dns::connection_plan(domain, report.xmpps, report.xmpp);
  fmt::print("\nConnection plan (tried in this order):\n");
  if (report.plan.targets.empty()) {
    fmt::print("  none: {} says \".\" (no service): it accepts no server-to-server connections\n", domain);
  } else {
    if (report.plan.fallback) {
      fmt::print("  no usable SRV records: falling back to the A/AAAA records of {} on port {}\n", domain,
                 dns::xmpp_server_port);
    }
    std::size_t n = 0;
    for (const auto& target : report.plan.targets) fmt::print("  {}. {}\n", ++n, describe_target(target));
  }

  std::size_t n = 0;
  for (const auto& target : report.plan.targets) {
    fmt::print("\n{}. {}\n", ++n, describe_target(target));
    TargetReport t;
    t.target = target;
    const dns::AddrResult addresses = run_on(io, resolver->addresses(target.host));
    t.address_status = addresses.status;
    t.address_error = addresses.error;
    for (const auto& address : addresses.addresses) t.addresses.push_back(address.to_string());
    if (t.addresses.empty()) {
      std::string why(dns::to_string(addresses.status));
      if (!addresses.error.empty()) why = addresses.error;
      fmt::print("  addresses: none ({})\n", why);
    } else {
      std::string list;
      for (const auto& a : t.addresses) list += (list.empty() ? "" : ", ") + a;
      fmt::print("  addresses: {}\n", list);
    }
    for (const auto& address : addresses.addresses) {
      Probe probe;
      probe.endpoint = asio::ip::tcp::endpoint(address, target.port);
      probe.domain = domain;
      if (!cfg.hosts.empty()) probe.from = cfg.hosts.front().domain;
      probe.direct_tls = target.direct_tls;
      probe.ca_file = report.ca_file;
      Attempt a = run_on(io, attempt(io, tls, std::move(probe), fed.connect_timeout));
      print_attempt(t, a, domain, report.ca_file);
      t.attempts.push_back(std::move(a));
    }
    report.targets.push_back(std::move(t));
  }

  const Verdict verdict = dns_verdict(report, SystemClock::now());
  fmt::print("\n{}\n", verdict.summary);
  return verdict.ok ? 0 : 1;
}

}  // namespace herald::heraldctl
