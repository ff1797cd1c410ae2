// DNS resolution for federation: c-ares driven by one worker's io_context. No resolver
// thread and no blocking call: c-ares's sockets are watched by Asio descriptors (on dup()s
// of c-ares's fds) and its retransmissions by one steady_timer. Results are cached by TTL
// inside the Resolver, which belongs to one worker, so nothing here takes a lock.
//
// TTLs: SRV answers are parsed by parse_srv_answer() (answer.hpp) from the raw answer
// ares_query returns, which gives the real record TTLs; A/AAAA TTLs come from
// ares_getaddrinfo's per-address ai_ttl (and CNAME TTLs). Both are capped at max_ttl.
// NXDOMAIN/NODATA are cached for negative_ttl (the SOA minimum of RFC 2308 is not used).
// Errors and timeouts are not cached.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "federation/dns/answer.hpp"
#include "server/net/asio.hpp"

namespace herald::federation::dns {

struct AddrResult {
  Status status = Status::error;
  std::vector<asio::ip::address> addresses;  // IPv4 and IPv6, in c-ares's RFC 6724 order
  std::chrono::seconds ttl{0};               // as for SrvResult::ttl
  std::string error;
  bool from_cache = false;
};

struct ResolverOptions {
  // DNS servers as (address, port); IPv4 or IPv6 literals. Empty: the system's
  // /etc/resolv.conf.
  std::vector<std::pair<std::string, std::uint16_t>> servers;
  // c-ares's timeout for the first try (c-ares doubles it for each later round).
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  // Every lookup completes within timeout * tries * (number of servers): past that it
  // reports Status::timeout even if c-ares is still retrying.
  std::chrono::seconds max_ttl{3600};
  std::chrono::seconds negative_ttl{60};
  std::size_t max_cache_entries = 10000;
};

class Resolver {
 public:
  using Options = ResolverOptions;

  // Throws std::invalid_argument for a server address that is not an IP literal, and
  // std::runtime_error when c-ares cannot be initialised. Must be destroyed before `io`.
  explicit Resolver(asio::io_context& io, Options options = {});
  // Lookups still in flight complete with Status::error ("resolver shut down"), posted to
  // their executors; nothing is called back into the destroyed Resolver.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Call from the thread running `io`. `name` is the full owner name, e.g.
  // "_xmpp-server._tcp.example.org"; no search domains are appended.
  awaitable<SrvResult> srv(std::string name);
  // A and AAAA records of `host` (an IP literal resolves to itself).
  awaitable<AddrResult> addresses(std::string host);

  void clear_cache();

  struct Stats {
    std::uint64_t lookups = 0;     // srv() and addresses() calls
    std::uint64_t cache_hits = 0;  // answered from the cache
    std::uint64_t queries = 0;     // handed to c-ares (i.e. to the network)
  };
  Stats stats() const;
  const Options& options() const;

  struct Impl;  // named here only so resolver.cpp's helpers can refer to it


 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald::federation::dns
