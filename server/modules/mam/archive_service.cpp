#include "server/modules/mam/archive_service.hpp"

#include "server/core/server.hpp"
#include "server/core/worker.hpp"

namespace herald::modules {

namespace {

// Preferences are small, but every recipient of a message gets an entry: bound the map
// so that messages to many (even nonexistent) accounts cannot grow it without limit.
constexpr std::size_t kMaxCached = 100'000;

storage::ArchivePrefs::Default to_store(config::Archive::Default d) {
  switch (d) {
    case config::Archive::Default::always: return storage::ArchivePrefs::Default::always;
    case config::Archive::Default::never: return storage::ArchivePrefs::Default::never;
    case config::Archive::Default::roster: return storage::ArchivePrefs::Default::roster;
  }
  return storage::ArchivePrefs::Default::always;
}

}  // namespace

ArchiveService::ArchiveService(core::Host& host) : enabled_(host.server().config().archive.enabled) {
  default_.default_mode = to_store(host.server().config().archive.default_mode);
}

awaitable<storage::ArchivePrefs> ArchiveService::prefs(const xmpp::Jid& user) {
  const auto key = user.bare_str();
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) co_return it->second;
  }
  auto stored = co_await core::Worker::current()->archive().prefs(user.domain(), user.local());
  storage::ArchivePrefs result = stored ? std::move(*stored) : default_;
  std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  // try_emplace: a set_prefs() that finished while this read was in flight has cached
  // the newer value, which must win over what this read saw.
  auto [it, inserted] = cache_.try_emplace(key, std::move(result));
  co_return it->second;
}

awaitable<bool> ArchiveService::set_prefs(const xmpp::Jid& user, storage::ArchivePrefs prefs) {
  const bool exists = co_await core::Worker::current()->archive().set_prefs(user.domain(), user.local(), prefs);
  if (!exists) co_return false;
  std::lock_guard lock(mutex_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.insert_or_assign(user.bare_str(), std::move(prefs));
  co_return true;
}

}  // namespace herald::modules
