#include "server/core/session_directory.hpp"

namespace herald::core {

SessionDirectory::SessionDirectory(std::size_t shards) : shards_(shards == 0 ? 1 : shards) {}

SessionDirectory::Shard& SessionDirectory::shard_for(const std::string& bare) const {
  return shards_[std::hash<std::string>{}(bare) % shards_.size()];
}

std::shared_ptr<Session> SessionDirectory::bind(std::shared_ptr<Session> session) {
  const auto bare = session->jid().bare_str();
  auto& shard = shard_for(bare);
  std::lock_guard lock(shard.mutex);
  auto& list = shard.by_bare[bare];
  for (auto& r : list) {
    if (r.resource == session->jid().resource()) {
      auto old = std::move(r.session);
      r.session = std::move(session);
      return old;
    }
  }
  list.push_back(Resource{session->jid().resource(), std::move(session)});
  return nullptr;
}

void SessionDirectory::unbind(const Session& session) {
  if (session.jid().empty()) return;
  const auto bare = session.jid().bare_str();
  auto& shard = shard_for(bare);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return;
  auto& list = it->second;
  std::erase_if(list, [&](const Resource& r) { return r.session.get() == &session; });
  if (list.empty()) shard.by_bare.erase(it);
}

std::shared_ptr<Session> SessionDirectory::find(const xmpp::Jid& full) const {
  const auto bare = full.bare_str();
  auto& shard = shard_for(bare);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return nullptr;
  for (const auto& r : it->second)
    if (r.resource == full.resource()) return r.session;
  return nullptr;
}

std::vector<std::shared_ptr<Session>> SessionDirectory::resources(const xmpp::Jid& bare) const {
  const auto key = bare.bare_str();
  auto& shard = shard_for(key);
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_bare.find(key);
  if (it == shard.by_bare.end()) return out;
  out.reserve(it->second.size());
  for (const auto& r : it->second) out.push_back(r.session);
  return out;
}

std::vector<std::shared_ptr<Session>> SessionDirectory::all() const {
  std::vector<std::shared_ptr<Session>> out;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto& [bare, list] : shard.by_bare)
      for (const auto& r : list) out.push_back(r.session);
  }
  return out;
}

std::size_t SessionDirectory::size() const {
  std::size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto& [bare, list] : shard.by_bare) n += list.size();
  }
  return n;
}

void SessionDirectory::clear() {
  for (auto& shard : shards_) {
    std::unordered_map<std::string, std::vector<Resource>> dropped;
    {
      std::lock_guard lock(shard.mutex);
      dropped.swap(shard.by_bare);
    }
  }
}

}  // namespace herald::core
