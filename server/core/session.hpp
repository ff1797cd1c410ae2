// What the core knows of a bound client session: its full JID, where it lives, its
// presence state, and two thread-safe operations. The stream machinery implements it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/xml/element.hpp"

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
  // RFC 6121 §2.1.6: an "interested resource" has asked for the roster and gets pushes.
  std::atomic<bool> roster_interested{false};
  // XEP-0280: this resource enabled Message Carbons.
  std::atomic<bool> carbons{false};
  // The session is over and re-routing what it never delivered; it leaves the directory
  // when done. Re-routed messages skip such sessions (no ping-pong between two of them).
  std::atomic<bool> ending{false};

  // The last broadcast presence of this resource, to answer probes (any thread).
  std::shared_ptr<const xml::Element> presence() const {
    std::lock_guard lock(presence_mutex_);
    return presence_;
  }
  void set_presence(std::shared_ptr<const xml::Element> p) {
    std::lock_guard lock(presence_mutex_);
    presence_ = std::move(p);
  }

  // Per-session state owned by modules, keyed by module name. Touched only on the
  // session's worker (stanzas from the session and its lifecycle hooks run there).
  template <typename T>
  T& module_state(const std::string& key) {
    auto& slot = module_state_[key];
    if (!slot) slot = std::make_shared<T>();
    return *std::static_pointer_cast<T>(slot);
  }

 protected:
  explicit Session(unsigned worker) : worker_(worker) {}
  // Stream resumption (XEP-0198): what a bound session is, beyond its connection. The
  // ended session gives it up on its own worker (take_state moves the module state out,
  // so nothing still running there can touch what the successor now owns); the successor
  // installs it on its worker.
  struct Snapshot {
    xmpp::Jid jid;
    bool available = false;
    int priority = 0;
    bool roster_interested = false;
    bool carbons = false;
    std::shared_ptr<const xml::Element> presence;
    std::unordered_map<std::string, std::shared_ptr<void>> module_state;
  };
  xmpp::Jid jid_;

  Snapshot take_state() {
    Snapshot s{jid_, available.load(), priority.load(), roster_interested.load(), carbons.load(), presence(), {}};
    s.module_state = std::move(module_state_);
    module_state_.clear();
    return s;
  }
  void restore_state(Snapshot s) {
    jid_ = std::move(s.jid);
    available.store(s.available);
    priority.store(s.priority);
    roster_interested.store(s.roster_interested);
    carbons.store(s.carbons);
    set_presence(std::move(s.presence));
    module_state_ = std::move(s.module_state);
  }

 private:
  unsigned worker_;
  mutable std::mutex presence_mutex_;
  std::shared_ptr<const xml::Element> presence_;
  std::unordered_map<std::string, std::shared_ptr<void>> module_state_;
};

}  // namespace herald::core
