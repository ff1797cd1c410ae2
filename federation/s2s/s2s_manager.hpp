// Server-to-server routing (RFC 6120; RFC 2779 2.2.1): one S2sManager per Server. Stanzas
// for a domain this server does not serve arrive through the route/remote event; they go
// to the outgoing stream for their (local domain, remote domain) pair, which the manager
// creates on demand on one worker (chosen by the pair, so a pair's stanzas keep their
// order). While the stream comes up they wait in a bounded queue; if it cannot come up
// within [federation] bounce_after, or every target fails, each is bounced to its sender
// with the RFC 6120 §10.4.3 condition. The next stanza after a failure tries again.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "federation/cert_names.hpp"
#include "server/core/config/config.hpp"
#include "server/net/asio.hpp"
#include "server/xml/element.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::core {
class Session;
}

namespace herald::core {
class Server;
class Worker;
}  // namespace herald::core

namespace herald::federation {

namespace dns {
class Resolver;
}
class S2sOut;

class S2sManager {
 public:
  explicit S2sManager(core::Server& server);
  ~S2sManager();

  // The manager of `server`, created on first use (while modules load).
  static S2sManager& of(core::Server& server);
  // Destroys it: streams, timers and resolvers belong to the workers' io_contexts, so this
  // runs after the workers stopped and before the Server (and its workers) is destroyed.
  static void release(core::Server& server);

  core::Server& server() { return server_; }
  const config::Federation& config() const;
  // The XEP-0185 secret of this server process (CSPRNG, never stored).
  const std::string& dialback_secret() const { return secret_; }
  // The worker's resolver (created on first use, on that worker's thread).
  dns::Resolver& resolver(core::Worker& worker);
  // Client TLS context presenting `local`'s certificate (SASL EXTERNAL).
  asio::ssl::context& client_tls(const std::string& local);
  // The peer's certificate on `ssl` checked against [federation] ca_file and `domain`.
  CertCheck verify_peer(SSL* ssl, std::string_view domain);

  // A stanza from `local` (served here) to `remote` (not served here). Any thread.
  void send(const std::string& local, const std::string& remote, xml::Element stanza);

  // From the pair's outgoing stream, on its worker.
  void stream_ready(const std::string& local, const std::string& remote, const std::shared_ptr<S2sOut>& out);
  void stream_failed(const std::string& local, const std::string& remote, const S2sOut* out,
                     xmpp::StanzaError condition, const std::string& why);
  void stream_closed(const std::string& local, const std::string& remote, const S2sOut* out,
                     std::vector<xml::Element> unsent = {});

  // XEP-0288: an incoming stream on which `remote` enabled bidirectionality and is
  // authenticated for (remote, local) may carry our stanzas from `local` to `remote` when no
  // outgoing stream of ours is ready. Any thread.
  void register_bidi(const std::string& local, const std::string& remote, std::weak_ptr<core::Session> stream);
  // The stream ended: stanzas for the pair no longer go there.
  void unregister_bidi(const std::string& local, const std::string& remote, const core::Session* stream);

  // The outgoing stream for a pair if it exists (for dialback verification), on the pair's
  // worker; creates one if none exists.
  std::shared_ptr<S2sOut> stream_for(const std::string& local, const std::string& remote);
  core::Worker& worker_for(const std::string& local, const std::string& remote);

 private:
  struct Waiting {
    xml::Element stanza;
    std::chrono::steady_clock::time_point since;
  };
  struct Pair {
    std::shared_ptr<S2sOut> out;  // nullptr: none yet
    bool ready = false;
    std::weak_ptr<core::Session> bidi;  // an incoming bidirectional stream (XEP-0288)
    std::deque<Waiting> queue;
    std::unique_ptr<asio::steady_timer> expiry;  // bounces what waited too long
  };
  using Key = std::pair<std::string, std::string>;

  // All on the pair's worker.
  void enqueue(const Key& key, xml::Element stanza);
  void start_stream(const Key& key, Pair& pair);
  bool try_piggyback(const Key& key, Pair& pair);
  void arm_expiry(const Key& key, Pair& pair);
  void bounce_all(Pair& pair, xmpp::StanzaError condition, const std::string& why);
  void bounce(xml::Element stanza, xmpp::StanzaError condition, const std::string& why);

  core::Server& server_;
  std::string secret_;
  std::vector<std::unique_ptr<dns::Resolver>> resolvers_;  // by worker index
  std::map<std::string, std::unique_ptr<asio::ssl::context>, std::less<>> client_tls_;
  std::mutex client_tls_mutex_;
  std::mutex ca_mutex_;
  CaStore ca_store_;
  // Per worker: the pairs that live there (touched only on that worker).
  std::vector<std::map<Key, Pair>> pairs_;
};

}  // namespace herald::federation
