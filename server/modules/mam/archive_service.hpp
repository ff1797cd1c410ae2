// Archiving preferences of a host's users (XEP-0313 / XEP-0441), shared by every worker:
// a cache per bare JID in front of the ArchiveStore, consulted for every archivable
// message, so a database round trip happens once per user, not once per message.
// Host::service<ArchiveService>().
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/core/host.hpp"
#include "server/modules/mam/mam_protocol.hpp"
#include "storage/stores.hpp"

namespace herald::modules {

class ArchiveService {
 public:
  explicit ArchiveService(core::Host& host);

  // [archive] enabled.
  bool enabled() const { return enabled_; }

  // The user's preferences: cached, or read from the worker's ArchiveStore (and cached);
  // the configured default with empty lists when the user never set any. Throws
  // storage::Error.
  awaitable<storage::ArchivePrefs> prefs(const xmpp::Jid& user);
  // Stores first, then caches: a failed write (storage::Error) changes nothing.
  // False if there is no such account.
  awaitable<bool> set_prefs(const xmpp::Jid& user, storage::ArchivePrefs prefs);

  static bool should_archive(const storage::ArchivePrefs& prefs, std::string_view with_bare, bool with_in_roster) {
    return mam::should_archive(prefs, with_bare, with_in_roster);
  }

 private:
  bool enabled_;
  storage::ArchivePrefs default_;
  std::mutex mutex_;
  std::unordered_map<std::string, storage::ArchivePrefs> cache_;  // bare JID -> prefs
};

}  // namespace herald::modules
