#include "server/modules/privacy/privacy_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/worker.hpp"
#include "server/modules/roster/roster_service.hpp"

namespace herald::modules {

using privacy::Check;
using privacy::CompiledList;
using xmpp::Jid;

namespace {

// XEP-0016 §2.1: never between a user's own resources; ejabberd and Prosody also let the
// user's own server through (its IQ results and pings), so a deny-all list cannot cut a
// client off from the server it is logged in to.
bool exempt(const Jid& owner, const Jid& other) {
  if (other.domain() != owner.domain()) return false;
  return other.local().empty() || other.local() == owner.local();
}

}  // namespace

PrivacyService::PrivacyService(core::Host& host) : host_(host), roster_(host.service<RosterService>()) {}

PrivacyService::Snapshot PrivacyService::compile(storage::PrivacyLists lists) const {
  auto user = std::make_shared<UserLists>();
  for (const auto& list : lists.lists) {
    auto compiled = std::make_shared<const CompiledList>(list);
    if (list.name == lists.default_name) user->default_list = compiled;
    user->compiled.emplace(list.name, std::move(compiled));
  }
  user->lists = std::move(lists);
  return user;
}

PrivacyService::Snapshot PrivacyService::cached(const std::string& bare) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(bare);
  return it == users_.end() ? nullptr : it->second;
}

awaitable<PrivacyService::Snapshot> PrivacyService::lists(const Jid& user) {
  const auto bare = user.bare_str();
  if (auto hit = cached(bare)) co_return hit;
  auto loaded = compile(co_await core::Worker::current()->privacy().load(user.domain(), user.local()));
  std::lock_guard lock(mutex_);
  // Offline users' lists are kept too (rules hold while the owner is offline), within a
  // bound: past it, every offline entry goes and is reloaded when next needed.
  if (users_.size() >= online_.size() + max_offline_cached_) {
    std::erase_if(users_, [this](const auto& entry) { return !online_.contains(entry.first); });
  }
  // A concurrent change may have published a newer snapshot: never overwrite it.
  auto [it, inserted] = users_.try_emplace(bare, loaded);
  co_return it->second;
}

awaitable<void> PrivacyService::session_bound(const std::shared_ptr<core::Session>& session) {
  {
    std::lock_guard lock(mutex_);
    ++online_[session->jid().bare_str()];
    // A fresh state: a new session may live at a closed one's address.
    sessions_[session.get()] = SessionState{};
  }
  try {
    co_await lists(session->jid());
  } catch (const std::exception& e) {
    spdlog::error("cannot load the privacy lists of {}: {}", session->jid().bare_str(), e.what());
  }
}

void PrivacyService::session_closed(const core::Session& session) {
  std::lock_guard lock(mutex_);
  if (sessions_.erase(&session) == 0) return;
  auto it = online_.find(session.jid().bare_str());
  if (it != online_.end() && --it->second == 0) online_.erase(it);
}

void PrivacyService::session_moved(const core::Session& from, const core::Session& to) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(&from);
  if (it == sessions_.end()) return;
  auto state = std::move(it->second);
  sessions_.erase(it);
  sessions_[&to] = std::move(state);
}

std::shared_ptr<const CompiledList> PrivacyService::effective(const UserLists* user, const SessionState* state) const {
  if (!user) return nullptr;
  if (state && !state->active.empty()) {
    auto it = user->compiled.find(state->active);
    return it == user->compiled.end() ? nullptr : it->second;
  }
  return user->default_list;
}

privacy::Contact PrivacyService::contact_of(const storage::Roster* roster, const Jid& other) const {
  privacy::Contact contact;
  if (!roster) return contact;
  if (const auto* item = RosterService::find(*roster, other.bare_str())) {
    contact.subscription = item->state.subscription;
    contact.groups = &item->state.groups;
  }
  return contact;
}

PrivacyService::Verdict PrivacyService::evaluate(const CompiledList* list, const Jid& owner, Check check,
                                                 const Jid& other, const storage::Roster* roster) const {
  if (!list || exempt(owner, other)) return {};
  const auto decision = list->evaluate(check, other, contact_of(roster, other));
  return Verdict{decision.allow, decision.blocked()};
}

PrivacyService::Verdict PrivacyService::check_session(const core::Session& session, Check check, const Jid& other) {
  if (exempt(session.jid(), other)) return {};
  std::shared_ptr<const CompiledList> list;
  {
    std::lock_guard lock(mutex_);
    auto user = users_.find(session.jid().bare_str());
    auto state = sessions_.find(&session);
    list = effective(user == users_.end() ? nullptr : user->second.get(), state == sessions_.end() ? nullptr : &state->second);
  }
  if (!list) return {};
  // The roster of a user with a bound session is cached; lists that name groups or
  // subscriptions read it as it is now (XEP-0016 §2.2).
  std::shared_ptr<const storage::Roster> roster;
  if (list->needs_roster()) roster = roster_.cached(session.jid().bare());
  return evaluate(list.get(), session.jid(), check, other, roster.get());
}

awaitable<PrivacyService::Verdict> PrivacyService::check_account(const Jid& owner, Check check, const Jid& other) {
  if (exempt(owner, other)) co_return Verdict{};
  auto user = co_await lists(owner);
  auto list = user->default_list;
  if (!list) co_return Verdict{};
  std::shared_ptr<const storage::Roster> roster;
  if (list->needs_roster()) roster = co_await roster_.get(owner.bare());
  co_return evaluate(list.get(), owner, check, other, roster.get());
}

bool PrivacyService::invisible(const core::Session& session) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(&session);
  return it != sessions_.end() && it->second.invisible;
}

bool PrivacyService::suppress_probes(const core::Session& session) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(&session);
  return it != sessions_.end() && it->second.invisible && !it->second.probe;
}

bool PrivacyService::presence_visible(const core::Session& session, const Jid& contact) {
  if (exempt(session.jid(), contact)) return true;
  if (invisible(session)) return false;
  return check_session(session, Check::presence_out, contact).allow;
}

std::string PrivacyService::active_name(const core::Session& session) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(&session);
  return it == sessions_.end() ? std::string() : it->second.active;
}

std::vector<std::string> PrivacyService::others_active(const core::Session& session) {
  std::vector<std::string> names;
  for (auto& other : host_.server().directory().resources(session.jid().bare())) {
    if (other.get() == &session) continue;
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(other.get());
    names.push_back(it == sessions_.end() ? std::string() : it->second.active);
  }
  return names;
}

// --- changes --------------------------------------------------------------------------

awaitable<void> PrivacyService::with_presence_effects(const Jid& user, const std::function<void()>& change) {
  auto sessions = host_.server().directory().resources(user.bare());
  std::erase_if(sessions, [](const auto& s) { return !s->available.load(); });
  if (sessions.empty()) {
    change();
    co_return;
  }
  std::shared_ptr<const storage::Roster> roster;
  try {
    roster = co_await roster_.get(user.bare());
  } catch (const std::exception& e) {
    spdlog::error("privacy change of {}: cannot read the roster: {}", user.bare_str(), e.what());
  }
  if (!roster) roster = std::make_shared<const storage::Roster>();

  // For each available session and roster contact: does the contact see the session
  // (a subscriber the rules let through), and does the session see the contact?
  struct Seen {
    std::vector<char> out, in;
  };
  auto snapshot = [&] {
    std::vector<Seen> seen(sessions.size());
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      auto& s = *sessions[i];
      for (const auto& item : roster->items) {
        auto contact = Jid::parse(item.contact);
        if (!contact) {
          seen[i].out.push_back(0);
          seen[i].in.push_back(0);
          continue;
        }
        seen[i].out.push_back(has_from(item.state) && presence_visible(s, *contact));
        seen[i].in.push_back(has_to(item.state) && check_session(s, Check::presence_in, *contact).allow);
      }
    }
    return seen;
  };
  const auto before = snapshot();
  change();
  const auto after = snapshot();

  auto& router = host_.server().router();
  std::set<std::string> probed;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    auto& s = *sessions[i];
    for (std::size_t j = 0; j < roster->items.size(); ++j) {
      const auto& contact = roster->items[j].contact;
      if (before[i].out[j] && !after[i].out[j]) {
        // XEP-0016 §2.14 / XEP-0191 §3.3: the contact can no longer see this resource.
        xml::Element p("presence", "jabber:client");
        p.set_attr("from", s.jid().str());
        p.set_attr("to", contact);
        p.set_attr("type", "unavailable");
        co_await router.route(std::move(p));
      } else if (!before[i].out[j] && after[i].out[j]) {
        // XEP-0191 §3.4 / XEP-0186 §3.2: it sees the resource's current presence again.
        if (auto current = s.presence()) {
          xml::Element copy = *current;
          copy.set_attr("to", contact);
          co_await router.route(std::move(copy));
        }
      }
      if (before[i].in[j] && !after[i].in[j]) {
        // XEP-0016 §2.13 note: the user's client learns the contact is gone for it.
        xml::Element p("presence", "jabber:client");
        p.set_attr("from", contact);
        p.set_attr("to", s.jid().str());
        p.set_attr("type", "unavailable");
        core::Router::send_to(s, p);
      } else if (!before[i].in[j] && after[i].in[j] && probed.insert(contact).second) {
        // Let the contact's presence reach the user again.
        xml::Element probe("presence", "jabber:client");
        probe.set_attr("from", user.bare_str());
        probe.set_attr("to", contact);
        probe.set_attr("type", "probe");
        co_await router.route(std::move(probe));
      }
    }
  }
}

awaitable<std::optional<std::pair<storage::PrivacyLists, storage::PrivacyLists>>> PrivacyService::modify(
    const Jid& user, Update update) {
  auto result = co_await core::Worker::current()->privacy().modify(user.domain(), user.local(), std::move(update));
  if (!result || result->first == result->second) co_return result;
  auto snapshot = compile(result->second);
  const auto bare = user.bare_str();
  auto sessions = host_.server().directory().resources(user.bare());
  co_await with_presence_effects(user, [&] {
    std::lock_guard lock(mutex_);
    users_[bare] = snapshot;
    // A removed list stops being anyone's active list (only the sender's can be: the
    // module refuses to remove a list another session has active).
    for (auto& s : sessions) {
      auto it = sessions_.find(s.get());
      if (it != sessions_.end() && !it->second.active.empty() && !snapshot->compiled.contains(it->second.active))
        it->second.active.clear();
    }
  });
  co_return result;
}

awaitable<void> PrivacyService::set_active(const core::Session& session, std::string name) {
  co_await with_presence_effects(session.jid().bare(), [&] {
    std::lock_guard lock(mutex_);
    if (auto it = sessions_.find(&session); it != sessions_.end()) it->second.active = name;
  });
}

awaitable<void> PrivacyService::set_invisible(const core::Session& session, bool invisible, bool probe) {
  co_await with_presence_effects(session.jid().bare(), [&] {
    std::lock_guard lock(mutex_);
    if (auto it = sessions_.find(&session); it != sessions_.end()) {
      it->second.invisible = invisible;
      it->second.probe = probe;
    }
  });
}

}  // namespace herald::modules
