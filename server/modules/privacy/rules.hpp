// The access-rule engine behind privacy lists (XEP-0016), the blocking command (XEP-0191)
// and polite blocking: pure functions over storage::PrivacyList, no I/O, unit-tested on
// their own (tests/unit/privacy). The privacy module keeps one CompiledList per list in
// use and asks it about each stanza; nothing here touches the database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"
#include "server/xmpp/stanza.hpp"
#include "storage/stores.hpp"

namespace herald::modules::privacy {

inline constexpr std::string_view kPrivacyNs = "jabber:iq:privacy";
inline constexpr std::string_view kBlockingNs = "urn:xmpp:blocking";
inline constexpr std::string_view kBlockingErrorsNs = "urn:xmpp:blocking:errors";
// The list the blocking command creates when the user has no default list (as ejabberd).
inline constexpr std::string_view kBlocklistName = "Blocked contacts";

// What a rule is asked about, from the list owner's point of view (XEP-0016 §2.1, §2.13).
enum class Check : std::uint8_t {
  message_in,    // a message to the owner
  iq_in,         // an IQ to the owner
  presence_in,   // a presence notification to the owner (no type, or unavailable)
  presence_out,  // a presence notification from the owner (no type, or unavailable)
  other,         // anything else: outbound messages and IQs, subscription stanzas and
                 // probes in either direction. Only items with no stanza kinds match it.
};

// The Check for a stanza of `kind` with type attribute `type` crossing the owner's
// boundary inbound (to the owner) or outbound (from the owner).
Check classify(xmpp::Kind kind, std::string_view type, bool inbound);

// What the owner's roster says about the other party. Someone not in the roster has
// subscription none and no groups (XEP-0016 §2.1: "none" includes unknown entities).
struct Contact {
  storage::Subscription subscription = storage::Subscription::none;
  const std::vector<std::string>* groups = nullptr;  // nullptr: no groups
};

struct Decision {
  bool allow = true;
  // The item that decided, nullptr when no item matched (fall-through: allow).
  const storage::PrivacyItem* item = nullptr;
  // A XEP-0191 block decided it: outbound errors carry <blocked xmlns='urn:xmpp:blocking:errors'/>.
  bool blocked() const;
};

// XEP-0016 §2.1 JID matching: user@domain/resource matches only that JID; user@domain any
// of its resources; domain/resource only that resource of the domain itself;
// domain matches the domain, every user@domain and every domain/resource.
bool jid_matches(const xmpp::Jid& item, const xmpp::Jid& other);

// A blocking-command item (XEP-0191 §8): type jid, action deny, every stanza kind.
bool is_block_item(const storage::PrivacyItem& item);

// A list ready to evaluate: items in ascending order with their JIDs parsed once.
class CompiledList {
 public:
  explicit CompiledList(storage::PrivacyList list);

  const std::string& name() const { return list_.name; }
  const storage::PrivacyList& list() const { return list_; }
  // True if some item is of type group or subscription: evaluating needs the roster.
  bool needs_roster() const { return needs_roster_; }

  // The first item (ascending order) whose type matches `other`/`contact` and whose kinds
  // cover `check` decides; no match allows. `other` is the other party's JID as it
  // appears on the stanza (full or bare).
  Decision evaluate(Check check, const xmpp::Jid& other, const Contact& contact) const;

 private:
  storage::PrivacyList list_;
  std::vector<std::optional<xmpp::Jid>> jids_;  // parallel to list_.items; set for type jid
  bool needs_roster_ = false;
};

// --- XEP-0016 wire format ------------------------------------------------------------

// Parses <list name='..'><item .../>...</list> into a list. On failure returns nullopt
// and sets `error` (bad_request: missing/invalid attribute, duplicate order, bad value,
// unknown child; jid_malformed: a jid value that is not a JID) and `text` (why, for the
// client). JID values are stored prepared (Jid::str()).
std::optional<storage::PrivacyList> parse_list(const xml::Element& list, xmpp::StanzaError& error,
                                               std::string& text);
// Appends <list name='..'> with every item to `query`.
void write_list(xml::Element& query, const storage::PrivacyList& list);

// --- the blocklist as a view of the default list (XEP-0191 §8) ----------------------

// The JIDs of the block items of the default list, in list order; empty without a default.
std::vector<std::string> blocklist(const storage::PrivacyLists& lists);
// Adds block items for `jids` (prepared JID strings) that are not already blocked, ahead
// of every other item of the default list (XEP-0191 §8: blocks come first), keeping the
// other items' relative order. Creates kBlocklistName as the default list if there is
// none. Orders are renumbered only if the new items do not fit below the first one.
storage::PrivacyLists block(storage::PrivacyLists lists, const std::vector<std::string>& jids);
// Removes the block items for `jids` from the default list; every block item if `jids`
// is empty (unblock all). Other items stay.
storage::PrivacyLists unblock(storage::PrivacyLists lists, const std::vector<std::string>& jids);

// Finds a list by name; nullptr if none.
const storage::PrivacyList* find_list(const storage::PrivacyLists& lists, std::string_view name);

}  // namespace herald::modules::privacy
