// RFC 6121 §2: roster get, set and remove, roster pushes, versioning (§2.6), and the
// pre-approval stream feature (§3.4).
#include <spdlog/spdlog.h>

#include <charconv>
#include <set>

#include "server/core/host.hpp"
#include "server/core/worker.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/modules/roster/roster_service.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::modules {
namespace {

using storage::ContactState;
using xmpp::StanzaError;

constexpr std::size_t kMaxNameBytes = 1023;

std::optional<std::int64_t> parse_version(std::string_view v) {
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < 0) return std::nullopt;
  return out;
}

class Roster final : public core::Module {
 public:
  void load(core::Host& host) override {
    auto& service = host.service<RosterService>();
    host.add_stream_feature([](xml::Element& features) {
      features.add("ver", "urn:xmpp:features:rosterver");
      features.add("sub", "urn:xmpp:features:pre-approval");
    });
    host.on_session_bound([&service](std::shared_ptr<core::Session> s) -> awaitable<void> {
      try {
        co_await service.get(s->jid().bare());  // warm the cache while the client negotiates
      } catch (const std::exception& e) {
        spdlog::warn("cannot load the roster of {}: {}", s->jid().bare_str(), e.what());
      }
    });
    host.on_session_closed([&service, &host](std::shared_ptr<core::Session> s) -> awaitable<void> {
      if (host.server().directory().resources(s->jid().bare()).empty()) service.forget(s->jid().bare());
      co_return;
    });
    host.events().on("iq-get/bare/jabber:iq:roster:query", 0,
                     [&service](core::StanzaEvent& ev) { return get(service, ev); });
    host.events().on("iq-set/bare/jabber:iq:roster:query", 0,
                     [&service](core::StanzaEvent& ev) { return set(service, ev); });
  }

 private:
  static bool own_roster(const core::StanzaEvent& ev) { return ev.origin && ev.from.bare() == ev.to; }

  static awaitable<core::Result> get(RosterService& service, core::StanzaEvent& ev) {
    // RFC 6121 §2.1.5: only the user may read the roster.
    if (!own_roster(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    ev.origin->roster_interested.store(true);
    std::shared_ptr<const storage::Roster> roster;
    try {
      roster = co_await service.get(ev.to);
    } catch (const std::exception& e) {
      spdlog::error("roster of {}: {}", ev.to.bare_str(), e.what());
    }
    if (!roster) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    const auto* query = ev.stanza.first_element();
    if (const auto* ver = query->attr("ver")) {
      auto known = parse_version(*ver);
      if (known && *known == roster->version) {
        // §2.6.3: the client's copy is current; later changes arrive as pushes.
        co_return co_await reply(ev, xmpp::iq_result(ev.stanza));
      }
      if (known && *known < roster->version) {
        std::optional<std::vector<storage::RosterChange>> changes;
        try {
          changes = co_await core::Worker::current()->roster().changes_since(ev.to.domain(), ev.to.local(), *known);
        } catch (const std::exception&) {
          changes.reset();  // fall back to the full roster
        }
        if (changes) {
          // Interim pushes (§2.6.3): an empty result, then one push per changed item.
          co_await reply(ev, xmpp::iq_result(ev.stanza));
          for (const auto& c : *changes) service.push(ev.to, c, ev.origin);
          co_return core::Result::handled;
        }
      }
    }
    auto result = xmpp::iq_result(ev.stanza);
    auto& q = result.add("query", std::string(ns_roster::roster));
    q.set_attr("ver", std::to_string(roster->version));
    for (const auto& item : roster->items) RosterService::write_item(q, item.contact, &item.state);
    co_return co_await reply(ev, std::move(result));
  }

  static awaitable<core::Result> set(RosterService& service, core::StanzaEvent& ev) {
    if (!own_roster(ev)) co_return co_await reply_error(ev, StanzaError::forbidden);
    const auto* query = ev.stanza.first_element();
    auto items = query->elements();
    if (items.size() != 1 || items[0]->name() != "item" || items[0]->ns() != ns_roster::roster)
      co_return co_await reply_error(ev, StanzaError::bad_request, "a roster set carries exactly one item");
    const auto& item = *items[0];
    auto contact = xmpp::Jid::parse(item.attr_or("jid"));
    if (!contact) co_return co_await reply_error(ev, StanzaError::jid_malformed);
    if (contact->bare() == ev.to) co_return co_await reply_error(ev, StanzaError::not_allowed, "you cannot add yourself");

    if (item.attr_or("subscription") == "remove") co_return co_await remove(service, ev, *contact);

    ContactState wanted;
    wanted.name = std::string(item.attr_or("name"));
    if (wanted.name.size() > kMaxNameBytes) co_return co_await reply_error(ev, StanzaError::not_acceptable, "name too long");
    std::set<std::string> seen;
    for (const auto* g : item.elements()) {
      if (g->name() != "group") continue;
      auto text = g->text();
      if (text.empty()) co_return co_await reply_error(ev, StanzaError::not_acceptable, "empty group name");
      if (text.size() > kMaxNameBytes) co_return co_await reply_error(ev, StanzaError::not_acceptable, "group name too long");
      if (!seen.insert(text).second) co_return co_await reply_error(ev, StanzaError::bad_request, "duplicate group");
      wanted.groups.push_back(std::move(text));
    }
    // The client may not set 'subscription' or 'ask' (§2.1.2.5): only name and groups.
    bool failed = false;
    std::optional<storage::RosterChange> change;
    try {
      change = co_await service.update(ev.to, *contact, [&wanted](const ContactState& cur) -> std::optional<ContactState> {
        ContactState next = cur;
        next.in_roster = true;
        next.name = wanted.name;
        next.groups = wanted.groups;
        if (next.in_roster == cur.in_roster && next.name == cur.name && next.groups == cur.groups) return std::nullopt;
        return next;
      });
    } catch (const std::exception& e) {
      spdlog::error("roster set for {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    service.announce(ev.to, change);
    co_return co_await reply(ev, xmpp::iq_result(ev.stanza));
  }

  // §2.5: removing an item cancels subscriptions both ways and denies a pending request.
  static awaitable<core::Result> remove(RosterService& service, core::StanzaEvent& ev, const xmpp::Jid& contact) {
    std::optional<storage::RosterChange> change;
    bool found = false;
    bool failed = false;
    try {
      change = co_await service.update(ev.to, contact, [&found](const ContactState& cur) -> std::optional<ContactState> {
        found = cur.in_roster || cur.pending_in;
        if (!found) return std::nullopt;
        return ContactState{};
      });
    } catch (const std::exception& e) {
      spdlog::error("roster remove for {}: {}", ev.to.bare_str(), e.what());
      failed = true;
    }
    if (failed) co_return co_await reply_error(ev, StanzaError::internal_server_error);
    if (!found) co_return co_await reply_error(ev, StanzaError::item_not_found);
    co_await reply(ev, xmpp::iq_result(ev.stanza));
    if (change && change->before) {
      const auto& before = *change->before;
      auto& router = ev.host.server().router();
      auto send = [&](const char* type) -> awaitable<void> {
        xml::Element p("presence", "jabber:client");
        p.set_attr("from", ev.to.bare_str());
        p.set_attr("to", contact.bare_str());
        p.set_attr("type", type);
        co_await router.route(std::move(p));
      };
      if (has_to(before) || before.pending_out) co_await send("unsubscribe");
      if (has_from(before) || before.pending_in) {
        if (has_from(before)) {
          // The contact loses the user's presence: tell it the user is gone first (§3.2.2).
          co_await service.unavailable_to(ev.to, contact);
        }
        co_await send("unsubscribed");
      }
    }
    service.announce(ev.to, change);
    co_return core::Result::handled;
  }
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("roster", "RFC 6121 §2: rosters, versioning, pre-approval", herald::modules::Roster)
