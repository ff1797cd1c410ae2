#include "federation/dns/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <stdexcept>
#include <unordered_map>

namespace herald::federation::dns {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int dns_class_in = 1;
constexpr int dns_type_srv = 33;

void init_library_once() {
  // c-ares 1.18 wants this before the first channel; it is a no-op on POSIX but not
  // thread-safe, hence the function-local static.
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS) {
    throw std::runtime_error(std::string("cannot initialise c-ares: ") + ares_strerror(status));
  }
}

// Cache keys compare names case-insensitively and without a trailing dot.
std::string normalised(std::string_view name) {
  std::string key(name);
  for (char& c : key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (key.size() > 1 && key.back() == '.') key.pop_back();
  return key;
}

template <class Result>
Result failed(Status status, std::string error) {
  Result result;
  result.status = status;
  result.error = std::move(error);
  return result;
}

// c-ares's status codes in Herald's terms.
template <class Result>
Result from_ares_status(int code, std::string_view what) {
  switch (code) {
    case ARES_ENOTFOUND: return failed<Result>(Status::not_found, "no such domain (NXDOMAIN)");
    case ARES_ENODATA: return failed<Result>(Status::not_found, "no " + std::string(what) + " records (NODATA)");
    case ARES_ETIMEOUT: return failed<Result>(Status::timeout, "no answer from the DNS servers");
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return failed<Result>(Status::error, "resolver shut down");
    case ARES_ECONNREFUSED:
      return failed<Result>(Status::error, "cannot reach the DNS servers (connection refused)");
    default: return failed<Result>(Status::error, ares_strerror(code));
  }
}

template <class Result>
class Cache {
 public:
  std::optional<Result> get(const std::string& key, Clock::time_point now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (it->second.expires <= now) {
      entries_.erase(it);
      return std::nullopt;
    }
    Result result = it->second.result;
    result.ttl = std::chrono::ceil<std::chrono::seconds>(it->second.expires - now);
    result.from_cache = true;
    return result;
  }

  void put(const std::string& key, const Result& result, Clock::time_point now,
           Clock::time_point expires, std::size_t cap) {
    if (cap == 0) return;
    if (entries_.size() >= cap && !entries_.count(key)) {
      std::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
      // Still full of live entries: drop one. Simple and bounded; a cache this full is
      // rare enough for federation that recency tracking is not worth its cost.
      if (entries_.size() >= cap) entries_.erase(entries_.begin());
    }
    entries_.insert_or_assign(key, Entry{result, expires});
  }

  void clear() { entries_.clear(); }

 private:
  struct Entry {
    Result result;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Entry> entries_;
};

// One c-ares socket as Asio sees it: a descriptor on our dup() of the fd, so closing it
// never closes c-ares's socket, plus what c-ares wants to hear about.
struct Watch {
  Watch(asio::io_context& io, ares_socket_t socket) : descriptor(io), fd(socket) {}
  asio::posix::stream_descriptor descriptor;
  ares_socket_t fd;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;  // an async_wait is outstanding
  bool writing = false;
  bool closed = false;
};

// A lookup in flight. c-ares owns it from ares_query/ares_getaddrinfo until its callback,
// which c-ares guarantees to call exactly once (with ARES_EDESTRUCTION at ares_destroy).
// The lookup's deadline may complete the waiter earlier; the object stays until c-ares
// lets go of it.
struct Pending {
  virtual ~Pending() = default;
  virtual void expire() = 0;
  Resolver::Impl* impl = nullptr;
  std::string key;
  std::multimap<Clock::time_point, Pending*>::iterator deadline;
  bool done = false;
};

template <class Result>
struct PendingResult : Pending {
  void finish(Result result);
  void expire() override;
  virtual void deliver(Result result) = 0;
};

}  // namespace

struct Resolver::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, Options opts);
  ~Impl();

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_srv_answer(void* arg, int status, int timeouts, unsigned char* answer, int length);
  static void on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* info);

  void sock_state(ares_socket_t fd, bool readable, bool writable);
  void arm(const std::shared_ptr<Watch>& watch);
  void on_ready(const std::shared_ptr<Watch>& watch, bool read, const boost::system::error_code& ec);
  void on_timer();
  void expire_deadlines();
  void schedule();
  void track(Pending* pending);
  void settle(const std::string& key, SrvResult& result);
  void settle(const std::string& key, AddrResult& result);

  template <class Handler>
  void start_srv(const std::string& name, std::string key, Handler handler);
  template <class Handler>
  void start_addresses(const std::string& host, std::string key, Handler handler);

  asio::io_context& io;
  Options options;
  ares_channel channel = nullptr;
  asio::steady_timer timer;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches;
  std::multimap<Clock::time_point, Pending*> deadlines;
  Cache<SrvResult> srv_cache;
  Cache<AddrResult> addr_cache;
  Stats stats;
  std::chrono::milliseconds bound{0};  // a lookup's overall limit
  bool shutting_down = false;
};

namespace {

template <class Result, class Handler>
struct PendingOp final : PendingResult<Result> {
  explicit PendingOp(Handler h) : handler(std::move(h)) {}
  // Always posted: the waiter never resumes inside c-ares (or inside ~Resolver).
  void deliver(Result result) override {
    auto executor = asio::get_associated_executor(handler, this->impl->io.get_executor());
    asio::post(executor, [h = std::move(handler), r = std::move(result)]() mutable {
      std::move(h)(std::move(r));
    });
  }
  Handler handler;
};

}  // namespace

template <class Result>
void PendingResult<Result>::finish(Result result) {
  if (done) return;
  done = true;
  impl->deadlines.erase(deadline);
  deliver(std::move(result));
}

template <class Result>
void PendingResult<Result>::expire() {
  finish(failed<Result>(Status::timeout, "no answer from the DNS servers within " +
                                             std::to_string(impl->bound.count()) + " ms"));
}

Resolver::Impl::Impl(asio::io_context& io_context, Options opts)
    : io(io_context), options(std::move(opts)), timer(io_context) {
  init_library_once();
  options.tries = std::max(options.tries, 1);
  options.timeout = std::max(options.timeout, std::chrono::milliseconds(1));

  ares_options ao{};
  int mask = 0;
  ao.flags = ARES_FLAG_NOSEARCH;  // XMPP domains are always fully qualified
  mask |= ARES_OPT_FLAGS;
  ao.timeout = static_cast<int>(std::min<std::int64_t>(options.timeout.count(), 1 << 30));
  mask |= ARES_OPT_TIMEOUTMS;
  ao.tries = options.tries;
  mask |= ARES_OPT_TRIES;
  ao.domains = nullptr;  // no search list for ares_getaddrinfo either
  ao.ndomains = 0;
  mask |= ARES_OPT_DOMAINS;
  ao.sock_state_cb = &Impl::on_sock_state;
  ao.sock_state_cb_data = this;
  mask |= ARES_OPT_SOCK_STATE_CB;
  int rc = ares_init_options(&channel, &ao, mask);
  if (rc != ARES_SUCCESS) {
    throw std::runtime_error(std::string("cannot initialise the DNS resolver: ") + ares_strerror(rc));
  }

  if (!options.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(options.servers.size());
    for (std::size_t i = 0; i < options.servers.size(); ++i) {
      const auto& [address, port] = options.servers[i];
      ares_addr_port_node& node = nodes[i];
      node.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      if (inet_pton(AF_INET, address.c_str(), &node.addr.addr4) == 1) {
        node.family = AF_INET;
      } else if (inet_pton(AF_INET6, address.c_str(), &node.addr.addr6) == 1) {
        node.family = AF_INET6;
      } else {
        ares_destroy(channel);
        throw std::invalid_argument("DNS server \"" + address + "\" is not an IP address");
      }
      node.udp_port = port;
      node.tcp_port = port;
    }
    rc = ares_set_servers_ports(channel, nodes.data());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel);
      throw std::runtime_error(std::string("cannot set the DNS servers: ") + ares_strerror(rc));
    }
  }

  int servers = 0;
  ares_addr_port_node* list = nullptr;
  if (ares_get_servers_ports(channel, &list) == ARES_SUCCESS) {
    for (ares_addr_port_node* node = list; node; node = node->next) ++servers;
    ares_free_data(list);
  }
  // c-ares asks each server once per try; the doubling of its per-try timeout is cut
  // short here so an operator's "timeout x tries" stays the bound.
  bound = options.timeout * options.tries * std::max(servers, 1);
}

Resolver::Impl::~Impl() {
  shutting_down = true;
  timer.cancel();
  for (auto& entry : watches) {
    entry.second->closed = true;
    boost::system::error_code ignored;
    entry.second->descriptor.close(ignored);  // our dup only; waits complete as aborted
  }
  watches.clear();
  // Calls every outstanding callback with ARES_EDESTRUCTION (their waiters get an error,
  // posted) and the socket-state callback for each socket it closes (nothing left to do).
  ares_destroy(channel);
}

void Resolver::Impl::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<Impl*>(data)->sock_state(fd, readable != 0, writable != 0);
}

void Resolver::Impl::sock_state(ares_socket_t fd, bool readable, bool writable) {
  if (!readable && !writable) {  // c-ares is about to close fd
    auto it = watches.find(fd);
    if (it == watches.end()) return;
    it->second->closed = true;
    boost::system::error_code ignored;
    it->second->descriptor.close(ignored);
    watches.erase(it);
    return;
  }
  if (shutting_down) return;
  std::shared_ptr<Watch>& watch = watches[fd];
  if (!watch) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    boost::system::error_code ec;
    auto fresh = std::make_shared<Watch>(io, fd);
    if (copy >= 0) fresh->descriptor.assign(copy, ec);
    if (copy < 0 || ec) {
      // Cannot watch this socket: its queries end at their deadline instead.
      if (copy >= 0) ::close(copy);
      watches.erase(fd);
      return;
    }
    watch = std::move(fresh);
  }
  watch->want_read = readable;
  watch->want_write = writable;
  arm(watch);
}

void Resolver::Impl::arm(const std::shared_ptr<Watch>& watch) {
  if (watch->closed) return;
  std::weak_ptr<Impl> weak = weak_from_this();
  if (watch->want_read && !watch->reading) {
    watch->reading = true;
    watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                 [weak, watch](const boost::system::error_code& ec) {
                                   if (auto self = weak.lock()) self->on_ready(watch, true, ec);
                                 });
  }
  if (watch->want_write && !watch->writing) {
    watch->writing = true;
    watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                                 [weak, watch](const boost::system::error_code& ec) {
                                   if (auto self = weak.lock()) self->on_ready(watch, false, ec);
                                 });
  }
}

void Resolver::Impl::on_ready(const std::shared_ptr<Watch>& watch, bool read,
                              const boost::system::error_code& ec) {
  (read ? watch->reading : watch->writing) = false;
  if (watch->closed || ec == asio::error::operation_aborted) return;
  // Any other wait error: stop watching; the lookups on this socket end at their deadline
  // rather than spinning on a wait that fails at once.
  if (ec) return;
  if (read && watch->want_read) {
    ares_process_fd(channel, watch->fd, ARES_SOCKET_BAD);
  } else if (!read && watch->want_write) {
    ares_process_fd(channel, ARES_SOCKET_BAD, watch->fd);
  }
  arm(watch);  // no-op if c-ares closed the socket meanwhile
  schedule();
}

void Resolver::Impl::on_timer() {
  ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares's own timeouts
  expire_deadlines();
  schedule();
}

void Resolver::Impl::expire_deadlines() {
  const auto now = Clock::now();
  while (!deadlines.empty() && deadlines.begin()->first <= now) {
    deadlines.begin()->second->expire();  // removes its entry
  }
}

// One timer for everything: the sooner of c-ares's next retransmission and the first
// lookup deadline. Re-arming cancels the previous wait, whose handler then does nothing.
void Resolver::Impl::schedule() {
  if (shutting_down) return;
  std::optional<Clock::time_point> next;
  if (!deadlines.empty()) next = deadlines.begin()->first;
  timeval tv{};
  if (ares_timeout(channel, nullptr, &tv)) {
    // +1 ms: c-ares truncates to microseconds; waking early would only spin.
    auto at = Clock::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec) +
              std::chrono::milliseconds(1);
    if (!next || at < *next) next = at;
  }
  if (!next) {
    timer.cancel();
    return;
  }
  timer.expires_at(*next);
  std::weak_ptr<Impl> weak = weak_from_this();
  timer.async_wait([weak](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto self = weak.lock()) self->on_timer();
  });
}

void Resolver::Impl::track(Pending* pending) {
  pending->impl = this;
  pending->deadline = deadlines.emplace(Clock::now() + bound, pending);
  ++stats.queries;
}

void Resolver::Impl::settle(const std::string& key, SrvResult& result) {
  if (shutting_down) return;
  const auto now = Clock::now();
  if (result.status == Status::ok) {
    result.ttl = std::min(result.ttl, options.max_ttl);
  } else if (result.status == Status::not_found) {
    result.ttl = options.negative_ttl;
  } else {
    return;
  }
  if (result.ttl.count() > 0) srv_cache.put(key, result, now, now + result.ttl, options.max_cache_entries);
}

void Resolver::Impl::settle(const std::string& key, AddrResult& result) {
  if (shutting_down) return;
  const auto now = Clock::now();
  if (result.status == Status::ok) {
    result.ttl = std::min(result.ttl, options.max_ttl);
  } else if (result.status == Status::not_found) {
    result.ttl = options.negative_ttl;
  } else {
    return;
  }
  if (result.ttl.count() > 0) addr_cache.put(key, result, now, now + result.ttl, options.max_cache_entries);
}

void Resolver::Impl::on_srv_answer(void* arg, int status, int timeouts, unsigned char* answer, int length) {
  (void)timeouts;
  std::unique_ptr<PendingResult<SrvResult>> pending(static_cast<PendingResult<SrvResult>*>(arg));
  SrvResult result;
  if (status == ARES_SUCCESS && answer && length >= 0) {
    result = parse_srv_answer(std::span<const std::uint8_t>(answer, static_cast<std::size_t>(length)));
  } else {
    result = from_ares_status<SrvResult>(status, "SRV");
  }
  if (status != ARES_EDESTRUCTION) pending->impl->settle(pending->key, result);
  pending->finish(std::move(result));
}

void Resolver::Impl::on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* info) {
  (void)timeouts;
  std::unique_ptr<PendingResult<AddrResult>> pending(static_cast<PendingResult<AddrResult>*>(arg));
  std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(info, [](ares_addrinfo* p) {
    if (p) ares_freeaddrinfo(p);
  });
  AddrResult result;
  if (status == ARES_SUCCESS && info) {
    std::optional<int> ttl;
    for (const ares_addrinfo_node* node = info->nodes; node; node = node->ai_next) {
      if (!node->ai_addr) continue;
      std::optional<asio::ip::address> address;
      if (node->ai_family == AF_INET && node->ai_addrlen >= sizeof(sockaddr_in)) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(node->ai_addr);
        address = asio::ip::address_v4(ntohl(in->sin_addr.s_addr));
      } else if (node->ai_family == AF_INET6 && node->ai_addrlen >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(node->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr), bytes.begin());
        address = asio::ip::address_v6(bytes, in6->sin6_scope_id);
      }
      if (!address) continue;
      ttl = std::min(ttl.value_or(node->ai_ttl), node->ai_ttl);
      if (std::find(result.addresses.begin(), result.addresses.end(), *address) == result.addresses.end()) {
        result.addresses.push_back(*address);
      }
    }
    for (const ares_addrinfo_cname* cname = info->cnames; cname; cname = cname->next) {
      ttl = std::min(ttl.value_or(cname->ttl), cname->ttl);
    }
    if (result.addresses.empty()) {
      result = failed<AddrResult>(Status::not_found, "no A or AAAA records");
    } else {
      result.status = Status::ok;
      result.ttl = std::chrono::seconds(std::max(ttl.value_or(0), 0));
    }
  } else {
    result = from_ares_status<AddrResult>(status, "A/AAAA");
  }
  if (status != ARES_EDESTRUCTION) pending->impl->settle(pending->key, result);
  pending->finish(std::move(result));
}

template <class Handler>
void Resolver::Impl::start_srv(const std::string& name, std::string key, Handler handler) {
  auto* pending = new PendingOp<SrvResult, Handler>(std::move(handler));
  pending->key = std::move(key);
  track(pending);
  // The callback may run before ares_query returns (e.g. for a malformed name); it owns
  // `pending` from here on.
  ares_query(channel, name.c_str(), dns_class_in, dns_type_srv, &Impl::on_srv_answer,
             static_cast<PendingResult<SrvResult>*>(pending));
  schedule();
}

template <class Handler>
void Resolver::Impl::start_addresses(const std::string& host, std::string key, Handler handler) {
  auto* pending = new PendingOp<AddrResult, Handler>(std::move(handler));
  pending->key = std::move(key);
  track(pending);
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  ares_getaddrinfo(channel, host.c_str(), nullptr, &hints, &Impl::on_addrinfo,
                   static_cast<PendingResult<AddrResult>*>(pending));
  schedule();
}

Resolver::Resolver(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

Resolver::~Resolver() = default;

namespace {

bool acceptable_name(const std::string& name) {
  return !name.empty() && name.size() <= 1024 && name.find('\0') == std::string::npos;
}

}  // namespace

awaitable<SrvResult> Resolver::srv(std::string name) {
  Impl& impl = *impl_;
  ++impl.stats.lookups;
  if (!acceptable_name(name)) co_return failed<SrvResult>(Status::error, "invalid DNS name");
  std::string key = normalised(name);
  std::optional<SrvResult> hit = impl.srv_cache.get(key, Clock::now());
  if (hit) {
    ++impl.stats.cache_hits;
    co_return std::move(*hit);
  }
  auto initiation = [&impl, name = std::move(name), key = std::move(key)](auto handler) mutable {
    impl.start_srv(name, std::move(key), std::move(handler));
  };
  // Nothing of `impl` is touched after this: the Resolver may be gone when it resumes.
  SrvResult result =
      co_await asio::async_initiate<decltype(use_awaitable), void(SrvResult)>(initiation, use_awaitable);
  co_return result;
}

awaitable<AddrResult> Resolver::addresses(std::string host) {
  Impl& impl = *impl_;
  ++impl.stats.lookups;
  if (!acceptable_name(host)) co_return failed<AddrResult>(Status::error, "invalid host name");
  std::string key = normalised(host);
  std::optional<AddrResult> hit = impl.addr_cache.get(key, Clock::now());
  if (hit) {
    ++impl.stats.cache_hits;
    co_return std::move(*hit);
  }
  auto initiation = [&impl, host = std::move(host), key = std::move(key)](auto handler) mutable {
    impl.start_addresses(host, std::move(key), std::move(handler));
  };
  AddrResult result =
      co_await asio::async_initiate<decltype(use_awaitable), void(AddrResult)>(initiation, use_awaitable);
  co_return result;
}

void Resolver::clear_cache() {
  impl_->srv_cache.clear();
  impl_->addr_cache.clear();
}

Resolver::Stats Resolver::stats() const { return impl_->stats; }

const Resolver::Options& Resolver::options() const { return impl_->options; }

}  // namespace herald::federation::dns
