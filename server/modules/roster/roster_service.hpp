// Rosters of a host's users (RFC 6121 §2): a cache of the roster of every user with a bound
// resource (loaded at bind, shared read-only snapshots, replaced on change), atomic state
// changes through the RosterStore, and roster pushes to interested resources. Shared by the
// roster and presence modules through Host::service<RosterService>().
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "server/core/host.hpp"
#include "server/core/session.hpp"
#include "server/modules/roster/subscription.hpp"
#include "storage/stores.hpp"

namespace herald::modules {

namespace ns_roster {
inline constexpr std::string_view roster = "jabber:iq:roster";
}

// Conversions between the store's view and the pure state machine's.
roster::State to_state(const storage::ContactState& s);
storage::ContactState with_state(storage::ContactState base, const roster::State& s);
bool has_from(const storage::ContactState& s);  // the contact receives the user's presence
bool has_to(const storage::ContactState& s);    // the user receives the contact's presence

class RosterService {
 public:
  explicit RosterService(core::Host& host) : host_(host) {}

  // The roster of a local user: the cached snapshot while a resource is bound, otherwise
  // read from storage (and not cached). Throws storage::Error.
  awaitable<std::shared_ptr<const storage::Roster>> get(const xmpp::Jid& user);
  // The user's state toward `contact` as far as presence is concerned (in-roster items).
  awaitable<storage::ContactState> state(const xmpp::Jid& user, const xmpp::Jid& contact);
  void forget(const xmpp::Jid& user);
  // The cached roster of a user with a bound resource, or nullptr. No I/O, any thread.
  std::shared_ptr<const storage::Roster> cached(const xmpp::Jid& user);

  using Updater = std::function<std::optional<storage::ContactState>(const storage::ContactState&)>;
  // Atomically changes the user's state toward `contact` and refreshes the cache. nullopt
  // when the account does not exist. Does not push: the caller first delivers whatever
  // the RFC says must precede the push (e.g. the inbound 'subscribed', §3.1.6), then
  // calls announce().
  awaitable<std::optional<storage::RosterChange>> update(const xmpp::Jid& user, const xmpp::Jid& contact,
                                                         Updater updater, std::string request_stanza = {});
  // Pushes `change` to the user's interested resources if clients can see it.
  void announce(const xmpp::Jid& user, const std::optional<storage::RosterChange>& change);

  // Roster push of `change` (RFC 6121 §2.1.6) to every interested resource, or to `only`.
  void push(const xmpp::Jid& user, const storage::RosterChange& change, core::Session* only = nullptr);

  // Unavailable presence from each of the user's available resources to `contact`, for a
  // contact that is losing its subscription to the user (RFC 6121 §3.2.2, §3.3.3).
  awaitable<void> unavailable_to(const xmpp::Jid& user, const xmpp::Jid& contact);

  static void write_item(xml::Element& query, const std::string& contact, const storage::ContactState* state);
  static const storage::RosterItem* find(const storage::Roster& roster, std::string_view contact);

 private:
  void apply_to_cache(const xmpp::Jid& user, const storage::RosterChange& change);

  core::Host& host_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const storage::Roster>> cache_;  // bare JID -> roster
};

}  // namespace herald::modules
