// JID -> bound sessions: the one structure every worker shares. Sharded by bare JID with a
// mutex per shard; critical sections only copy pointers, never do I/O.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/core/session.hpp"

namespace herald::core {

class SessionDirectory {
 public:
  explicit SessionDirectory(std::size_t shards = 64);

  // Registers a bound resource; returns the session it displaced (same full JID), if any.
  std::shared_ptr<Session> bind(std::shared_ptr<Session> session);
  // Removes `session` if it is still the one registered under its full JID.
  void unbind(const Session& session);

  std::shared_ptr<Session> find(const xmpp::Jid& full) const;
  std::vector<std::shared_ptr<Session>> resources(const xmpp::Jid& bare) const;
  bool resource_exists(const xmpp::Jid& full) const { return find(full) != nullptr; }
  std::vector<std::shared_ptr<Session>> all() const;
  std::size_t size() const;
  // Drops every entry (at the end of Server's life, before the workers' io_contexts go).
  void clear();

 private:
  struct Resource {
    std::string resource;
    std::shared_ptr<Session> session;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::vector<Resource>> by_bare;  // key: bare JID string
  };
  Shard& shard_for(const std::string& bare) const;

  mutable std::vector<Shard> shards_;
};

}  // namespace herald::core
