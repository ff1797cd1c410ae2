#include "federation/s2s/s2s_manager.hpp"

#include <spdlog/spdlog.h>

#include <functional>
#include <unordered_map>

#include "federation/dialback_key.hpp"
#include "federation/dns/resolver.hpp"
#include "federation/s2s/s2s_out.hpp"
#include "server/core/host.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/session.hpp"
#include "server/core/worker.hpp"
#include "server/xml/serializer.hpp"

namespace herald::federation {

S2sManager::S2sManager(core::Server& server)
    // Created while modules load, before the workers exist: size by the configuration.
    : server_(server),
      secret_(make_dialback_secret()),
      resolvers_(server.config().workers),
      pairs_(server.config().workers) {}

S2sManager::~S2sManager() = default;

namespace {
std::mutex managers_mutex;
std::unordered_map<core::Server*, std::unique_ptr<S2sManager>> managers;
}  // namespace

S2sManager& S2sManager::of(core::Server& server) {
  std::lock_guard lock(managers_mutex);
  auto& slot = managers[&server];
  if (!slot) slot = std::make_unique<S2sManager>(server);
  return *slot;
}

void S2sManager::release(core::Server& server) {
  std::unique_ptr<S2sManager> manager;
  {
    std::lock_guard lock(managers_mutex);
    auto it = managers.find(&server);
    if (it == managers.end()) return;
    manager = std::move(it->second);
    managers.erase(it);
  }
  // Streams before resolvers: a stream may still hold a lookup.
  for (auto& pairs : manager->pairs_) pairs.clear();
  manager->resolvers_.clear();
}

const config::Federation& S2sManager::config() const { return server_.config().federation; }

dns::Resolver& S2sManager::resolver(core::Worker& worker) {
  auto& slot = resolvers_[worker.index()];
  if (!slot) {
    dns::Resolver::Options options;
    for (const auto& s : config().dns_servers) options.servers.emplace_back(s.address, s.port);
    options.timeout = config().dns_timeout;
    options.tries = static_cast<int>(config().dns_tries);
    slot = std::make_unique<dns::Resolver>(worker.io(), options);
  }
  return *slot;
}

asio::ssl::context& S2sManager::client_tls(const std::string& local) {
  std::lock_guard lock(client_tls_mutex_);
  auto it = client_tls_.find(local);
  if (it != client_tls_.end()) return *it->second;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  auto* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION);
  // The peer is checked after the handshake (verify_peer), so that dialback stays possible
  // with a certificate that does not authenticate it.
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  if (const auto* host = server_.config().find_host(local)) {
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(host->certificate.string(), ec);
    if (!ec) ctx->use_private_key_file(host->key.string(), asio::ssl::context::pem, ec);
    if (ec) spdlog::error("s2s: cannot load the certificate of {} for outgoing streams: {}", local, ec.message());
  }
  auto& ref = *ctx;
  client_tls_.emplace(local, std::move(ctx));
  return ref;
}

CertCheck S2sManager::verify_peer(SSL* ssl, std::string_view domain) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) {
    CertCheck none;
    none.chain_error = "no certificate presented";
    return none;
  }
  X509_STORE* store = nullptr;
  {
    // Loaded once, on first use (not per connection: a CA bundle is hundreds of kB).
    std::lock_guard lock(ca_mutex_);
    if (!ca_store_) {
      std::string error;
      ca_store_ = load_ca_store(config().ca_file.string(), error);
      if (!ca_store_) spdlog::error("s2s: {}", error);
    }
    store = ca_store_.get();
  }
  return check_chain(leaf, SSL_get_peer_cert_chain(ssl), store, domain);
}

core::Worker& S2sManager::worker_for(const std::string& local, const std::string& remote) {
  // By the remote domain only: every pair toward one domain lives on one worker, so a
  // stream can be shared between our domains (piggybacking) without locks.
  (void)local;
  const auto h = std::hash<std::string>{}(remote);
  return server_.worker(static_cast<unsigned>(h % server_.worker_count()));
}

void S2sManager::send(const std::string& local, const std::string& remote, xml::Element stanza) {
  auto& worker = worker_for(local, remote);
  asio::post(worker.io(), [this, key = Key{local, remote}, stanza = std::move(stanza)]() mutable {
    enqueue(key, std::move(stanza));
  });
}

void S2sManager::enqueue(const Key& key, xml::Element stanza) {
  spdlog::debug("s2s {} -> {}: stanza queued", key.first, key.second);
  auto& pair = pairs_[core::Worker::current()->index()][key];
  if (pair.ready && pair.out) {
    pair.out->send(std::move(stanza));
    return;
  }
  if (auto bidi = pair.bidi.lock()) {
    bidi->deliver(std::make_shared<const std::string>(xml::serialize(stanza)));
    return;
  }
  if (pair.queue.size() >= config().queue_limit) {
    bounce(std::move(stanza), xmpp::StanzaError::resource_constraint, "too many stanzas waiting for " + key.second);
    return;
  }
  pair.queue.push_back({std::move(stanza), std::chrono::steady_clock::now()});
  if (!pair.out && !try_piggyback(key, pair)) start_stream(key, pair);
  arm_expiry(key, pair);
}

// XEP-0220 §2.4: another of our domains already has a ready stream to this remote domain
// that takes more dialback requests: ask for this pair there instead of connecting again.
bool S2sManager::try_piggyback(const Key& key, Pair& pair) {
  auto& pairs = pairs_[core::Worker::current()->index()];
  std::shared_ptr<S2sOut> shared;
  for (auto& [k, p] : pairs) {
    if (k.second == key.second && k.first != key.first && p.ready && p.out && p.out->can_piggyback()) {
      shared = p.out;
      break;
    }
  }
  if (!shared) return false;
  pair.out = shared;
  pair.ready = false;
  auto& worker = *core::Worker::current();
  asio::co_spawn(worker.io(), [this, key, shared, index = worker.index()]() -> awaitable<void> {
    const bool ok = co_await shared->add_local(key.first);
    auto& all = pairs_[index];
    auto it = all.find(key);
    if (it == all.end() || it->second.out != shared) co_return;
    if (ok) {
      stream_ready(key.first, key.second, shared);
    } else {
      it->second.out.reset();
      start_stream(key, it->second);
    }
  }, asio::detached);
  return true;
}

void S2sManager::start_stream(const Key& key, Pair& pair) {
  auto& worker = *core::Worker::current();
  pair.out = std::make_shared<S2sOut>(*this, worker, key.first, key.second);
  pair.ready = false;
  pair.out->start();
}

void S2sManager::register_bidi(const std::string& local, const std::string& remote, std::weak_ptr<core::Session> stream) {
  auto& worker = worker_for(local, remote);
  asio::post(worker.io(), [this, key = Key{local, remote}, stream = std::move(stream)]() mutable {
    auto& pair = pairs_[core::Worker::current()->index()][key];
    pair.bidi = std::move(stream);
    spdlog::info("s2s {} -> {}: the peer's bidirectional stream (XEP-0288) carries our stanzas", key.first, key.second);
    if (pair.ready && pair.out) return;
    if (auto bidi = pair.bidi.lock()) {
      for (auto& w : pair.queue) bidi->deliver(std::make_shared<const std::string>(xml::serialize(w.stanza)));
      pair.queue.clear();
      pair.expiry.reset();
    }
  });
}

void S2sManager::unregister_bidi(const std::string& local, const std::string& remote, const core::Session* stream) {
  auto& worker = worker_for(local, remote);
  asio::post(worker.io(), [this, key = Key{local, remote}, stream]() {
    auto& pairs = pairs_[core::Worker::current()->index()];
    auto it = pairs.find(key);
    if (it == pairs.end()) return;
    auto current = it->second.bidi.lock();
    if (current && current.get() != stream) return;
    it->second.bidi.reset();
    if (!it->second.out && it->second.queue.empty()) pairs.erase(it);
  });
}

std::shared_ptr<S2sOut> S2sManager::stream_for(const std::string& local, const std::string& remote) {
  auto& pair = pairs_[core::Worker::current()->index()][Key{local, remote}];
  if (!pair.out) start_stream(Key{local, remote}, pair);
  return pair.out;
}

void S2sManager::arm_expiry(const Key& key, Pair& pair) {
  if (pair.expiry || pair.queue.empty()) return;
  auto& worker = *core::Worker::current();
  pair.expiry = std::make_unique<asio::steady_timer>(worker.io());
  pair.expiry->expires_at(pair.queue.front().since + config().bounce_after);
  pair.expiry->async_wait([this, key, index = worker.index()](const boost::system::error_code& ec) {
    if (ec) return;
    auto& pairs = pairs_[index];
    auto it = pairs.find(key);
    if (it == pairs.end()) return;
    auto& p = it->second;
    p.expiry.reset();
    // RFC 2779 5.4.1: what waited too long is bounced; the stream may still come up for
    // later stanzas.
    const auto now = std::chrono::steady_clock::now();
    while (!p.queue.empty() && now - p.queue.front().since >= config().bounce_after) {
      bounce(std::move(p.queue.front().stanza), xmpp::StanzaError::remote_server_timeout,
             "could not reach " + key.second + " in time");
      p.queue.pop_front();
    }
    arm_expiry(key, p);
  });
}

void S2sManager::stream_ready(const std::string& local, const std::string& remote, const std::shared_ptr<S2sOut>& out) {
  auto& pairs = pairs_[core::Worker::current()->index()];
  auto it = pairs.find(Key{local, remote});
  if (it == pairs.end() || it->second.out != out) return;
  auto& pair = it->second;
  if (pair.ready) return;
  pair.ready = true;
  pair.expiry.reset();
  for (auto& w : pair.queue) out->send(std::move(w.stanza));
  pair.queue.clear();
}

void S2sManager::stream_failed(const std::string& local, const std::string& remote, const S2sOut* out,
                               xmpp::StanzaError condition, const std::string& why) {
  auto& pairs = pairs_[core::Worker::current()->index()];
  auto it = pairs.find(Key{local, remote});
  if (it == pairs.end() || it->second.out.get() != out) return;
  spdlog::warn("s2s {} -> {}: cannot connect ({}); {} stanza(s) bounced", local, remote, why, it->second.queue.size());
  bounce_all(it->second, condition, why);
  // No blanket back-off: the next stanza tries again.
  pairs.erase(it);
}

void S2sManager::stream_closed(const std::string& local, const std::string& remote, const S2sOut* out,
                               std::vector<xml::Element> unsent) {
  (void)local;
  // Every pair the stream carried (several, when our domains piggybacked on it).
  auto& pairs = pairs_[core::Worker::current()->index()];
  for (auto it = pairs.begin(); it != pairs.end();) {
    auto& pair = it->second;
    if (pair.out.get() != out) {
      ++it;
      continue;
    }
    if (!pair.queue.empty()) {
      // Closed before it was ready: start over for what waits.
      pair.out.reset();
      pair.ready = false;
      start_stream(it->first, pair);
      ++it;
      continue;
    }
    it = pairs.erase(it);
  }
  // What the stream took but never wrote goes out again (on a new stream, or bounces).
  for (auto& stanza : unsent) {
    auto from = xmpp::Jid::parse(stanza.attr_or("from"));
    if (!from) continue;
    enqueue(Key{from->domain(), remote}, std::move(stanza));
  }
}

void S2sManager::bounce_all(Pair& pair, xmpp::StanzaError condition, const std::string& why) {
  pair.expiry.reset();
  while (!pair.queue.empty()) {
    bounce(std::move(pair.queue.front().stanza), condition, why);
    pair.queue.pop_front();
  }
}

void S2sManager::bounce(xml::Element stanza, xmpp::StanzaError condition, const std::string& why) {
  stanza.rename_namespace("jabber:server", "jabber:client");  // it goes back to a local client
  auto reply = xmpp::error_reply(stanza, condition, why);
  if (!reply) return;
  asio::co_spawn(core::Worker::current()->io(), server_.router().route(std::move(*reply)), asio::detached);
}

}  // namespace herald::federation
