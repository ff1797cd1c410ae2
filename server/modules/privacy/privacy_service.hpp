// Access rules of a host's users at run time: one engine behind privacy lists (XEP-0016),
// the blocking command (XEP-0191) and invisibility (XEP-0186). It caches each user's lists
// compiled (every user with a bound resource, and a bounded number of offline users whose
// default list was needed), each session's active list and visibility, and answers "may
// this stanza pass?" as pure evaluation over those (rules.hpp) plus the cached roster: no
// database round trip per routed stanza. Changes go to PostgreSQL first, then replace the
// cached snapshot, and the presence consequences (unavailable to a contact that can no
// longer see the user, current presence to one that can again) are sent here.
//
// Shared by the privacy and presence modules through Host::service<PrivacyService>(). Any
// worker may call it: the caches are behind one mutex whose sections only copy pointers.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/core/host.hpp"
#include "server/core/session.hpp"
#include "server/modules/privacy/rules.hpp"
#include "storage/stores.hpp"

namespace herald::modules {

class RosterService;

class PrivacyService {
 public:
  explicit PrivacyService(core::Host& host);

  // One user's lists as stored, compiled. Immutable once published.
  struct UserLists {
    storage::PrivacyLists lists;
    std::unordered_map<std::string, std::shared_ptr<const privacy::CompiledList>> compiled;  // by name
    std::shared_ptr<const privacy::CompiledList> default_list;  // nullptr: none
  };
  using Snapshot = std::shared_ptr<const UserLists>;

  // The user's lists: cached, or loaded from storage (and cached). Throws storage::Error.
  awaitable<Snapshot> lists(const xmpp::Jid& user);

  // Session lifecycle: bound from the privacy module's hook; closed from the presence
  // module, after the session's last unavailable presence went out under its rules.
  awaitable<void> session_bound(const std::shared_ptr<core::Session>& session);
  void session_closed(const core::Session& session);
  // Stream resumption: `to` continues `from` with the same active list and visibility.
  void session_moved(const core::Session& from, const core::Session& to);

  // --- decisions ----------------------------------------------------------------------
  struct Verdict {
    bool allow = true;
    bool blocked = false;  // a XEP-0191 block item decided (outbound errors say so)
  };
  // For a stanza between `owner` and `other`, by the list that applies to `session` (its
  // active list, else the user's default). The user's own JIDs and the user's own server
  // are always allowed (XEP-0016 §2.1).
  Verdict check_session(const core::Session& session, privacy::Check check, const xmpp::Jid& other);
  // By the user's default list: what the server does on the account's behalf, and
  // everything while the user is offline (XEP-0016 §2.2). Throws storage::Error.
  awaitable<Verdict> check_account(const xmpp::Jid& owner, privacy::Check check, const xmpp::Jid& other);
  // Whether `contact` may see `session`'s presence: the session is not invisible and its
  // list allows presence-out to the contact.
  bool presence_visible(const core::Session& session, const xmpp::Jid& contact);
  bool invisible(const core::Session& session);
  // XEP-0186 probe='false': no probes when this invisible session sends initial presence.
  bool suppress_probes(const core::Session& session);

  // --- changes (each sends the presence consequences) ----------------------------------
  using Update = std::function<std::optional<storage::PrivacyLists>(const storage::PrivacyLists&)>;
  // Stores the change and publishes it; {before, after}, nullopt if there is no account.
  // Throws storage::Error (nothing changed) and whatever `update` throws.
  awaitable<std::optional<std::pair<storage::PrivacyLists, storage::PrivacyLists>>> modify(const xmpp::Jid& user,
                                                                                         Update update);
  // The session's active list (empty name: none). The list must exist.
  awaitable<void> set_active(const core::Session& session, std::string name);
  std::string active_name(const core::Session& session);
  // The active list names of the user's other bound sessions ("" for a session without
  // one, to which the default list applies): the XEP-0016 §2.2 conflict rules need them.
  std::vector<std::string> others_active(const core::Session& session);
  awaitable<void> set_invisible(const core::Session& session, bool invisible, bool probe);

 private:
  struct SessionState {
    std::string active;  // empty: no active list
    bool invisible = false;
    bool probe = true;
  };
  Snapshot cached(const std::string& bare);
  Snapshot compile(storage::PrivacyLists lists) const;
  std::shared_ptr<const privacy::CompiledList> effective(const UserLists* user, const SessionState* state) const;
  privacy::Contact contact_of(const storage::Roster* roster, const xmpp::Jid& other) const;
  Verdict evaluate(const privacy::CompiledList* list, const xmpp::Jid& owner, privacy::Check check,
                   const xmpp::Jid& other, const storage::Roster* roster) const;

  // Runs `change` (which alters caches), comparing for each of the user's available
  // sessions which contacts could see it / be seen before and after, and sends the
  // presence that makes clients agree with the new rules.
  awaitable<void> with_presence_effects(const xmpp::Jid& user, const std::function<void()>& change);

  core::Host& host_;
  RosterService& roster_;
  std::mutex mutex_;
  std::unordered_map<std::string, Snapshot> users_;                // bare JID -> lists
  std::unordered_map<std::string, unsigned> online_;               // bare JID -> bound sessions
  std::unordered_map<const core::Session*, SessionState> sessions_;
  std::size_t max_offline_cached_ = 10000;
};

}  // namespace herald::modules
