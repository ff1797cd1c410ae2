#include "server/c2s/c2s_session.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "server/core/host.hpp"
#include "server/core/router.hpp"
#include "server/xml/parse.hpp"
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
constexpr std::string_view kSm = "urn:xmpp:sm:3";
constexpr std::string_view kCsi = "urn:xmpp:csi:0";

// SM-IDs of resumable sessions -> the session and its owner's bare JID (XEP-0198 §5).
// Process-wide: a resumption may arrive on any worker.
struct Registry {
  struct Entry {
    std::weak_ptr<C2sSession> session;
    std::string owner;
  };
  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
};
Registry& registry() {
  static Registry r;
  return r;
}

std::optional<std::uint32_t> parse_h(std::string_view text) {
  std::uint32_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}


// Messages that are copies of others (carbons, archive results): never re-routed, the
// original went its own way.
bool is_copy(const xml::Element& message) {
  for (const auto* child : message.elements()) {
    if (child->ns() == "urn:xmpp:carbons:2" && (child->name() == "sent" || child->name() == "received")) return true;
    if (child->ns() == "urn:xmpp:mam:2" && child->name() == "result") return true;
  }
  return false;
}
}  // namespace

struct C2sSession::Resumption {
  core::Session::Snapshot session;
  Sm sm;
};

void C2sSession::accept(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                        const config::Listener& listener) {
  std::make_shared<C2sSession>(server, worker, std::move(socket), listener)->start();
}

C2sSession::C2sSession(core::Server& server, core::Worker& worker, asio::ip::tcp::socket socket,
                       const config::Listener& listener)
    : StreamIn(server, worker, std::move(socket), listener, std::string(ns::client)), resume_wait_(worker.io()) {}

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
    if (server_.config().stream_management.enabled) features.add("sm", std::string(kSm));
    features.add("csi", std::string(kCsi));
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
      if (element.ns() == kSm) {
        if (element.name() == "resume") co_await handle_resume(element);
        else if (element.name() == "enable") sm_failed("unexpected-request");  // bind first (§3)
        co_return;  // <r/> and <a/> mean nothing before enabling
      }
      if (kind == xmpp::Kind::iq && element.attr_or("type") == "set" && element.child("bind", ns::bind)) {
        co_await handle_bind(element);
      } else if (kind != xmpp::Kind::other) {
        close(StreamError::not_authorized, "bind a resource before sending stanzas");
      } else {
        close(StreamError::unsupported_stanza_type, "unexpected <" + element.name() + "/> before resource binding");
      }
      co_return;
    case stream::State::established:
      if (element.ns() == kSm) {
        handle_sm(element);
        co_return;
      }
      if (element.ns() == kCsi && (element.name() == "active" || element.name() == "inactive")) {
        inactive_ = element.name() == "inactive";
        if (!inactive_) flush_held();
        co_return;
      }
      if (kind == xmpp::Kind::other || element.ns() != ns::client) {
        close(StreamError::unsupported_stanza_type, "only message, presence and iq are allowed here");
        co_return;
      }
      handling_ = true;
      if (kind == xmpp::Kind::iq && element.attr_or("type") == "set" && !element.attr("to") &&
          element.child("session", ns::session)) {
        send(xmpp::iq_result(element));
      } else if (kind == xmpp::Kind::iq && element.child("bind", ns::bind)) {
        send_iq_error(element, xmpp::StanzaError::not_allowed, "a resource is already bound");
      } else {
        co_await server_.router().from_client(*this, std::move(element));
      }
      // XEP-0198: counted only now that routing is complete, so an acknowledged message
      // has been archived, stored offline or handed to its recipient's session.
      if (sm_.enabled) ++sm_.handled_in;
      handling_ = false;
      if (deferred_surrender_) {
        // A resumption arrived while this stanza was being handled: now it is counted,
        // and nothing here touches the session's state any more.
        auto d = std::move(*deferred_surrender_);
        deferred_surrender_.reset();
        surrender(std::move(d.next), d.h);
      }
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
  if (!bound_ || resumed_away_ || ending.load()) return;
  // A connection that broke (no </stream:stream>, no stream error from us other than the
  // ping timeout) leaves a resumable session waiting (XEP-0198 §5).
  const auto error = close_error();
  const bool broken = !peer_closed() && (!error || *error == StreamError::connection_timeout);
  if (sm_.resumable && broken) {
    hibernate();
    return;
  }
  end_session();
}

// --- XEP-0198 stream management -----------------------------------------------------------

void C2sSession::deliver(std::shared_ptr<const std::string> xml) {
  if (!worker_.on_this_thread()) {
    StreamIn::deliver(std::move(xml));  // posts back here on the session's worker
    return;
  }
  if (auto next = successor_.lock()) {
    // Routed here before the directory pointed at the successor. Posted even on the same
    // worker, so it queues behind adopt() and never precedes <resumed/>.
    asio::post(next->worker_.io(), [next, xml = std::move(xml)]() mutable { next->deliver(std::move(xml)); });
    return;
  }
  if (ending.load()) {
    // In flight when the session ended: it goes where the session's unacknowledged
    // stanzas went, after them.
    std::deque<SmQueue::Item> one;
    one.push_back({std::move(xml), std::chrono::system_clock::now()});
    reroute(std::move(one));
    return;
  }
  if (finished_or_closing() && bound_ && !hibernating_ && !resumed_away_) {
    sm_.out.sent(std::move(xml));  // never written: re-routed when the session ends
    return;
  }
  if (hibernating_) {
    sm_.out.sent(std::move(xml));
    if (sm_.out.size() > server_.config().stream_management.max_unacked) {
      spdlog::info("{}: more than {} stanzas waiting for resumption; ending the session", jid_.str(),
                   server_.config().stream_management.max_unacked);
      expire();
    }
    return;
  }
  if (inactive_ && !finished_or_closing()) {
    if (auto stanza = xml::parse_element(*xml)) {
      auto key = csi_hold_key(*stanza);
      if (!key.empty() && held_.hold(key, xml)) return;
    }
    flush_held();  // something urgent (or the buffer is full): what was held goes first
  }
  StreamIn::deliver(std::move(xml));
}

void C2sSession::flush_held() {
  for (auto& xml : held_.take()) StreamIn::deliver(std::move(xml));
}

void C2sSession::close_with(StreamError error, std::string text) {
  auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
  asio::post(worker_.io(), [self, error, text = std::move(text)] {
    if (self->hibernating_) {
      self->expire();  // e.g. replaced by a new session with the same resource
      return;
    }
    self->close(error, text);
  });
}

void C2sSession::on_overflow(std::shared_ptr<const std::string> xml) {
  if (bound_ && !resumed_away_) sm_.out.sent(std::move(xml));  // re-routed when the session ends
}

void C2sSession::on_stanza_sent(const std::shared_ptr<const std::string>& xml) {
  if (!sm_.enabled) return;
  sm_.out.sent(xml);
  if (sm_.out.size() > server_.config().stream_management.max_unacked) {
    close(StreamError::policy_violation, "too many unacknowledged stanzas");
    return;
  }
  request_ack();
}

// One <r/> outstanding at a time, sent after the stanzas queued in this turn of the loop.
void C2sSession::request_ack() {
  if (sm_.ack_requested) return;
  sm_.ack_requested = true;
  auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
  asio::post(worker_.io(), [self] {
    if (!self->finished_or_closing()) self->send_nonza("<r xmlns='urn:xmpp:sm:3'/>");
  });
}

void C2sSession::sm_failed(std::string_view condition) {
  std::string out = "<failed xmlns='urn:xmpp:sm:3'><";
  out += condition;
  out += " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>";
  send_nonza(std::move(out));
}

void C2sSession::close_handled_too_high(std::uint32_t h) {
  const std::string condition = "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='" + std::to_string(h) +
                                "' send-count='" + std::to_string(sm_.out.sent_count()) + "'/>";
  close(StreamError::undefined_condition, "you acknowledged more stanzas than were sent", condition);
}

void C2sSession::handle_ack(const xml::Element& a) {
  auto h = parse_h(a.attr_or("h"));
  if (!h) {
    close(StreamError::bad_format, "<a/> needs an 'h' counter");
    return;
  }
  if (sm_.out.ack(*h) == SmQueue::Ack::too_high) {
    close_handled_too_high(*h);
    return;
  }
  sm_.ack_requested = false;
  if (!sm_.out.empty()) request_ack();
}

void C2sSession::handle_sm(const xml::Element& element) {
  const auto& name = element.name();
  if (name == "enable") {
    const auto& cfg = server_.config().stream_management;
    if (!cfg.enabled) return sm_failed("feature-not-implemented");
    if (sm_.enabled) return sm_failed("unexpected-request");
    sm_.enabled = true;
    const auto resume = element.attr_or("resume");
    sm_.resumable = (resume == "true" || resume == "1") && cfg.resume_timeout.count() > 0;
    std::string out = "<enabled xmlns='urn:xmpp:sm:3'";
    if (sm_.resumable) {
      sm_.id = sasl::random_id(24);
      {
        auto& r = registry();
        std::lock_guard lock(r.mutex);
        r.entries[sm_.id] = {std::static_pointer_cast<C2sSession>(shared_from_this()), jid_.bare_str()};
      }
      out += " id='" + sm_.id + "' resume='true' max='" + std::to_string(cfg.resume_timeout.count()) + "'";
    }
    out += "/>";
    send_nonza(std::move(out));
    return;
  }
  if (!sm_.enabled) {
    if (name == "r" || name == "a") return;  // nothing to count yet
    return sm_failed("unexpected-request");
  }
  if (name == "r") {
    send_nonza("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(sm_.handled_in) + "'/>");
    return;
  }
  if (name == "a") return handle_ack(element);
  if (name == "resume") return sm_failed("unexpected-request");
  close(StreamError::unsupported_stanza_type, "unknown stream management element <" + name + "/>");
}

awaitable<void> C2sSession::handle_resume(const xml::Element& element) {
  if (!server_.config().stream_management.enabled) {
    sm_failed("feature-not-implemented");
    co_return;
  }
  const auto previd = std::string(element.attr_or("previd"));
  auto h = parse_h(element.attr_or("h"));
  if (previd.empty() || !h) {
    sm_failed("bad-request");
    co_return;
  }
  std::shared_ptr<C2sSession> old;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.entries.find(previd);
    // Only the session's own account may resume it; anyone else learns nothing.
    if (it != r.entries.end() && it->second.owner == username_ + "@" + domain_) old = it->second.session.lock();
  }
  if (!old || old.get() == this) {
    sm_failed("item-not-found");
    co_return;
  }
  resuming_ = true;
  auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
  const std::uint32_t count = *h;
  asio::post(old->worker_.io(), [old, self, count] { old->surrender(self, count); });
  // adopt() or resume_failed() runs on this worker and ends the wait; meanwhile the parser
  // stays suspended, so nothing else from the client is processed.
  while (resuming_) {
    boost::system::error_code ec;
    resume_wait_.expires_at(asio::steady_timer::time_point::max());
    co_await resume_wait_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

void C2sSession::surrender(std::shared_ptr<C2sSession> next, std::uint32_t h) {
  auto refuse = [&](ResumeFailure why) {
    const std::uint32_t sent = sm_.out.sent_count();
    asio::post(next->worker_.io(), [next, why, h, sent] { next->resume_failed(why, h, sent); });
  };
  if (resumed_away_ || ending.load() || !bound_ || !sm_.resumable || deferred_surrender_) return refuse(ResumeFailure::not_found);
  // Being closed on purpose (replaced, a policy violation, the client's own
  // </stream:stream>): not resumable. Only a broken or timed-out connection is.
  if (!hibernating_ && finished_or_closing()) {
    const auto error = close_error();
    if (peer_closed() || (error && *error != StreamError::connection_timeout)) return refuse(ResumeFailure::not_found);
  }
  if (handling_) {
    deferred_surrender_ = DeferredSurrender{std::move(next), h};
    return;
  }
  if (sm_.out.ack(h) == SmQueue::Ack::too_high) return refuse(ResumeFailure::handled_too_high);
  resumed_away_ = true;
  successor_ = next;
  hibernating_ = false;
  if (hibernation_) hibernation_->cancel();
  untrack_hibernation();
  // The old connection may not have noticed it is dead yet: it goes now, silently
  // (XEP-0198 §5), and on_closed() leaves the session alone.
  if (!finished()) finish();
  // Held (XEP-0352) stanzas were never sent: they follow the retransmitted ones.
  for (auto& xml : held_.take()) sm_.out.sent(std::move(xml));
  Resumption r{take_state(), std::move(sm_)};
  {
    auto& reg = registry();
    std::lock_guard lock(reg.mutex);
    reg.entries[r.sm.id] = {next, r.session.jid.bare_str()};
  }
  auto old = std::static_pointer_cast<C2sSession>(shared_from_this());
  asio::post(next->worker_.io(), [next, old, r = std::move(r)]() mutable { next->adopt(old, std::move(r)); });
}

void C2sSession::resume_failed(ResumeFailure why, std::uint32_t h, std::uint32_t sent) {
  resuming_ = false;
  resume_wait_.cancel();
  if (why == ResumeFailure::handled_too_high) {
    const std::string condition = "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='" + std::to_string(h) +
                                  "' send-count='" + std::to_string(sent) + "'/>";
    close(StreamError::undefined_condition, "you acknowledged more stanzas than were sent", condition);
    return;
  }
  sm_failed("item-not-found");
}

void C2sSession::adopt(const std::shared_ptr<C2sSession>& old, Resumption r) {
  restore_state(std::move(r.session));
  sm_ = std::move(r.sm);
  sm_.ack_requested = false;
  bound_ = true;
  state_ = stream::State::established;
  resuming_ = false;
  resume_wait_.cancel();
  auto self = std::static_pointer_cast<core::Session>(shared_from_this());
  // Per-session module state first, so nobody routing meanwhile finds us without it.
  if (auto* host = server_.host(domain_)) host->session_moved(*old, *this);
  // Takes the place of `old` under the same full JID. A session bound there meanwhile by a
  // new login with the same resource gives way, as an older session would (RFC 6120 §7.7.2.2).
  if (auto displaced = server_.directory().bind(self); displaced && displaced.get() != old.get())
    displaced->close_with(StreamError::conflict, "replaced by a resumed session with the same resource");
  spdlog::info("{} resumed its session from {} on worker {} ({} unacknowledged stanzas)", jid_.str(),
               remote_address_, worker_.index(), sm_.out.size());
  if (finished_or_closing()) {
    // This connection died while taking over: the session waits again.
    if (sm_.resumable) hibernate();
    else end_session();
    return;
  }
  send_nonza("<resumed xmlns='urn:xmpp:sm:3' previd='" + sm_.id + "' h='" + std::to_string(sm_.handled_in) + "'/>");
  for (const auto& item : sm_.out.items()) resend(item.xml);
  if (!sm_.out.empty()) request_ack();
  start_keepalive();
}

void C2sSession::untrack_hibernation() {
  if (hibernation_track_) worker_.untrack(hibernation_track_);
  hibernation_track_ = 0;
}

void C2sSession::hibernate() {
  hibernating_ = true;
  // At shutdown a waiting session ends like an expired one: its unacknowledged messages
  // go to offline storage while the server drains.
  std::weak_ptr<C2sSession> weak = std::static_pointer_cast<C2sSession>(shared_from_this());
  hibernation_track_ = worker_.track([weak] {
    if (auto s = weak.lock()) s->expire();
  });
  for (auto& xml : held_.take()) sm_.out.sent(std::move(xml));
  const auto timeout = server_.config().stream_management.resume_timeout;
  spdlog::info("{}: connection lost; the session waits {}s to be resumed ({} unacknowledged stanzas)", jid_.str(),
               timeout.count(), sm_.out.size());
  hibernation_ = std::make_unique<asio::steady_timer>(worker_.io(), timeout);
  auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
  hibernation_->async_wait([self](const boost::system::error_code& ec) {
    if (!ec) self->expire();
  });
}

void C2sSession::expire() {
  if (resumed_away_ || ending.load()) return;
  if (hibernating_) spdlog::info("{}: not resumed in time; the session ends", jid_.str());
  hibernating_ = false;
  if (hibernation_) hibernation_->cancel();
  untrack_hibernation();
  end_session();
}

void C2sSession::end_session() {
  if (ending.exchange(true)) return;
  if (!sm_.id.empty()) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.entries.find(sm_.id);
    if (it != r.entries.end() && it->second.session.lock().get() == this) r.entries.erase(it);
  }
  spdlog::info("{} disconnected", jid_.str());
  // What the client never acknowledged goes where a message to an unavailable resource
  // goes. The session stays in the directory meanwhile, so what still arrives for it
  // queues behind (in order); then it leaves the directory and modules react
  // (unavailable presence to contacts...).
  // Counted as live work until the re-routing is done: shutdown waits for it.
  drain_track_ = worker_.track([] {});
  reroute(sm_.out.take(), true);
}

void C2sSession::reroute(std::deque<SmQueue::Item> unacked, bool last) {
  for (auto& item : unacked) reroute_pending_.push_back(std::move(item));
  if (rerouting_) return;  // the running drain takes these too, in order
  rerouting_ = true;
  auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
  auto run = [self, last]() { return self->drain_reroutes(last); };
  asio::co_spawn(worker_.io(), std::move(run), asio::detached);
}

awaitable<void> C2sSession::drain_reroutes(bool last) {
  auto self = shared_from_this();
  std::size_t messages = 0;
  while (!reroute_pending_.empty()) {
    auto item = std::move(reroute_pending_.front());
    reroute_pending_.pop_front();
    auto stanza = xml::parse_element(*item.xml);
    if (!stanza) continue;
    const auto kind = xmpp::kind_of(*stanza);
    const auto type = std::string(stanza->attr_or("type"));
    if (kind == xmpp::Kind::iq) {
      if (type != "get" && type != "set") continue;
      try {
        co_await server_.router().bounce(*stanza, xmpp::StanzaError::service_unavailable);
      } catch (const std::exception& e) {
        spdlog::error("{}: cannot bounce an unanswered iq: {}", jid_.str(), e.what());
      }
      continue;
    }
    if (kind != xmpp::Kind::message || type == "error" || type == "groupchat" || type == "headline" || is_copy(*stanza))
      continue;
    if (!stanza->child("delay", "urn:xmpp:delay")) {
      auto& delay = stanza->add("delay", "urn:xmpp:delay");
      delay.set_attr("from", domain_);
      delay.set_attr("stamp", xmpp::utc_stamp(item.queued));
    }
    ++messages;
    try {
      co_await server_.router().redeliver(std::move(*stanza));
    } catch (const std::exception& e) {
      spdlog::error("{}: cannot re-route an unacknowledged message: {}", jid_.str(), e.what());
    }
  }
  rerouting_ = false;
  if (messages) spdlog::info("{}: {} unacknowledged messages re-routed", jid_.str(), messages);
  if (last) {
    server_.directory().unbind(*this);
    if (auto* host = server_.host(domain_)) co_await host->session_closed(std::static_pointer_cast<core::Session>(self));
    if (drain_track_) worker_.untrack(drain_track_);
    drain_track_ = 0;
  }
}

}  // namespace herald::c2s
