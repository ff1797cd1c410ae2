#include "federation/s2s/s2s_in.hpp"

#include <spdlog/spdlog.h>

#include "federation/dialback_key.hpp"
#include "federation/s2s/s2s_manager.hpp"
#include "federation/s2s/s2s_out.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/serializer.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::federation {

namespace {

using xmpp::StreamError;

constexpr std::string_view kServerNs = "jabber:server";
constexpr std::string_view kDialbackNs = "jabber:server:dialback";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";

// Lets the handshake finish whatever the certificate: it is judged afterwards, so that a
// peer without a valid one can still use dialback.
int accept_any(int, X509_STORE_CTX*) { return 1; }

}  // namespace

void S2sIn::accept(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                   const config::Listener& listener) {
  std::make_shared<S2sIn>(server, worker, std::move(socket), listener)->start();
}

S2sIn::S2sIn(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket, const config::Listener& listener)
    : StreamIn(server, worker, std::move(socket), listener, std::string(kServerNs)), manager_(S2sManager::of(server)) {
  // Ask the peer for its certificate (SASL EXTERNAL, XEP-0178).
  SSL_set_verify(native_ssl(), SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, &accept_any);
  static const unsigned char kContext[] = "herald-s2s";
  SSL_set_session_id_context(native_ssl(), kContext, sizeof kContext - 1);
}

const CertCheck& S2sIn::peer_check() {
  if (!check_) check_ = manager_.verify_peer(native_ssl(), peer_from_);
  return *check_;
}

void S2sIn::add_features(xml::Element& features) {
  if (authenticated_) {
    // The restart after SASL EXTERNAL is done (our new header is out): only now may this
    // stream carry our stanzas to the peer (XEP-0288).
    if (bidi_ && !peer_from_.empty() && authorized_.contains({peer_from_, domain_}))
      manager_.register_bidi(domain_, peer_from_, std::static_pointer_cast<core::Session>(shared_from_this()));
    // More domains may still be authorized with dialback on this stream (XEP-0220 §2.4,
    // target piggybacking).
    if (manager_.config().dialback && !manager_.config().require_valid_certificates)
      features.add("dialback", "urn:xmpp:features:dialback").add("errors");
    return;
  }
  if (tls_ && !peer_from_.empty() && peer_check().ok()) {
    features.add("mechanisms", std::string(kSaslNs)).add("mechanism").add_text("EXTERNAL");
  }
  if (manager_.config().dialback && !manager_.config().require_valid_certificates) {
    features.add("dialback", "urn:xmpp:features:dialback").add("errors");
  }
  if (tls_) features.add("bidi", "urn:xmpp:features:bidi");  // XEP-0288
}

void S2sIn::on_closed() {
  if (!bidi_) return;
  for (const auto& [remote, local] : authorized_) manager_.unregister_bidi(local, remote, this);
}

void S2sIn::authorized(const std::string& remote, const std::string& local, bool restart_follows) {
  authorized_.emplace(remote, local);
  mark_authenticated();
  // XEP-0288: the peer authenticated as `remote`, so this stream may carry our stanzas
  // from `local` (the stream's 'to', or the dialback pair's target) to it: at once after
  // a dialback answer, after the stream restart for SASL (add_features).
  if (bidi_ && !restart_follows)
    manager_.register_bidi(local, remote, std::static_pointer_cast<core::Session>(shared_from_this()));
}

void S2sIn::sasl_failure(std::string_view condition, std::string_view why) {
  spdlog::info("s2s in from {} ({}): SASL EXTERNAL refused: {}", peer_from_.empty() ? "?" : peer_from_, remote_address_, why);
  send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + std::string(condition) + "/></failure>");
}

awaitable<void> S2sIn::handle_element(xml::Element element) {
  if (element.ns() == kSaslNs) {
    if (element.name() == "auth" && !authenticated_) {
      co_await handle_external(element);
    } else if (element.name() == "abort") {
      send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
    } else {
      close(StreamError::policy_violation, "unexpected SASL element");
    }
    co_return;
  }
  if (element.ns() == "urn:xmpp:bidi" && element.name() == "bidi") {
    if (!tls_) {
      close(StreamError::policy_violation, "negotiate TLS before bidirectionality");
    } else {
      bidi_ = true;
    }
    co_return;
  }
  if (element.ns() == kDialbackNs) {
    if (element.name() == "result" && !element.attr("type")) {
      co_await handle_result(element);
    } else if (element.name() == "verify" && !element.attr("type")) {
      handle_verify(element);
    }
    // Results and verifications we did not ask for are ignored (issue 5).
    co_return;
  }
  if (xmpp::kind_of(element) != xmpp::Kind::other && element.ns() == kServerNs) {
    co_await handle_stanza(std::move(element));
    co_return;
  }
  close(StreamError::unsupported_stanza_type, "unexpected <" + element.name() + "/>");
}

// --- SASL EXTERNAL (XEP-0178) -----------------------------------------------------------

awaitable<void> S2sIn::handle_external(const xml::Element& auth) {
  if (auth.attr_or("mechanism") != "EXTERNAL") {
    sasl_failure("invalid-mechanism", "only EXTERNAL is offered");
    co_return;
  }
  if (!tls_ || peer_from_.empty() || server_.host(peer_from_) || !peer_check().ok()) {
    // No ?: with string temporaries in coroutines: GCC 12 destroys them twice.
    std::string why = "the stream header has no 'from'";
    if (!peer_from_.empty()) why = "certificate not valid for " + peer_from_;
    sasl_failure("not-authorized", why);
    co_return;
  }
  const auto text = auth.text();
  if (!text.empty() && text != "=") {
    auto authzid = sasl::base64_decode(text);
    if (!authzid || *authzid != peer_from_) {
      sasl_failure("invalid-authzid", "the authorization identity is not the stream's 'from'");
      co_return;
    }
  }
  authorized(peer_from_, domain_, true);
  spdlog::info("s2s in: {} -> {} authenticated by certificate (SASL EXTERNAL) from {}", peer_from_, domain_,
               remote_address_);
  send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  set_authenticated(true);
  restart_stream();
}

// --- Server Dialback (XEP-0220) ---------------------------------------------------------

awaitable<void> S2sIn::handle_result(const xml::Element& result) {
  const auto from = xmpp::prep_domain(result.attr_or("from"));
  const auto to = xmpp::prep_domain(result.attr_or("to"));
  if (!to || !server_.host(*to)) {
    // XEP-0220 §2.4: a dialback error for this request only; the stream stays.
    std::string reply = "<db:result from='" + xml::escape_attr(result.attr_or("to")) + "' to='" +
                        xml::escape_attr(result.attr_or("from")) +
                        "' type='error'><error type='cancel'><item-not-found "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>";
    send(std::move(reply));
    co_return;
  }
  if (!from || server_.host(*from)) {
    // Nobody else may speak for a domain served here.
    close(StreamError::invalid_from, "the dialback request has no valid 'from'");
    co_return;
  }
  if (!tls_) {
    close(StreamError::policy_violation, "negotiate TLS first");
    co_return;
  }
  if (!manager_.config().dialback || manager_.config().require_valid_certificates) {
    close(StreamError::not_authorized, "this server requires a certificate valid for " + *from);
    co_return;
  }
  if (pending_dialbacks_ >= 16 || authorized_.size() >= 256) {
    close(StreamError::policy_violation, "too many dialback requests on one stream");
    co_return;
  }
  ++pending_dialbacks_;
  // Verified in the background: the stream keeps reading meanwhile, so two servers dialing
  // back each other at the same moment answer each other's <db:verify/> (XEP-0220 §2.1.2).
  auto self = std::static_pointer_cast<S2sIn>(shared_from_this());
  // Named callables throughout: GCC 12 mishandles class temporaries in coroutines.
  auto run = [self, local = *to, remote = *from, key = result.text()]() { return self->dialback(local, remote, key); };
  asio::co_spawn(worker_.io(), std::move(run), asio::detached);
}

awaitable<void> S2sIn::dialback(std::string local, std::string remote, std::string key) {
  // Ask the authoritative server of `remote`, over our own stream to it (on the worker
  // that owns that pair), whether it issued this key for this stream. The answer comes
  // back through a timer of this worker: no coroutine spans two io_contexts.
  struct Answer {
    explicit Answer(asio::io_context& io) : wake(io) {}
    std::optional<bool> valid;
    asio::steady_timer wake;
  };
  auto answer = std::make_shared<Answer>(worker_.io());
  std::weak_ptr<Answer> weak = answer;
  auto& manager = manager_;
  auto& home = worker_.io();
  auto& pair_worker = manager.worker_for(local, remote);
  auto ask = [&manager, &home, weak, local, remote, id = stream_id_, key]() -> awaitable<void> {
    auto out = manager.stream_for(local, remote);
    auto valid = co_await out->verify(local, id, key);
    auto tell = [weak, valid]() {
      if (auto a = weak.lock()) {
        a->valid = valid;
        a->wake.cancel();
      }
    };
    asio::post(home, std::move(tell));
  };
  asio::co_spawn(pair_worker.io(), std::move(ask), asio::detached);
  answer->wake.expires_after(std::chrono::seconds(20));  // verify() itself gives up after 15 s
  boost::system::error_code ec;
  co_await answer->wake.async_wait(asio::redirect_error(use_awaitable, ec));
  --pending_dialbacks_;
  if (finished_or_closing()) co_return;
  const bool valid = answer->valid.value_or(false);
  std::string reply = "<db:result from='" + xml::escape_attr(local) + "' to='" + xml::escape_attr(remote) + "' type='";
  reply += valid ? "valid" : "invalid";
  reply += "'/>";
  send(std::move(reply));
  if (!valid) {
    const char* why = "no answer from the authoritative server";
    if (answer->valid) why = "the authoritative server said invalid";
    spdlog::info("s2s in: dialback for {} -> {} from {} failed ({})", remote, local, remote_address_, why);
    close(StreamError::not_authorized, "dialback failed for " + remote);
    co_return;
  }
  authorized(remote, local, false);
  spdlog::info("s2s in: {} -> {} authenticated by dialback from {}", remote, local, remote_address_);
}

void S2sIn::handle_verify(const xml::Element& verify) {
  // We are the authoritative server: did we give this key for that stream?
  const auto from = xmpp::prep_domain(verify.attr_or("from"));  // the receiving server
  const auto to = xmpp::prep_domain(verify.attr_or("to"));      // us, the originating one
  const auto id = std::string(verify.attr_or("id"));
  if (!from || !to || !server_.host(*to) || id.empty()) {
    close(StreamError::invalid_from, "a dialback verification needs from, to (served here) and id");
    return;
  }
  const bool valid = dialback_key_valid(manager_.dialback_secret(), *from, *to, id, verify.text());
  std::string reply = "<db:verify from='" + xml::escape_attr(*to) + "' to='" + xml::escape_attr(*from) + "' id='" +
                      xml::escape_attr(id) + "' type='" + (valid ? "valid" : "invalid") + "'/>";
  send(std::move(reply));
}

// --- stanzas ----------------------------------------------------------------------------

awaitable<void> S2sIn::handle_stanza(xml::Element stanza) {
  auto from = xmpp::Jid::parse(stanza.attr_or("from"));
  auto to = xmpp::Jid::parse(stanza.attr_or("to"));
  if (!from || !to) {
    close(StreamError::improper_addressing, "stanzas between servers need valid 'from' and 'to'");
    co_return;
  }
  if (!server_.host(to->domain())) {
    close(StreamError::host_unknown, "this server does not serve '" + to->domain() + "'");
    co_return;
  }
  if (!authorized_.contains({from->domain(), to->domain()})) {
    // RFC 6120 §4.9.3.9: the domain was not authenticated on this stream.
    spdlog::warn("s2s in from {}: stanza from unauthenticated domain {} to {}", remote_address_, from->domain(),
                 to->domain());
    close(StreamError::invalid_from, from->domain() + " is not authenticated on this stream");
    co_return;
  }
  stanza.rename_namespace(kServerNs, "jabber:client");
  co_await server_.router().route(std::move(stanza));
}

}  // namespace herald::federation
