#include "server/c2s/c2s_session.hpp"

#include <spdlog/spdlog.h>

#include "server/core/host.hpp"
#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/net/tls.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/serializer.hpp"
#include "server/xmpp/jid.hpp"
#include "server/xmpp/namespaces.hpp"
#include "storage/stores.hpp"

namespace herald::c2s {

using xmpp::StreamError;

namespace {
constexpr unsigned kMaxBindAttempts = 5;  // RFC 6120 §7.6.2.2: at least 5, at most 10
}

void C2sSession::accept(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                        const config::Listener& listener) {
  std::make_shared<C2sSession>(server, worker, std::move(socket), listener)->start();
}

C2sSession::C2sSession(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                       const config::Listener& listener)
    : StreamIn(server, worker, std::move(socket), listener, std::string(ns::client)) {}

void C2sSession::add_features(xml::Element& features) {
  if (state_ == stream::State::wait_sasl) {
    connection_info_.secure = tls_;
    connection_info_.channel_bindings = tls_ ? net::channel_bindings(native_ssl()) : std::vector<sasl::ChannelBinding>{};
    offered_ = sasl::offered_mechanisms(connection_info_, server_.config().auth.mechanisms);
    auto& mechs = features.add("mechanisms", std::string(ns::sasl));
    for (const auto& m : offered_) mechs.add("mechanism").add_text(m);
    // XEP-0440: which channel-binding types the -PLUS mechanisms accept here. SCRAM's
    // downgrade protection (XEP-0474) hashes exactly this list.
    if (auto types = sasl::channel_binding_types(connection_info_, offered_); !types.empty()) {
      auto& cb = features.add("sasl-channel-binding", std::string(ns::sasl_cb));
      for (auto& t : types) cb.add("channel-binding").set_attr("type", std::move(t));
    }
    return;
  }
  if (state_ == stream::State::wait_bind) {
    features.add("bind", std::string(ns::bind));
    // RFC 3921 sessions are a no-op kept for older clients (RFC 6121 Appendix E).
    features.add("session", std::string(ns::session)).add("optional");
    if (auto* host = server_.host(domain_)) host->add_stream_features(features);
  }
}

awaitable<void> C2sSession::handle_element(xml::Element element) {
  const auto kind = xmpp::kind_of(element);
  switch (state_) {
    case stream::State::wait_sasl:
      if (element.ns() == ns::sasl) {
        co_await handle_sasl(element);
      } else if (kind != xmpp::Kind::other) {
        close(StreamError::not_authorized, "authenticate before sending stanzas");
      } else {
        close(StreamError::unsupported_stanza_type, "unexpected <" + element.name() + "/> before authentication");
      }
      co_return;
    case stream::State::wait_bind:
      if (kind == xmpp::Kind::iq && element.attr_or("type") == "set" && element.child("bind", ns::bind)) {
        co_await handle_bind(element);
      } else if (kind != xmpp::Kind::other) {
        close(StreamError::not_authorized, "bind a resource before sending stanzas");
      } else {
        close(StreamError::unsupported_stanza_type, "unexpected <" + element.name() + "/> before resource binding");
      }
      co_return;
    case stream::State::established:
      if (kind == xmpp::Kind::other || element.ns() != ns::client) {
        close(StreamError::unsupported_stanza_type, "only message, presence and iq are allowed here");
        co_return;
      }
      if (kind == xmpp::Kind::iq && element.attr_or("type") == "set" && !element.attr("to") &&
          element.child("session", ns::session)) {
        send(xmpp::iq_result(element));
        co_return;
      }
      if (kind == xmpp::Kind::iq && element.child("bind", ns::bind)) {
        send_iq_error(element, xmpp::StanzaError::not_allowed, "a resource is already bound");
        co_return;
      }
      co_await server_.router().from_client(*this, std::move(element));
      co_return;
    case stream::State::wait_header:
    case stream::State::wait_starttls:
      break;
  }
  close(StreamError::internal_server_error);
}

// --- SASL (RFC 6120 §6) ---------------------------------------------------------------

// `log_text` goes to the log only: telling the client why (unknown user, bad proof...)
// would leak what SCRAM is careful to hide.
void C2sSession::sasl_failure(sasl::Condition condition, std::string_view log_text) {
  std::string out = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><";
  out += sasl::condition_name(condition);
  out += "/></failure>";
  send(std::move(out));
  mechanism_.reset();
  if (condition == sasl::Condition::aborted) return;
  server_.throttle().record_failure(remote_address_);
  ++auth_failures_;
  spdlog::info("{}: authentication failed ({}){}{}", remote_address_, sasl::condition_name(condition),
               log_text.empty() ? "" : ": ", log_text);
  if (auth_failures_ >= server_.config().auth.max_attempts_per_connection) {
    close(StreamError::policy_violation, "too many failed authentication attempts");
  }
}

awaitable<void> C2sSession::handle_sasl(const xml::Element& element) {
  const auto& name = element.name();
  if (name == "abort") {
    if (mechanism_) sasl_failure(sasl::Condition::aborted);
    co_return;
  }
  if (name == "response") {
    if (!mechanism_) {
      sasl_failure(sasl::Condition::malformed_request, "no authentication in progress");
      co_return;
    }
    const auto text = element.text();
    auto data = text.empty() || text == "=" ? std::optional<std::string>("") : sasl::base64_decode(text);
    if (!data) {
      sasl_failure(sasl::Condition::incorrect_encoding, "the response is not valid base64");
      co_return;
    }
    co_await run_mechanism(mechanism_->step(*data));
    co_return;
  }
  if (name != "auth") {
    sasl_failure(sasl::Condition::malformed_request, "unexpected <" + name + "/>");
    co_return;
  }

  if (server_.throttle().blocked(remote_address_)) {
    // Not counted again: the address is already over its limit.
    send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/>"
         "<text xml:lang='en'>too many failed attempts from your address; try again later</text></failure>");
    mechanism_.reset();
    co_return;
  }
  const auto mech_name = element.attr_or("mechanism");
  sasl::MechanismOptions options;
  options.unknown_user_iterations = server_.config().auth.scram_iterations;
  mechanism_ = sasl::create_mechanism(mech_name, connection_info_, offered_, options);
  if (!mechanism_) {
    sasl_failure(sasl::Condition::invalid_mechanism, "mechanism '" + std::string(mech_name) + "' is not offered");
    co_return;
  }
  const auto text = element.text();
  if (text.empty()) {
    // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
    send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    co_return;
  }
  auto data = text == "=" ? std::optional<std::string>("") : sasl::base64_decode(text);
  if (!data) {
    sasl_failure(sasl::Condition::incorrect_encoding, "the initial response is not valid base64");
    co_return;
  }
  co_await run_mechanism(mechanism_->step(*data));
}

awaitable<void> C2sSession::run_mechanism(sasl::Step step) {
  while (step.kind == sasl::Step::Kind::lookup) {
    std::optional<sasl::Credentials> creds;
    try {
      creds = co_await worker_.accounts().credentials(domain_, step.username);
    } catch (const std::exception& e) {
      spdlog::error("cannot look up credentials for {}@{}: {}", step.username, domain_, e.what());
      send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><temporary-auth-failure/></failure>");
      mechanism_.reset();
      co_return;
    }
    if (finished_or_closing()) co_return;
    try {
      step = mechanism_->provide(creds);
    } catch (const std::exception& e) {
      spdlog::error("SASL: {}", e.what());
      step = sasl::Step::failure(sasl::Condition::temporary_auth_failure, e.what());
    }
  }
  switch (step.kind) {
    case sasl::Step::Kind::challenge:
      send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + sasl::base64_encode(step.data) + "</challenge>");
      co_return;
    case sasl::Step::Kind::failure: sasl_failure(step.condition, step.text); co_return;
    case sasl::Step::Kind::success: break;
    case sasl::Step::Kind::lookup: co_return;  // unreachable
  }
  // An authorization identity may only name the user's own account.
  const auto& authzid = mechanism_->authzid();
  if (!authzid.empty()) {
    auto az = xmpp::Jid::parse(authzid);
    if (!az || az->local() != mechanism_->username() || az->domain() != domain_ || !az->is_bare()) {
      sasl_failure(sasl::Condition::invalid_authzid, "you may only act as yourself");
      co_return;
    }
  }
  username_ = mechanism_->username();
  spdlog::info("{}@{} authenticated with {} from {}", username_, domain_, mechanism_->name(), remote_address_);
  mechanism_.reset();
  send(step.data.empty() ? std::string("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
                         : "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + sasl::base64_encode(step.data) + "</success>");
  set_authenticated(true);
  restart_stream();
}

// --- resource binding (RFC 6120 §7) ------------------------------------------------------

void C2sSession::send_iq_error(const xml::Element& iq, xmpp::StanzaError error, std::string_view text) {
  if (auto reply = xmpp::error_reply(iq, error, text)) {
    reply->remove_attr("from");
    send(*reply);
  }
}

awaitable<void> C2sSession::handle_bind(const xml::Element& iq) {
  const auto* bind = iq.child("bind", ns::bind);
  std::string requested = bind->child_text("resource", ns::bind);
  std::string resource;
  if (requested.empty()) {
    resource = "herald-" + sasl::random_id(9);
  } else if (auto prepped = xmpp::prep_resource(requested)) {
    resource = *prepped;
  }
  auto jid = resource.empty() ? std::nullopt : xmpp::Jid::make(username_, domain_, resource);
  if (!jid) {
    send_iq_error(iq, xmpp::StanzaError::bad_request, "the resource is not a valid resourcepart");
    if (++bind_failures_ >= kMaxBindAttempts) close(StreamError::policy_violation, "too many bind attempts");
    co_return;
  }
  jid_ = std::move(*jid);
  auto self = std::static_pointer_cast<core::Session>(shared_from_this());
  if (auto old = server_.directory().bind(self)) {
    // RFC 6120 §7.7.2.2: the new session overrides the old one.
    old->close_with(StreamError::conflict, "replaced by a new connection with the same resource");
  }
  bound_ = true;
  state_ = stream::State::established;
  // Modules prepare the session (roster cache, access rules) before the client learns it
  // is bound, so its first stanza already finds them in place.
  if (auto* host = server_.host(domain_)) co_await host->session_bound(self);

  xml::Element result = xmpp::iq_result(iq);
  result.remove_attr("from");
  result.remove_attr("to");
  result.add("bind", std::string(ns::bind)).add("jid").add_text(jid_.str());
  send(result);
  spdlog::info("{} bound on worker {} from {}", jid_.str(), worker_.index(), remote_address_);
  start_keepalive();
}

void C2sSession::send_keepalive_probe() {
  std::string ping = "<iq type='get' id='herald-ping-" + sasl::random_id(6) + "' from='";
  ping += xml::escape_attr(domain_);
  ping += "' to='";
  ping += xml::escape_attr(jid_.str());
  ping += "'><ping xmlns='urn:xmpp:ping'/></iq>";
  send(std::move(ping));
}

void C2sSession::on_closed() {
  if (!bound_) return;
  server_.directory().unbind(*this);
  spdlog::info("{} disconnected", jid_.str());
  // Modules react (unavailable presence to contacts...) after the session is gone from the
  // directory, so nothing is routed back to it.
  if (auto* host = server_.host(domain_)) {
    auto self = std::static_pointer_cast<core::Session>(shared_from_this());
    asio::co_spawn(worker_.io(), host->session_closed(std::move(self)), asio::detached);
  }
}

}  // namespace herald::c2s
