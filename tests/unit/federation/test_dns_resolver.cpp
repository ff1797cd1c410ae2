// The c-ares resolver against a real DNS server: Debian's dnsmasq, started by the test on a
// free port of 127.0.0.1 with a zone made for these cases. Skipped (with a message) when
// /usr/sbin/dnsmasq is not installed.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "federation/dns/plan.hpp"
#include "federation/dns/resolver.hpp"
#include "tests/unit/federation/dns_message.hpp"

extern char** environ;

using herald::federation::dns::AddrResult;
using herald::federation::dns::connection_plan;
using herald::federation::dns::ConnectionPlan;
using herald::federation::dns::Resolver;
using herald::federation::dns::srv_says_no_service;
using herald::federation::dns::SrvRecord;
using herald::federation::dns::SrvResult;
using herald::federation::dns::Status;
using herald::federation::dns::Target;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* dnsmasq_path = "/usr/sbin/dnsmasq";

bool dnsmasq_available() { return ::access(dnsmasq_path, X_OK) == 0; }

// A UDP socket on a free port of `host`; kept open it is a DNS server that never answers.
class UdpSocket {
 public:
  explicit UdpSocket(const char* host = "127.0.0.1") {
    const bool v6 = std::string(host).find(':') != std::string::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (v6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
      in6->sin6_family = AF_INET6;
      ::inet_pton(AF_INET6, host, &in6->sin6_addr);
      length = sizeof(sockaddr_in6);
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&storage);
      in->sin_family = AF_INET;
      ::inet_pton(AF_INET, host, &in->sin_addr);
      length = sizeof(sockaddr_in);
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("cannot bind a UDP socket on ") + host);
    }
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length);
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  }
  ~UdpSocket() { close(); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A port on which nothing listens (UDP to it draws ICMP port unreachable).
std::uint16_t unused_port(const char* host = "127.0.0.1") {
  UdpSocket probe(host);
  return probe.port();
}

bool ipv6_loopback_usable() {
  try {
    UdpSocket probe("::1");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// dnsmasq serving the test zone on `host`:<free port>, in the foreground, until destroyed.
class Dnsmasq {
 public:
  explicit Dnsmasq(const char* host = "127.0.0.1") : host_(host) {
    port_ = unused_port(host);
    std::vector<std::string> args{
        dnsmasq_path,
        "--no-daemon",
        "--port=" + std::to_string(port_),
        std::string("--listen-address=") + host,
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--local=/test/",  // authoritative for *.test: unknown names get NXDOMAIN
        "--local-ttl=60",
        "--srv-host=_xmpp-server._tcp.a.test,h1.a.test,5269,10,60",
        "--srv-host=_xmpp-server._tcp.a.test,h2.a.test,5270,20,0",
        "--srv-host=_xmpps-server._tcp.a.test,h1.a.test,5223,10,0",
        "--host-record=h1.a.test,127.0.0.2",
        "--host-record=h2.a.test,127.0.0.5",
        "--host-record=h6.a.test,::1",
        "--host-record=both.a.test,127.0.0.3,::1",
        "--host-record=short.a.test,127.0.0.4,2",
        "--srv-host=_xmpp-server._tcp.none.test",  // no target: "."
        "--srv-host=_xmpps-server._tcp.none.test",
    };
    for (int i = 0; i < 20; ++i) {
      args.push_back("--srv-host=_xmpp-server._tcp.d" + std::to_string(i) + ".test,t" + std::to_string(i) +
                     ".test," + std::to_string(6000 + i));
    }
    // 40 records with long targets: more than 512 bytes, so UDP answers are truncated and
    // c-ares asks again over TCP.
    for (int i = 0; i < 40; ++i) {
      args.push_back("--srv-host=_xmpp-server._tcp.big.test,host-with-a-rather-long-name-" + std::to_string(i) +
                     ".big.test,5269," + std::to_string(i % 5) + "," + std::to_string(i));
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, dnsmasq_path, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start dnsmasq");
    wait_until_answering();
  }
  ~Dnsmasq() { stop(); }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  std::uint16_t port() const { return port_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // Plain blocking sockets: this is test scaffolding, outside any io_context.
  void wait_until_answering() {
    herald::test::DnsMessage query(0x0100);
    query.question("h1.a.test", 1);
    const std::vector<std::uint8_t> bytes = query.bytes();
    for (int attempt = 0; attempt < 100; ++attempt) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("dnsmasq exited at start");
      }
      UdpSocket client(host_.find(':') != std::string::npos ? "::1" : "127.0.0.1");
      sockaddr_storage to{};
      socklen_t length = 0;
      if (host_.find(':') != std::string::npos) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&to);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port_);
        ::inet_pton(AF_INET6, host_.c_str(), &in6->sin6_addr);
        length = sizeof(sockaddr_in6);
      } else {
        auto* in = reinterpret_cast<sockaddr_in*>(&to);
        in->sin_family = AF_INET;
        in->sin_port = htons(port_);
        ::inet_pton(AF_INET, host_.c_str(), &in->sin_addr);
        length = sizeof(sockaddr_in);
      }
      ::sendto(client.fd(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), length);
      pollfd pfd{client.fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) == 1 && (pfd.revents & POLLIN)) {
        std::uint8_t answer[512];
        if (::recv(client.fd(), answer, sizeof answer, 0) > 0) return;
      }
      ::usleep(20000);
    }
    stop();
    throw std::runtime_error("dnsmasq did not answer");
  }

  std::string host_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

Resolver::Options options_for(std::uint16_t port, std::chrono::milliseconds timeout = 500ms, int tries = 2,
                              const char* host = "127.0.0.1") {
  Resolver::Options options;
  options.servers.emplace_back(host, port);
  options.timeout = timeout;
  options.tries = tries;
  return options;
}

// Runs `task` on `io` until it completes (other work may stay queued).
template <class T>
T await_in(asio::io_context& io, awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    if (e) {
      failure = e;
    } else {
      result = std::move(value);
    }
  });
  io.restart();
  while (!result && !failure) {
    if (io.run_one() == 0) break;
  }
  if (failure) std::rethrow_exception(failure);
  REQUIRE(result.has_value());
  return std::move(*result);
}

// Advances `io` for `duration` (timers of the resolver included).
void pass(asio::io_context& io, std::chrono::milliseconds duration) {
  asio::steady_timer timer(io);
  timer.expires_after(duration);
  bool done = false;
  timer.async_wait([&](const boost::system::error_code&) { done = true; });
  io.restart();
  while (!done) {
    if (io.run_one() == 0) break;
  }
}

std::vector<std::string> addresses_of(const AddrResult& result) {
  std::vector<std::string> out;
  for (const auto& address : result.addresses) out.push_back(address.to_string());
  std::sort(out.begin(), out.end());
  return out;
}

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

#define REQUIRE_DNSMASQ()                                                   \
  if (!dnsmasq_available()) {                                               \
    MESSAGE("skipped: " << dnsmasq_path << " is not installed (dnsmasq-base)"); \
    return;                                                                 \
  }

}  // namespace

TEST_CASE("resolver: SRV records with their TTL, then from the cache") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));

  SrvResult first = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  REQUIRE(first.status == Status::ok);
  CHECK_FALSE(first.from_cache);
  CHECK(first.ttl == 60s);
  REQUIRE(first.records.size() == 2);
  std::vector<SrvRecord> records = first.records;
  std::sort(records.begin(), records.end(), [](auto& a, auto& b) { return a.priority < b.priority; });
  CHECK(records[0] == SrvRecord{10, 60, 5269, "h1.a.test"});
  CHECK(records[1] == SrvRecord{20, 0, 5270, "h2.a.test"});
  CHECK(resolver.stats().queries == 1);

  SrvResult again = await_in(io, resolver.srv("_XMPP-server._tcp.A.test."));  // same key
  CHECK(again.status == Status::ok);
  CHECK(again.from_cache);
  CHECK(again.records == first.records);
  CHECK(again.ttl <= 60s);
  CHECK(again.ttl >= 59s);
  CHECK(resolver.stats().queries == 1);
  CHECK(resolver.stats().cache_hits == 1);
  CHECK(resolver.stats().lookups == 2);
}

TEST_CASE("resolver: within the TTL the answer comes from the cache even with the server gone") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port(), 200ms, 1));
  REQUIRE(await_in(io, resolver.srv("_xmpp-server._tcp.a.test")).status == Status::ok);
  REQUIRE(await_in(io, resolver.addresses("h1.a.test")).status == Status::ok);
  REQUIRE(await_in(io, resolver.srv("_xmpp-server._tcp.zz.test")).status == Status::not_found);
  dns.stop();

  SrvResult srv = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  CHECK(srv.status == Status::ok);
  CHECK(srv.from_cache);
  AddrResult addr = await_in(io, resolver.addresses("h1.a.test"));
  CHECK(addr.status == Status::ok);
  CHECK(addr.from_cache);
  CHECK(addresses_of(addr) == std::vector<std::string>{"127.0.0.2"});
  SrvResult negative = await_in(io, resolver.srv("_xmpp-server._tcp.zz.test"));
  CHECK(negative.status == Status::not_found);
  CHECK(negative.from_cache);
  CHECK(resolver.stats().queries == 3);

  // Proof that the server really is gone: anything not cached fails now.
  SrvResult uncached = await_in(io, resolver.srv("_xmpp-server._tcp.d1.test"));
  CHECK(uncached.status != Status::ok);
  CHECK(resolver.stats().queries == 4);

  resolver.clear_cache();
  CHECK(await_in(io, resolver.srv("_xmpp-server._tcp.a.test")).status != Status::ok);
}

TEST_CASE("resolver: TTLs are capped by max_ttl and entries expire") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver::Options options = options_for(dns.port());
  options.max_ttl = 1s;
  Resolver resolver(io, options);
  SrvResult first = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  REQUIRE(first.status == Status::ok);
  CHECK(first.ttl == 1s);
  CHECK(await_in(io, resolver.srv("_xmpp-server._tcp.a.test")).from_cache);
  pass(io, 1100ms);
  SrvResult later = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  CHECK(later.status == Status::ok);
  CHECK_FALSE(later.from_cache);
  CHECK(resolver.stats().queries == 2);

  // A record's own short TTL (2 s) is honoured below the cap as well.
  Resolver::Options uncapped = options_for(dns.port());
  Resolver second(io, uncapped);
  AddrResult short_lived = await_in(io, second.addresses("short.a.test"));
  REQUIRE(short_lived.status == Status::ok);
  CHECK(short_lived.ttl == 2s);
}

TEST_CASE("resolver: NXDOMAIN and NODATA are not_found and cached for negative_ttl") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver::Options options = options_for(dns.port());
  options.negative_ttl = 30s;
  Resolver resolver(io, options);
  SrvResult nx = await_in(io, resolver.srv("_xmpp-server._tcp.zz.test"));
  CHECK(nx.status == Status::not_found);
  CHECK(nx.ttl == 30s);
  CHECK(nx.error.find("NXDOMAIN") != std::string::npos);
  SrvResult nodata = await_in(io, resolver.srv("h1.a.test"));  // has an A record, no SRV
  CHECK(nodata.status == Status::not_found);
  CHECK(await_in(io, resolver.srv("h1.a.test")).from_cache);
  AddrResult no_host = await_in(io, resolver.addresses("nope.a.test"));
  CHECK(no_host.status == Status::not_found);
  CHECK(await_in(io, resolver.addresses("nope.a.test")).from_cache);
}

TEST_CASE("resolver: a \".\" target says there is no service") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  SrvResult none = await_in(io, resolver.srv("_xmpp-server._tcp.none.test"));
  REQUIRE(none.status == Status::ok);
  CHECK(srv_says_no_service(none.records));
  SrvResult none_tls = await_in(io, resolver.srv("_xmpps-server._tcp.none.test"));
  ConnectionPlan plan = connection_plan("none.test", none_tls, none);
  CHECK(plan.targets.empty());
  CHECK_FALSE(plan.fallback);
}

TEST_CASE("resolver: a refusing server is an error, not a hang") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  SrvResult refused = await_in(io, resolver.srv("_xmpp-server._tcp.example.com"));  // outside its zone
  CHECK(refused.status == Status::error);
  CHECK_FALSE(refused.error.empty());
  CHECK(await_in(io, resolver.srv("_xmpp-server._tcp.example.com")).from_cache == false);  // errors are not cached
}

TEST_CASE("resolver: A and AAAA records, IPv4 and IPv6") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  AddrResult v4 = await_in(io, resolver.addresses("h1.a.test"));
  REQUIRE(v4.status == Status::ok);
  CHECK(addresses_of(v4) == std::vector<std::string>{"127.0.0.2"});
  CHECK(v4.ttl == 60s);
  AddrResult v6 = await_in(io, resolver.addresses("h6.a.test"));
  REQUIRE(v6.status == Status::ok);
  CHECK(addresses_of(v6) == std::vector<std::string>{"::1"});
  CHECK(v6.addresses.front().is_v6());
  AddrResult both = await_in(io, resolver.addresses("both.a.test"));
  REQUIRE(both.status == Status::ok);
  CHECK(addresses_of(both) == std::vector<std::string>{"127.0.0.3", "::1"});
  AddrResult literal = await_in(io, resolver.addresses("127.0.0.9"));
  REQUIRE(literal.status == Status::ok);
  CHECK(addresses_of(literal) == std::vector<std::string>{"127.0.0.9"});
}

TEST_CASE("resolver: a whole connection plan from live SRV lookups") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  SrvResult xmpps = await_in(io, resolver.srv("_xmpps-server._tcp.a.test"));
  SrvResult xmpp = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  ConnectionPlan plan = connection_plan("a.test", xmpps, xmpp);
  REQUIRE(plan.targets.size() == 3);
  CHECK(plan.targets[2] == Target{"h2.a.test", 5270, false});  // priority 20 last
  CHECK(std::count(plan.targets.begin(), plan.targets.end(), Target{"h1.a.test", 5223, true}) == 1);
  CHECK(std::count(plan.targets.begin(), plan.targets.end(), Target{"h1.a.test", 5269, false}) == 1);

  SrvResult none_tls = await_in(io, resolver.srv("_xmpps-server._tcp.plain.test"));
  SrvResult none = await_in(io, resolver.srv("_xmpp-server._tcp.plain.test"));
  ConnectionPlan fallback = connection_plan("plain.test", none_tls, none);
  CHECK(fallback.fallback);
  CHECK(fallback.targets == std::vector<Target>{{"plain.test", 5269, false}});
}

TEST_CASE("resolver: an answer too big for UDP arrives over TCP") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  SrvResult big = await_in(io, resolver.srv("_xmpp-server._tcp.big.test"));
  REQUIRE(big.status == Status::ok);
  CHECK(big.records.size() == 40);
  CHECK(big.ttl == 60s);
  const auto found = std::find_if(big.records.begin(), big.records.end(), [](const SrvRecord& r) {
    return r.target == "host-with-a-rather-long-name-17.big.test";
  });
  REQUIRE(found != big.records.end());
  CHECK(*found == SrvRecord{2, 17, 5269, "host-with-a-rather-long-name-17.big.test"});
}

TEST_CASE("resolver: many lookups at once on one io_context") {
  REQUIRE_DNSMASQ();
  Dnsmasq dns;
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port()));
  std::vector<std::optional<SrvResult>> results(20);
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(io, resolver.srv("_xmpp-server._tcp.d" + std::to_string(i) + ".test"),
                   [&results, i](std::exception_ptr, SrvResult r) { results[i] = std::move(r); });
  }
  io.run();  // returns only once every wait of the resolver is gone
  for (int i = 0; i < 20; ++i) {
    REQUIRE(results[i].has_value());
    REQUIRE(results[i]->status == Status::ok);
    CHECK(results[i]->records == std::vector<SrvRecord>{{0, 0, static_cast<std::uint16_t>(6000 + i),
                                                          "t" + std::to_string(i) + ".test"}});
  }
  CHECK(resolver.stats().queries == 20);
}

TEST_CASE("resolver: a DNS server on IPv6 with a non-53 port") {
  REQUIRE_DNSMASQ();
  if (!ipv6_loopback_usable()) {
    MESSAGE("skipped: ::1 is not usable here");
    return;
  }
  Dnsmasq dns("::1");
  asio::io_context io;
  Resolver resolver(io, options_for(dns.port(), 500ms, 2, "::1"));
  SrvResult r = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  CHECK(r.status == Status::ok);
  CHECK(r.records.size() == 2);
}

TEST_CASE("resolver: a port where nothing listens fails fast") {
  asio::io_context io;
  Resolver resolver(io, options_for(unused_port(), 1000ms, 2));
  const auto start = Clock::now();
  SrvResult r = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  const auto elapsed = ms_since(start);
  CHECK(r.status == Status::error);  // ICMP port unreachable: connection refused
  CHECK(r.error.find("refused") != std::string::npos);
  CHECK(elapsed < 900);  // well before one timeout
  AddrResult a = await_in(io, resolver.addresses("h1.a.test"));
  CHECK(a.status == Status::error);
}

TEST_CASE("resolver: a server that never answers times out within the bound; the loop keeps running") {
  UdpSocket silent;  // bound, never read
  asio::io_context io;
  Resolver resolver(io, options_for(silent.port(), 200ms, 2));

  // A ticker on the same io_context: if a lookup blocked the thread, it would stall.
  int ticks = 0;
  bool stop = false;
  asio::steady_timer ticker(io);
  std::function<void()> tick = [&] {
    ticker.expires_after(10ms);
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec || stop) return;
      ++ticks;
      tick();
    });
  };
  tick();

  auto start = Clock::now();
  SrvResult srv = await_in(io, resolver.srv("_xmpp-server._tcp.a.test"));
  auto elapsed = ms_since(start);
  CHECK(srv.status == Status::timeout);
  CHECK(elapsed >= 390);       // timeout * tries
  CHECK(elapsed < 400 + 500);  // ... plus slack for a loaded machine
  // A blocked thread would give no ticks at all; a busy machine may delay some.
  CHECK(ticks >= 10);
  CHECK(resolver.stats().queries == 1);

  ticks = 0;
  start = Clock::now();
  AddrResult addr = await_in(io, resolver.addresses("h1.a.test"));
  elapsed = ms_since(start);
  CHECK(addr.status == Status::timeout);
  CHECK(elapsed >= 390);
  CHECK(elapsed < 400 + 500);
  CHECK(ticks >= 10);

  // Timeouts are not cached.
  CHECK_FALSE(await_in(io, resolver.srv("_xmpp-server._tcp.a.test")).from_cache);
  stop = true;
  ticker.cancel();
}

TEST_CASE("resolver: destroying it with lookups in flight completes them with an error") {
  UdpSocket silent;
  asio::io_context io;
  auto resolver = std::make_unique<Resolver>(io, options_for(silent.port(), 1000ms, 3));
  std::optional<SrvResult> srv;
  std::optional<AddrResult> addr;
  asio::co_spawn(io, resolver->srv("_xmpp-server._tcp.a.test"),
                 [&](std::exception_ptr, SrvResult r) { srv = std::move(r); });
  asio::co_spawn(io, resolver->addresses("h1.a.test"), [&](std::exception_ptr, AddrResult r) { addr = std::move(r); });
  asio::steady_timer later(io);
  later.expires_after(50ms);
  later.async_wait([&](const boost::system::error_code&) { resolver.reset(); });
  const auto start = Clock::now();
  io.run();  // nothing may be left waiting once the resolver is gone
  CHECK(ms_since(start) < 1000);
  REQUIRE(srv.has_value());
  CHECK(srv->status == Status::error);
  CHECK(srv->error == "resolver shut down");
  REQUIRE(addr.has_value());
  CHECK(addr->status == Status::error);
}

TEST_CASE("resolver: bad input is reported, not thrown into the io_context") {
  asio::io_context io;
  CHECK_THROWS_AS(Resolver(io, options_for(53, 100ms, 1, "not-an-address")), std::invalid_argument);
  Resolver resolver(io, options_for(unused_port(), 200ms, 1));
  CHECK(await_in(io, resolver.srv("")).status == Status::error);
  CHECK(await_in(io, resolver.addresses(std::string("a\0b", 3))).status == Status::error);
  SrvResult long_label = await_in(io, resolver.srv(std::string(70, 'a') + ".test"));
  CHECK(long_label.status == Status::error);
}
