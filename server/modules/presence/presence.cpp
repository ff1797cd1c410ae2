// RFC 6121 §3-4 and §8.5: presence subscriptions (through the pure state machine in
// modules/roster/subscription), presence broadcast, probes, directed presence, unavailable
// presence when a session ends; XEP-0012 last activity of offline contacts.
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <unordered_set>

#include "server/core/host.hpp"
#include "server/core/worker.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/modules/privacy/privacy_service.hpp"
#include "server/modules/roster/roster_service.hpp"
#include "server/xml/serializer.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::modules {
namespace {

using storage::ContactState;
using xmpp::Jid;
using xmpp::StanzaError;

constexpr std::string_view kLast = "jabber:iq:last";

// Entities that received directed available presence from a session and are not
// subscribers: they get unavailable presence when the session goes (RFC 6121 §4.6).
using DirectedSet = std::unordered_set<std::string>;
const std::string kDirectedKey = "presence.directed";


xml::Element presence(std::string_view from, std::string_view to, std::string_view type = {}) {
  xml::Element p("presence", "jabber:client");
  p.set_attr("from", std::string(from));
  p.set_attr("to", std::string(to));
  if (!type.empty()) p.set_attr("type", std::string(type));
  return p;
}

bool is_subscription_type(std::string_view t) {
  return t == "subscribe" || t == "subscribed" || t == "unsubscribe" || t == "unsubscribed";
}

class Presence final : public core::Module {
 public:
  void load(core::Host& host) override {
    host_ = &host;
    roster_ = &host.service<RosterService>();
    privacy_ = &host.service<PrivacyService>();
    started_ = std::chrono::steady_clock::now();
    host.add_feature(std::string(kLast));
    host.add_account_feature(std::string(kLast));

    auto& ev = host.events();
    ev.on("presence/broadcast", 0, [this](core::StanzaEvent& e) { return broadcast(e); });
    for (const char* dest : {"pre-presence/bare", "pre-presence/full"})
      ev.on(dest, 0, [this](core::StanzaEvent& e) { return outbound(e); });
    for (const char* dest : {"presence/bare", "presence/full"})
      ev.on(dest, 0, [this](core::StanzaEvent& e) { return inbound(e); });
    ev.on("iq-get/bare/jabber:iq:last:query", 0, [this](core::StanzaEvent& e) { return last_activity(e); });
    ev.on("iq-get/host/jabber:iq:last:query", 0, [this](core::StanzaEvent& e) { return uptime(e); });
    host.on_session_closed([this](std::shared_ptr<core::Session> s) { return session_closed(std::move(s)); });
  }

 private:
  core::Router& router() { return host_->server().router(); }
  core::SessionDirectory& directory() { return host_->server().directory(); }

  // Presence must still flow when storage hiccups: an unreadable roster counts as empty.
  awaitable<std::shared_ptr<const storage::Roster>> roster_or_empty(const Jid& user) {
    try {
      co_return co_await roster_->get(user);
    } catch (const std::exception& e) {
      spdlog::error("presence of {}: cannot read the roster: {}", user.bare_str(), e.what());
    }
    co_return std::make_shared<const storage::Roster>();
  }

  // A new subscriber gets the user's current presence from each available resource (§3.1.5).
  awaitable<void> current_presence_to(const Jid& user, const Jid& contact) {
    for (auto& s : directory().resources(user)) {
      if (!s->available.load() || !privacy_->presence_visible(*s, contact)) continue;
      if (auto p = s->presence()) {
        xml::Element copy = *p;
        copy.set_attr("to", contact.bare_str());
        co_await router().route(std::move(copy));
      }
    }
  }

  // To every contact with a subscription to the user that the session's access rules and
  // visibility let see it, one copy each since 'to' differs.
  awaitable<void> to_subscribers(core::Session& session, const storage::Roster& roster, const xml::Element& stanza) {
    for (const auto& item : roster.items) {
      if (!has_from(item.state)) continue;
      auto contact = Jid::parse(item.contact);
      if (!contact || !privacy_->presence_visible(session, *contact)) continue;
      xml::Element copy = stanza;
      copy.set_attr("to", item.contact);
      co_await router().route(std::move(copy));
    }
  }

  // --- presence from the user's own client without 'to' (§4.2, §4.4, §4.5) -------------

  awaitable<core::Result> broadcast(core::StanzaEvent& ev) {
    auto* session = ev.origin;
    const auto type = ev.stanza.attr_or("type");
    if (!session) co_return core::Result::handled;
    if (type == "unavailable") {
      co_await go_unavailable(*session, ev.stanza);
      co_return core::Result::handled;
    }
    if (!type.empty()) co_return core::Result::handled;  // probes/subscriptions need a 'to'

    const bool initial = !session->available.load();
    // XEP-0160 §2: offline messages go out when the resource next sends non-negative
    // available presence, whether or not it is its first.
    const bool was_reachable = !initial && session->priority.load() >= 0;
    router().update_availability(*session, ev.stanza);
    auto stanza = std::make_shared<const xml::Element>(ev.stanza);
    session->set_presence(stanza);
    const Jid user = session->jid().bare();

    auto roster = co_await roster_or_empty(user);
    co_await to_subscribers(*session, *roster, *stanza);  // §4.2.2, §4.4.2
    // To all of the user's available resources, including this one.
    for (auto& other : directory().resources(user)) {
      if (!other->available.load()) continue;
      xml::Element copy = *stanza;
      copy.set_attr("to", other->jid().str());
      core::Router::send_to(*other, copy);
    }
    if (!initial) {
      if (!was_reachable) co_await became_reachable(*session);
      co_return core::Result::handled;
    }

    // Initial presence: probe the contacts this user is subscribed to (§4.2.2), unless an
    // invisible session asked for no probes (XEP-0186) or the rules block the contact...
    const bool probe = !privacy_->suppress_probes(*session);
    for (const auto& item : roster->items) {
      if (!probe || !has_to(item.state)) continue;
      auto contact = Jid::parse(item.contact);
      if (!contact || !privacy_->check_session(*session, privacy::Check::other, *contact).allow) continue;
      co_await router().route(presence(user.bare_str(), item.contact, "probe"));
    }
    // ...show this resource the user's other available resources...
    for (auto& other : directory().resources(user)) {
      if (other.get() == session || !other->available.load()) continue;
      if (auto p = other->presence()) {
        xml::Element copy = *p;
        copy.set_attr("to", session->jid().str());
        core::Router::send_to(*session, copy);
      }
    }
    // ...and deliver subscription requests that arrived while nobody was online (§3.1.3).
    try {
      auto pending = co_await core::Worker::current()->roster().pending_requests(user.domain(), user.local());
      for (auto& [contact, serialized] : pending) {
        (void)contact;
        core::Router::send_to(*session, std::make_shared<const std::string>(std::move(serialized)));
      }
    } catch (const std::exception& e) {
      spdlog::error("pending subscription requests of {}: {}", user.bare_str(), e.what());
    }
    co_await became_reachable(*session);
    co_return core::Result::handled;
  }

  // Offline messages and the like (XEP-0160), not for negative priority (RFC 6121 §8.5.2.1.1).
  awaitable<void> became_reachable(core::Session& session) {
    if (session.priority.load() < 0) co_return;
    if (auto self = directory().find(session.jid()); self.get() == &session) co_await host_->session_available(self);
  }

  awaitable<void> go_unavailable(core::Session& session, const xml::Element& stanza) {
    const bool was_available = session.available.exchange(false);
    session.set_presence(nullptr);
    const Jid user = session.jid().bare();
    auto& directed = session.module_state<DirectedSet>(kDirectedKey);
    xml::Element out = stanza;
    out.set_attr("from", session.jid().str());
    out.set_attr("type", "unavailable");
    out.remove_attr("to");

    if (was_available) {
      auto roster = co_await roster_or_empty(user);
      co_await to_subscribers(session, *roster, out);
      for (auto& other : directory().resources(user)) {
        if (!other->available.load() && other.get() != &session) continue;
        xml::Element copy = out;
        copy.set_attr("to", other->jid().str());
        core::Router::send_to(*other, copy);
      }
    }
    for (const auto& target : directed) {
      xml::Element copy = out;
      copy.set_attr("to", target);
      co_await router().route(std::move(copy));
    }
    directed.clear();

    bool others = false;
    for (auto& other : directory().resources(user))
      if (other.get() != &session && other->available.load()) others = true;
    if (was_available && !others) {
      // The answer to probes while the user is offline (RFC 2779 3.2.1) and XEP-0012.
      try {
        co_await core::Worker::current()->roster().set_last_presence(user.domain(), user.local(),
                                                                     xml::serialize(out), out.child_text("status", "jabber:client"));
      } catch (const std::exception& e) {
        spdlog::error("cannot store the last presence of {}: {}", user.bare_str(), e.what());
      }
    }
  }

  awaitable<void> session_closed(std::shared_ptr<core::Session> session) {
    // Replaced by a new session with the same resource (RFC 6120 §7.7.2.2): the resource
    // lives on, and an unavailable now could overtake the new session's presence.
    if (auto current = directory().find(session->jid()); current && current != session) {
      session->available.store(false);
      session->module_state<DirectedSet>(kDirectedKey).clear();
    } else {
      xml::Element unavailable("presence", "jabber:client");
      unavailable.set_attr("type", "unavailable");
      try {
        co_await go_unavailable(*session, unavailable);
      } catch (const std::exception& e) {
        spdlog::error("unavailable presence of {}: {}", session->jid().str(), e.what());
      }
    }
    privacy_->session_closed(*session);  // its rules applied to that last presence
  }

  // --- presence from the user's client with a 'to' (§3 outbound, §4.6 directed) --------

  awaitable<core::Result> outbound(core::StanzaEvent& ev) {
    const auto type = std::string(ev.stanza.attr_or("type"));
    if (is_subscription_type(type)) {
      co_await outbound_subscription(ev, *roster::type_from_string(type));
      co_return core::Result::handled;
    }
    if (type == "probe") co_return core::Result::handled;  // probes are the server's business (§4.3)
    if (ev.origin && (type.empty() || type == "unavailable")) {
      ContactState state;
      try {
        state = co_await roster_->state(ev.from.bare(), ev.to);
      } catch (const std::exception&) {
      }
      // An invisible session's subscribers only see it through directed presence, so
      // they are owed unavailable like any other directed recipient (XEP-0186).
      if (!has_from(state) || !ev.to.is_bare() || privacy_->invisible(*ev.origin)) {
        auto& directed = ev.origin->module_state<DirectedSet>(kDirectedKey);
        if (type.empty()) {
          directed.insert(ev.to.str());
        } else {
          directed.erase(ev.to.str());
        }
      }
    }
    co_return core::Result::pass;  // the router delivers it
  }

  awaitable<void> outbound_subscription(core::StanzaEvent& ev, roster::Type type) {
    const Jid user = ev.from.bare();
    const Jid contact = ev.to.bare();
    if (contact == user) co_return;
    roster::Outcome outcome;
    bool failed = false;
    std::optional<storage::RosterChange> change;
    try {
      change = co_await roster_->update(user, contact, [&](const ContactState& cur) -> std::optional<ContactState> {
        outcome = roster::outbound(to_state(cur), type);
        if (!outcome.changed) return std::nullopt;
        return with_state(cur, outcome.next);
      });
    } catch (const std::exception& e) {
      spdlog::error("subscription {} from {} to {}: {}", roster::to_string(type), user.bare_str(), contact.bare_str(), e.what());
      failed = true;
    }
    if (failed) {
      co_await router().bounce(ev.stanza, StanzaError::internal_server_error);
      co_return;
    }
    // Pushed before routing: a local contact's server answers synchronously (auto-replies,
    // pre-approvals) and its changes must reach our clients after ours (RFC 6121 §2.6: pushes
    // in order of modification).
    roster_->announce(user, change);
    if (!outcome.forward) co_return;
    // Subscription stanzas travel between bare JIDs (§3.1.2).
    xml::Element out = ev.stanza;
    out.set_attr("from", user.bare_str());
    out.set_attr("to", contact.bare_str());
    if (type == roster::Type::unsubscribed && change && change->before && has_from(*change->before)) {
      // The contact loses the user's presence: unavailable from every resource first
      // (§3.2.2). Not when merely denying a request: the contact never saw any presence.
      co_await roster_->unavailable_to(user, contact);
    }
    co_await router().route(std::move(out));
    if (type == roster::Type::subscribed) co_await current_presence_to(user, contact);
  }

  // --- presence arriving for a local user (§3 inbound, §4.3 probes) ---------------------

  awaitable<core::Result> inbound(core::StanzaEvent& ev) {
    const auto type = std::string(ev.stanza.attr_or("type"));
    if (is_subscription_type(type)) {
      co_await inbound_subscription(ev, *roster::type_from_string(type));
      co_return core::Result::handled;
    }
    if (type == "probe") {
      co_await answer_probe(ev);
      co_return core::Result::handled;
    }
    co_return core::Result::pass;
  }

  awaitable<void> inbound_subscription(core::StanzaEvent& ev, roster::Type type) {
    const Jid user = ev.to.bare();  // a full-JID 'to' counts as the bare JID (§3.1.3)
    const Jid contact = ev.from.bare();
    if (contact == user) co_return;
    xml::Element in = ev.stanza;
    in.set_attr("from", contact.bare_str());
    in.set_attr("to", user.bare_str());
    roster::Outcome outcome;
    std::optional<storage::RosterChange> change;
    // Not a ?: inside the co_await: GCC 12 destroys such temporaries twice in coroutines.
    std::string request;
    if (type == roster::Type::subscribe) request = xml::serialize(in);
    try {
      change = co_await roster_->update(
          user, contact,
          [&](const ContactState& cur) -> std::optional<ContactState> {
            outcome = roster::inbound(to_state(cur), type);
            if (!outcome.changed) return std::nullopt;
            return with_state(cur, outcome.next);
          },
          std::move(request));
    } catch (const std::exception& e) {
      spdlog::error("inbound {} from {} to {}: {}", roster::to_string(type), contact.bare_str(), user.bare_str(), e.what());
      co_return;  // the sender's server retries nothing; the user's state is unchanged
    }
    bool exists = change.has_value();
    if (!exists && !outcome.changed) {
      // Nothing changed: either no such account (ignore, §8.5.1) or a no-op transition.
      try {
        exists = co_await core::Worker::current()->accounts().exists(user.domain(), user.local());
      } catch (const std::exception&) {
        exists = false;
      }
    }
    if (!exists) co_return;
    if (outcome.forward) {
      for (auto& s : directory().resources(user)) {
        if (!s->available.load() || !ev.host.may_deliver(*s, ev)) continue;
        core::Router::send_to(*s, in);
      }
    }
    // The stanza first, then the roster push: clients tell a contact's action from one of
    // their own resources' this way (§3.1.6, §3.2.3, §3.3.3).
    roster_->announce(user, change);
    if (type == roster::Type::unsubscribe && change && change->before && has_from(*change->before) &&
        change->after && !has_from(*change->after)) {
      // The contact no longer receives this user's presence: it learns the user is gone
      // (§3.3.3 step 3).
      co_await roster_->unavailable_to(user, contact);
    }
    if (outcome.auto_reply) {
      co_await router().route(presence(user.bare_str(), contact.bare_str(), roster::to_string(*outcome.auto_reply)));
      if (*outcome.auto_reply == roster::Type::subscribed) co_await current_presence_to(user, contact);
    }
  }

  awaitable<void> answer_probe(core::StanzaEvent& ev) {
    const Jid user = ev.to.bare();
    const Jid prober = ev.from.bare();
    bool authorized = prober == user;
    if (!authorized) {
      try {
        authorized = has_from(co_await roster_->state(user, prober));
      } catch (const std::exception& e) {
        spdlog::error("probe of {} by {}: {}", user.bare_str(), prober.bare_str(), e.what());
        co_return;
      }
    }
    if (!authorized) {
      // §4.3.2 rule 1 (and §8.5.1 for unknown accounts): from the bare JID, never leaking more.
      co_await router().route(presence(user.bare_str(), prober.bare_str(), "unsubscribed"));
      co_return;
    }
    bool any = false;
    bool online = false;
    bool refused = false;
    for (auto& s : directory().resources(user)) {
      if (!s->available.load()) continue;
      if (!ev.to.is_bare() && s->jid() != ev.to) continue;
      online = true;
      if (!privacy_->presence_visible(*s, ev.from)) {
        // Denied by the session's rules: no answer at all (XEP-0016 §2.14). Invisible:
        // answered below as if the resource were offline (XEP-0186).
        refused = refused || !privacy_->invisible(*s);
        continue;
      }
      auto p = s->presence();
      if (!p) continue;
      any = true;
      if (!ev.to.is_bare()) {
        // A full-JID probe learns only that the resource is available (§4.3.2).
        co_await router().route(presence(s->jid().str(), ev.from.str()));
      } else {
        xml::Element copy = *p;
        copy.set_attr("to", ev.from.str());
        co_await router().route(std::move(copy));
      }
    }
    if (any || refused) co_return;
    if (!online) {
      bool denied = false;
      try {
        denied = !(co_await privacy_->check_account(user, privacy::Check::presence_out, ev.from)).allow;
      } catch (const std::exception& e) {
        spdlog::warn("privacy lists of {}: {}", user.bare_str(), e.what());
        denied = true;
      }
      if (denied) co_return;
    }
    // Offline: the last unavailable presence with its status and when it happened (§4.3.2
    // rule 3, RFC 2779 3.2.1).
    auto reply = presence(user.bare_str(), ev.from.str(), "unavailable");
    try {
      if (auto last = co_await core::Worker::current()->roster().last_presence(user.domain(), user.local())) {
        if (!last->status.empty()) reply.add("status").add_text(last->status);
        auto& delay = reply.add("delay", "urn:xmpp:delay");
        delay.set_attr("from", user.domain());
        delay.set_attr("stamp", xmpp::utc_stamp(last->logout_at));
      }
    } catch (const std::exception& e) {
      spdlog::warn("last presence of {}: {}", user.bare_str(), e.what());
    }
    co_await router().route(std::move(reply));
  }

  // --- XEP-0012: Last Activity -----------------------------------------------------------

  awaitable<core::Result> last_activity(core::StanzaEvent& ev) {
    const Jid user = ev.to;
    const Jid asker = ev.from.bare();
    bool authorized = asker == user;
    bool failed = false;
    try {
      if (!authorized) authorized = has_from(co_await roster_->state(user, asker));
    } catch (const std::exception&) {
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    if (!authorized) {
      // RFC 6121 §8.5.1: an IQ for an account that does not exist gets service-unavailable.
      bool exists = true;
      try {
        exists = co_await core::Worker::current()->accounts().exists(user.domain(), user.local());
      } catch (const std::exception&) {
      }
      co_return co_await reply_error(ev, exists ? StanzaError::forbidden : StanzaError::service_unavailable);
    }
    auto result = xmpp::iq_result(ev.stanza);
    auto& q = result.add("query", std::string(kLast));
    bool online = false;
    for (auto& s : directory().resources(user)) online = online || s->available.load();
    if (online) {
      q.set_attr("seconds", "0");
      co_return co_await reply(ev, std::move(result));
    }
    std::optional<storage::RosterStore::LastPresence> last;
    try {
      last = co_await core::Worker::current()->roster().last_presence(user.domain(), user.local());
    } catch (const std::exception&) {
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    if (!last) co_return co_await reply_error(ev, StanzaError::item_not_found);
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - last->logout_at).count();
    q.set_attr("seconds", std::to_string(std::max<std::int64_t>(0, seconds)));
    if (!last->status.empty()) q.add_text(last->status);
    co_return co_await reply(ev, std::move(result));
  }

  awaitable<core::Result> uptime(core::StanzaEvent& ev) {
    auto result = xmpp::iq_result(ev.stanza);
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
    result.add("query", std::string(kLast)).set_attr("seconds", std::to_string(seconds));
    co_return co_await reply(ev, std::move(result));
  }

  core::Host* host_ = nullptr;
  RosterService* roster_ = nullptr;
  PrivacyService* privacy_ = nullptr;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("presence", "RFC 6121 §3-4: subscriptions and presence; XEP-0012: Last Activity",
              herald::modules::Presence)
