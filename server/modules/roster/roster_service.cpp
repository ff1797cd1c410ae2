#include "server/modules/roster/roster_service.hpp"

#include <algorithm>

#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/sasl/crypto.hpp"
#include "server/xml/serializer.hpp"

namespace herald::modules {

using storage::ContactState;
using storage::Subscription;

roster::State to_state(const ContactState& s) {
  roster::State r;
  switch (s.subscription) {
    case Subscription::none: r.sub = roster::Sub::none; break;
    case Subscription::to: r.sub = roster::Sub::to; break;
    case Subscription::from: r.sub = roster::Sub::from; break;
    case Subscription::both: r.sub = roster::Sub::both; break;
  }
  r.pending_out = s.pending_out;
  r.pending_in = s.pending_in;
  r.preapproved = s.preapproved;
  return r;
}

ContactState with_state(ContactState base, const roster::State& s) {
  switch (s.sub) {
    case roster::Sub::none: base.subscription = Subscription::none; break;
    case roster::Sub::to: base.subscription = Subscription::to; break;
    case roster::Sub::from: base.subscription = Subscription::from; break;
    case roster::Sub::both: base.subscription = Subscription::both; break;
  }
  base.pending_out = s.pending_out;
  base.pending_in = s.pending_in;
  base.preapproved = s.preapproved;
  // A subscription in either direction or a pending request of the user's own is always
  // a visible roster item (RFC 6121 §3.1.2, §3.1.5).
  if (base.subscription != Subscription::none || base.pending_out || base.preapproved) base.in_roster = true;
  return base;
}

bool has_from(const ContactState& s) {
  return s.subscription == Subscription::from || s.subscription == Subscription::both;
}
bool has_to(const ContactState& s) {
  return s.subscription == Subscription::to || s.subscription == Subscription::both;
}

const storage::RosterItem* RosterService::find(const storage::Roster& roster, std::string_view contact) {
  auto it = std::lower_bound(roster.items.begin(), roster.items.end(), contact,
                             [](const storage::RosterItem& i, std::string_view c) { return i.contact < c; });
  return it != roster.items.end() && it->contact == contact ? &*it : nullptr;
}

awaitable<std::shared_ptr<const storage::Roster>> RosterService::get(const xmpp::Jid& user) {
  const auto key = user.bare_str();
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) co_return it->second;
  }
  auto loaded = std::make_shared<const storage::Roster>(
      co_await core::Worker::current()->roster().load(user.domain(), user.local()));
  // Cache only users with a bound resource; an offline user's roster is read when needed.
  if (!host_.server().directory().resources(user).empty()) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = cache_.try_emplace(key, loaded);
    co_return it->second;  // a concurrent loader may have won; either copy is current
  }
  co_return loaded;
}

awaitable<ContactState> RosterService::state(const xmpp::Jid& user, const xmpp::Jid& contact) {
  if (auto roster = cached(user)) {
    if (const auto* item = find(*roster, contact.bare_str())) co_return item->state;
    co_return ContactState{};
  }
  // Not cached (no bound resource): read the one item, not the whole roster. Each probe
  // or presence to an offline user with 1,000 contacts used to read all 1,000 rows
  // (docs/performance.md, login rate). Same answer: only in-roster items count.
  auto one = co_await core::Worker::current()->roster().get(user.domain(), user.local(), contact.bare_str());
  if (one && one->in_roster) co_return *one;
  co_return ContactState{};
}

std::shared_ptr<const storage::Roster> RosterService::cached(const xmpp::Jid& user) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(user.bare_str());
  return it == cache_.end() ? nullptr : it->second;
}

void RosterService::forget(const xmpp::Jid& user) {
  std::lock_guard lock(mutex_);
  cache_.erase(user.bare_str());
}

void RosterService::apply_to_cache(const xmpp::Jid& user, const storage::RosterChange& change) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(user.bare_str());
  if (it == cache_.end()) return;
  auto next = std::make_shared<storage::Roster>(*it->second);
  next->version = std::max(next->version, change.version);
  auto pos = std::lower_bound(next->items.begin(), next->items.end(), change.contact,
                              [](const storage::RosterItem& i, const std::string& c) { return i.contact < c; });
  const bool present = pos != next->items.end() && pos->contact == change.contact;
  if (change.after && change.after->in_roster) {
    if (present) {
      pos->state = *change.after;
    } else {
      next->items.insert(pos, storage::RosterItem{change.contact, *change.after});
    }
  } else if (present) {
    next->items.erase(pos);
  }
  it->second = std::move(next);
}

awaitable<std::optional<storage::RosterChange>> RosterService::update(const xmpp::Jid& user, const xmpp::Jid& contact,
                                                                      Updater updater, std::string request_stanza) {
  auto change = co_await core::Worker::current()->roster().update(user.domain(), user.local(), contact.bare_str(),
                                                                  std::move(updater), std::move(request_stanza));
  if (!change) co_return std::nullopt;
  apply_to_cache(user, *change);
  co_return change;
}

void RosterService::announce(const xmpp::Jid& user, const std::optional<storage::RosterChange>& change) {
  if (change && storage::visible_change(change->before, change->after)) push(user, *change);
}

awaitable<void> RosterService::unavailable_to(const xmpp::Jid& user, const xmpp::Jid& contact) {
  for (auto& s : host_.server().directory().resources(user)) {
    if (!s->available.load()) continue;
    xml::Element p("presence", "jabber:client");
    p.set_attr("from", s->jid().str());
    p.set_attr("to", contact.bare_str());
    p.set_attr("type", "unavailable");
    co_await host_.server().router().route(std::move(p));
  }
}

void RosterService::write_item(xml::Element& query, const std::string& contact, const ContactState* state) {
  auto& item = query.add("item");
  item.set_attr("jid", contact);
  if (!state || !state->in_roster) {
    item.set_attr("subscription", "remove");
    return;
  }
  if (!state->name.empty()) item.set_attr("name", state->name);
  const char* sub = "none";
  switch (state->subscription) {
    case Subscription::none: sub = "none"; break;
    case Subscription::to: sub = "to"; break;
    case Subscription::from: sub = "from"; break;
    case Subscription::both: sub = "both"; break;
  }
  item.set_attr("subscription", sub);
  if (state->pending_out) item.set_attr("ask", "subscribe");
  if (state->preapproved) item.set_attr("approved", "true");
  for (const auto& g : state->groups) item.add("group").add_text(g);
}

void RosterService::push(const xmpp::Jid& user, const storage::RosterChange& change, core::Session* only) {
  xml::Element iq("iq", "jabber:client");
  iq.set_attr("type", "set");
  auto& query = iq.add("query", std::string(ns_roster::roster));
  query.set_attr("ver", std::to_string(change.version));
  write_item(query, change.contact, change.after ? &*change.after : nullptr);
  auto send = [&](core::Session& s) {
    iq.set_attr("id", "push-" + sasl::random_id(8));
    iq.set_attr("to", s.jid().str());
    core::Router::send_to(s, iq);
  };
  if (only) {
    send(*only);
    return;
  }
  for (auto& s : host_.server().directory().resources(user))
    if (s->roster_interested.load()) send(*s);
}

}  // namespace herald::modules
