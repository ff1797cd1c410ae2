// What the core knows of a bound client session: its full JID, where it lives, its
// presence state, and two thread-safe operations. The stream machinery implements it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "server/xmpp/jid.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::core {

class Session {
 public:
  virtual ~Session() = default;

  // Set once at resource binding, immutable afterwards.
  const xmpp::Jid& jid() const { return jid_; }
  unsigned worker() const { return worker_; }

  // Queue serialized XML for this session. Safe from any thread; a no-op once closed.
  virtual void deliver(std::shared_ptr<const std::string> xml) = 0;
  // Close with a stream error. Safe from any thread; idempotent.
  virtual void close_with(xmpp::StreamError error, std::string text) = 0;

  // RFC 6121 §4: "available" after initial presence; priority of the last presence.
  std::atomic<bool> available{false};
  std::atomic<int> priority{0};

 protected:
  explicit Session(unsigned worker) : worker_(worker) {}
  xmpp::Jid jid_;

 private:
  unsigned worker_;
};

}  // namespace herald::core
