// The storage seam: every feature reaches the database only through one of these
// interfaces, so modules never see SQL and a store can be swapped (PostgreSQL, in-memory
// for tests) without touching them. All calls are awaited on the caller's worker and
// never block it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "server/net/asio.hpp"
#include "server/sasl/credentials.hpp"

namespace herald::storage {

// The database is unavailable or a statement failed. Callers turn it into an error
// towards the client (e.g. internal-server-error / temporary-auth-failure), never a
// silent loss: a store never pretends a write happened when it did not.
struct Error : std::runtime_error {
  using runtime_error::runtime_error;
};

// Accounts and their SCRAM credentials. Domains and usernames are passed already
// prepared (the JID's domain and local part); the store compares them byte for byte.
// Only SCRAM keys are stored, never passwords.
class AccountStore {
 public:
  virtual ~AccountStore() = default;

  // The account's keys, nullopt if there is no such account.
  virtual awaitable<std::optional<sasl::Credentials>> credentials(std::string domain,
                                                                  std::string username) = 0;
  virtual awaitable<bool> exists(std::string domain, std::string username) = 0;
  // False if the account already exists. All hashes are written in one transaction.
  virtual awaitable<bool> create(std::string domain, std::string username,
                                 sasl::Credentials credentials) = 0;
  // Replaces every stored hash; false if there is no such account.
  virtual awaitable<bool> set_credentials(std::string domain, std::string username,
                                          sasl::Credentials credentials) = 0;
  // False if there was no such account. Removes everything the account owns.
  virtual awaitable<bool> remove(std::string domain, std::string username) = 0;
  // (domain, username) pairs sorted bytewise; all domains when domain is nullopt.
  virtual awaitable<std::vector<std::pair<std::string, std::string>>> list(
      std::optional<std::string> domain) = 0;
};

// Rosters, presence subscriptions and last presence (RFC 6121). Contacts are bare JIDs
// as prepared strings, compared byte for byte like domains and usernames.
enum class Subscription { none, to, from, both };

struct ContactState {  // the user's state toward one contact (RFC 6121 App. A)
  Subscription subscription = Subscription::none;
  bool pending_out = false;  // ask='subscribe'
  bool pending_in = false;   // an inbound request is stored (subscription_requests row exists)
  bool preapproved = false;
  bool in_roster = false;  // the item is in the user's roster (visible to clients)
  std::string name;        // roster item name; empty: none
  std::vector<std::string> groups;  // the store keeps them sorted bytewise, without duplicates

  friend bool operator==(const ContactState&, const ContactState&) = default;
};

struct RosterItem {
  std::string contact;  // bare JID string, prepared
  ContactState state;
};

struct Roster {
  std::int64_t version = 0;
  std::vector<RosterItem> items;  // in_roster only, sorted bytewise by contact
};

// update(): before/after are the full states as get() returns them (nullopt: state None,
// no item and no pending request), version the account's roster version afterwards.
// changes_since(): before is always nullopt (not kept), after the item as it is now or
// nullopt when it left the roster; version the one stamped by its last visible change.
struct RosterChange {
  std::string contact;
  std::optional<ContactState> before, after;  // after == nullopt: removed from roster
  std::int64_t version = 0;
};

// True if a client would see a difference (roster push): the item entered or left the
// roster, or its subscription, ask, approved (RFC 6121 3.4), name or groups changed while
// in it. Exactly the changes that bump the roster version; pending_in and anything about
// a contact outside the roster are invisible.
inline bool visible_change(const std::optional<ContactState>& before,
                           const std::optional<ContactState>& after) {
  bool was = before && before->in_roster, is = after && after->in_roster;
  if (was != is) return true;
  if (!is) return false;
  return before->subscription != after->subscription ||
         before->pending_out != after->pending_out ||
         before->preapproved != after->preapproved || before->name != after->name ||
         before->groups != after->groups;
}

class RosterStore {
 public:
  virtual ~RosterStore() = default;

  // The roster clients see; version 0 and no items if the account does not exist.
  virtual awaitable<Roster> load(std::string domain, std::string username) = 0;
  // Items changed (incl. removals, as state nullopt) after `since`, oldest change first;
  // nullopt if `since` is unknown/too old or newer than current (or there is no such
  // account) -> caller sends the full roster. Empty when `since` is current.
  virtual awaitable<std::optional<std::vector<RosterChange>>> changes_since(
      std::string domain, std::string username, std::int64_t since) = 0;
  // nullopt: no row (state None).
  virtual awaitable<std::optional<ContactState>> get(std::string domain, std::string username,
                                                     std::string contact) = 0;
  // Atomically read-modify-write one contact's state: in one transaction, lock the
  // ACCOUNT row (SELECT ... FOR NO KEY UPDATE on accounts, which serializes all roster
  // changes of one user), read the current state (none if no row; pending_in from
  // subscription_requests), call `update` (a pure function, no I/O; called exactly once)
  // and, if it returns a state, write it: upsert/tombstone the item (an item with
  // in_roster=false and subscription none, no ask, no preapproval is stored as
  // removed=true, its name and groups dropped; not stored at all if it never was
  // visible), replace groups, insert/delete the
  // subscription_requests row to match pending_in (with `request_stanza` when it becomes
  // true; an existing request keeps its stanza), bump the account's roster version ONLY
  // if something visible to clients changed (see visible_change) and return the change.
  // If `update` returns nullopt or the current state, nothing is written and
  // before == after. Returns nullopt if the account does not exist. What `update` throws
  // propagates, with nothing written.
  virtual awaitable<std::optional<RosterChange>> update(
      std::string domain, std::string username, std::string contact,
      std::function<std::optional<ContactState>(const ContactState& current)> update,
      std::string request_stanza = {}) = 0;
  // (contact, stanza) of the inbound requests awaiting an answer, oldest first.
  virtual awaitable<std::vector<std::pair<std::string, std::string>>> pending_requests(
      std::string domain, std::string username) = 0;
  // Contacts (bare JIDs, sorted bytewise) whose subscription is from/both: they receive
  // the user's presence.
  virtual awaitable<std::vector<std::string>> subscribers(std::string domain,
                                                          std::string username) = 0;
  // Contacts (bare JIDs, sorted bytewise) whose subscription is to/both: the user
  // receives theirs, so the server probes them.
  virtual awaitable<std::vector<std::string>> subscriptions(std::string domain,
                                                            std::string username) = 0;
  // Replaces the stored last unavailable presence; logout_at = now(). Empty strings are
  // stored as NULL. Nothing happens if the account does not exist.
  virtual awaitable<void> set_last_presence(std::string domain, std::string username,
                                            std::string stanza, std::string status) = 0;
  struct LastPresence {
    std::string stanza;
    std::string status;
    std::chrono::system_clock::time_point logout_at;
  };
  virtual awaitable<std::optional<LastPresence>> last_presence(std::string domain,
                                                               std::string username) = 0;
};

// Privacy lists (XEP-0016). They also hold the blocklist (XEP-0191): blocked JIDs are the
// default list's items of type jid, action deny and no stanza kinds (everything).
namespace privacy_kind {  // bits of PrivacyItem::kinds
inline constexpr std::uint8_t message = 1;
inline constexpr std::uint8_t iq = 2;
inline constexpr std::uint8_t presence_in = 4;
inline constexpr std::uint8_t presence_out = 8;
inline constexpr std::uint8_t all = 15;
}  // namespace privacy_kind

struct PrivacyItem {
  enum class Type : std::uint8_t { any, jid, group, subscription };  // any: the fall-through item
  Type type = Type::any;
  std::string value;  // a JID string, a group name, or none/to/from/both; empty for any
  bool allow = false;
  std::uint32_t order = 0;  // unique within a list
  std::uint8_t kinds = 0;   // privacy_kind bits; 0: every stanza (the item had no child elements)

  friend bool operator==(const PrivacyItem&, const PrivacyItem&) = default;
};

struct PrivacyList {
  std::string name;
  std::vector<PrivacyItem> items;  // ascending order

  friend bool operator==(const PrivacyList&, const PrivacyList&) = default;
};

struct PrivacyLists {
  std::vector<PrivacyList> lists;  // sorted bytewise by name, names unique
  std::string default_name;        // empty: no default list; otherwise names one of lists

  friend bool operator==(const PrivacyLists&, const PrivacyLists&) = default;
};

class PrivacyStore {
 public:
  virtual ~PrivacyStore() = default;

  // Every list of the account and which one is the default; empty if there is no account.
  virtual awaitable<PrivacyLists> load(std::string domain, std::string username) = 0;
  // Atomically read-modify-write all of the account's lists: in one transaction, lock the
  // ACCOUNT row (SELECT ... FOR NO KEY UPDATE, as RosterStore::update), load, call
  // `update` (pure, no I/O, called exactly once) and, if it returns lists different from
  // the current ones, write the difference (lists created, replaced or removed; the
  // default). Returns {before, after} (after == before when nothing was written), or
  // nullopt if the account does not exist. What `update` throws propagates, nothing written.
  virtual awaitable<std::optional<std::pair<PrivacyLists, PrivacyLists>>> modify(
      std::string domain, std::string username,
      std::function<std::optional<PrivacyLists>(const PrivacyLists& current)> update) = 0;
};

// Offline messages (XEP-0160): messages for an account with no available resource, kept
// in arrival order until the user comes online. Stanzas are stored as serialized XML,
// already stamped (delay, stanza-id) by the caller.
struct OfflineMessage {
  std::int64_t id = 0;  // increases with arrival order, per database
  std::string stanza;
  std::chrono::system_clock::time_point stored_at;
};

class OfflineStore {
 public:
  virtual ~OfflineStore() = default;

  enum class Put { stored, full, no_account };
  // Appends one message if the account exists and holds fewer than `limit` messages
  // (atomically: concurrent puts for one user never exceed it; lock the account row FOR
  // NO KEY UPDATE, count, insert, in one transaction). Returns only after COMMIT:
  // `stored` means durable. no_account takes precedence over full; limit 0 stores
  // nothing (full). One user's ids increase in the order the puts committed.
  virtual awaitable<Put> put(std::string domain, std::string username, std::string stanza,
                             std::size_t limit) = 0;
  // Up to `max` messages, oldest first (ascending id). Nothing is removed. Empty without
  // an account or with max 0. stored_at has microsecond precision.
  virtual awaitable<std::vector<OfflineMessage>> load(std::string domain, std::string username,
                                                      std::size_t max) = 0;
  // Removes the messages with these ids (others, e.g. stored meanwhile, stay). Ids that
  // are unknown or belong to another account are ignored.
  virtual awaitable<void> remove(std::string domain, std::string username,
                                 std::vector<std::int64_t> ids) = 0;
  virtual awaitable<std::size_t> count(std::string domain, std::string username) = 0;
};

// Message archives (XEP-0313, urn:xmpp:mam:2). Each archived message belongs to one
// owner account; a message between two local users is archived twice (once per owner).
struct ArchiveEntry {
  std::string domain, username;  // the owner
  std::string id;                // the archive id (XEP-0359 stanza-id), unique per owner
  std::string with;              // the other party's bare JID
  std::string stanza;            // serialized message as archived
};

struct ArchivedMessage {
  std::string id;
  std::string with;
  std::string stanza;
  // When it was archived (the appending transaction's start), microsecond precision.
  // Archive order is append order; stamps follow it, except that concurrent appends may
  // leave them slightly out of that order.
  std::chrono::system_clock::time_point stamp;
};

// Every filter given applies (AND). The filter proper is with/start/end/ids; after_id and
// before_id bound the page within it, in archive order (by position, not by time: the
// named message need not match the filter itself).
struct ArchiveQuery {
  std::optional<std::string> with;  // bare JID: matches exactly; full JID: also exact
  // Inclusive; compared at the stored microsecond precision (a start between two
  // microseconds admits from the next one, an end the one before).
  std::optional<std::chrono::system_clock::time_point> start, end;
  std::optional<std::string> after_id, before_id;  // exclusive bounds (form or RSM)
  std::vector<std::string> ids;                     // if non-empty: only these ids
  // Page size (0: count only). The store does not cap it: callers do (the server's
  // maximum page).
  std::size_t max = 50;
  // RSM <before/> (empty or with an id): take the page at the END of the matching range
  // (the `max` newest before before_id, and after after_id if given); otherwise the page
  // at the start (the `max` oldest after after_id, and before before_id if given).
  bool from_end = false;
};

struct ArchivePage {
  std::vector<ArchivedMessage> messages;  // always oldest first
  // No more matching messages beyond this page in the paging direction (XEP-0313
  // <fin complete='true'/>): from_end, none older than the page (and after after_id);
  // otherwise none newer than the page (and before before_id). An empty page is complete.
  // With max 0: true iff nothing in the range at all.
  bool complete = true;
  // Messages matching the filter (with/start/end/ids) over all pages, i.e. ignoring
  // after_id/before_id (XEP-0059 <count/>).
  std::size_t count = 0;
  // Position of messages[0] among those `count` matches (XEP-0059 <first index=''/>);
  // nullopt when the page is empty.
  std::optional<std::size_t> first_index;
};

// Archiving preferences (XEP-0313 §5.2).
struct ArchivePrefs {
  enum class Default { always, never, roster };
  Default default_mode = Default::always;
  std::vector<std::string> always, never;  // bare JIDs, sorted bytewise, unique
  friend bool operator==(const ArchivePrefs&, const ArchivePrefs&) = default;
};

class ArchiveStore {
 public:
  virtual ~ArchiveStore() = default;

  // Appends entries (one statement; owners that do not exist are skipped silently).
  // Archive order is the order of `entries`. An entry whose id its owner already has is
  // skipped too (the first one wins), so retrying an append whose outcome is unknown
  // neither fails nor duplicates. Returns only after COMMIT. Throws storage::Error on
  // failure (nothing written), e.g. for text holding a NUL character.
  virtual awaitable<void> append(std::vector<ArchiveEntry> entries) = 0;
  // The messages of one owner matching `query`, in archive order, count/index/complete
  // from one snapshot. Throws storage::Error{"item-not-found"} if after_id/before_id
  // names no message of the owner (an owner without an account has none: its archive
  // is simply empty).
  virtual awaitable<ArchivePage> query(std::string domain, std::string username,
                                       ArchiveQuery query) = 0;
  // The oldest and newest message of an owner (XEP-0313 metadata), by archive order;
  // nullopt if empty; the same message twice if there is one.
  virtual awaitable<std::optional<std::pair<ArchivedMessage, ArchivedMessage>>> bounds(
      std::string domain, std::string username) = 0;
  // nullopt: never set (the server's default applies), or no such account.
  virtual awaitable<std::optional<ArchivePrefs>> prefs(std::string domain, std::string username) = 0;
  // Replaces the account's preferences; the lists are stored sorted bytewise without
  // duplicates. A JID in both lists stays in both (the caller decides which wins).
  // False if there is no such account.
  virtual awaitable<bool> set_prefs(std::string domain, std::string username, ArchivePrefs prefs) = 0;
  // Deletes every archived message stamped before `before` (all owners), oldest first in
  // batches (10,000 rows per statement, each committed on its own: an interrupted expiry
  // keeps what it deleted); returns how many.
  virtual awaitable<std::size_t> expire(std::chrono::system_clock::time_point before) = 0;
};

}  // namespace herald::storage
