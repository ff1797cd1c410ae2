// A virtual host: one served domain with its own hook bus, modules and disco features.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "server/core/config/config.hpp"
#include "server/core/events.hpp"
#include "server/core/module.hpp"

namespace herald::core {

class Server;

class Host {
 public:
  Host(Server& server, const config::Host& cfg);
  // A host with no server behind it, for unit tests of hooks and modules.
  explicit Host(std::string domain) : server_(nullptr), domain_(std::move(domain)) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const std::string& domain() const { return domain_; }
  Server& server() { return *server_; }
  EventBus& events() { return events_; }
  const EventBus& events() const { return events_; }

  // Loads every registered module. Called once, before workers start.
  void load_modules();

  // One shared object of type T per host (T(Host&)), for state several modules use (e.g.
  // the roster cache used by roster and presence). Only call while modules load: the map
  // is read-only once workers run, so keep the returned reference.
  template <typename T>
  T& service() {
    auto [it, inserted] = services_.try_emplace(std::type_index(typeid(T)));
    if (inserted) it->second = std::make_shared<T>(*this);
    return *std::static_pointer_cast<T>(it->second);
  }

  // disco#info features of the server itself and of accounts on it (XEP-0030).
  void add_feature(std::string var) { features_.push_back(std::move(var)); }
  void add_account_feature(std::string var) { account_features_.push_back(std::move(var)); }
  const std::vector<std::string>& features() const { return features_; }
  const std::vector<std::string>& account_features() const { return account_features_; }

  // Session lifecycle: after a resource is bound (before the client gets the bind result),
  // and after its stream has ended (however it ended). Hooks run in registration order on
  // the session's worker.
  using SessionHook = std::function<awaitable<void>(std::shared_ptr<Session>)>;
  void on_session_bound(SessionHook hook) { bound_hooks_.push_back(std::move(hook)); }
  void on_session_closed(SessionHook hook) { closed_hooks_.push_back(std::move(hook)); }
  awaitable<void> session_bound(std::shared_ptr<Session> session) const;
  awaitable<void> session_closed(std::shared_ptr<Session> session) const;
  // After a session's initial presence (it became available with priority >= 0), on its
  // worker: offline messages are delivered here (XEP-0160).
  void on_session_available(SessionHook hook) { available_hooks_.push_back(std::move(hook)); }
  awaitable<void> session_available(std::shared_ptr<Session> session) const;
  // A stream-management resumption (XEP-0198) moved a bound session to a new connection
  // object: `to` carries on as `from` (same JID, presence and module state) and `from` is
  // gone without session_closed. Runs on `to`'s worker; state keyed by Session* moves.
  using MoveHook = std::function<void(const Session& from, Session& to)>;
  void on_session_moved(MoveHook hook) { moved_hooks_.push_back(std::move(hook)); }
  void session_moved(const Session& from, Session& to) const {
    for (const auto& hook : moved_hooks_) hook(from, to);
  }

  // After the router handed a message for a local user to some of the user's sessions
  // (`got` is never empty), on the routing worker; e.g. Message Carbons copies it to the
  // user's other resources. Observers must be quick and must not block.
  using DeliveryObserver = std::function<void(const StanzaEvent& event, const std::vector<Session*>& got)>;
  void add_delivery_observer(DeliveryObserver observer) { delivery_observers_.push_back(std::move(observer)); }
  void delivered(const StanzaEvent& event, const std::vector<Session*>& got) const {
    for (const auto& observer : delivery_observers_) observer(event, got);
  }

  // Whether a stanza addressed to a user's bare JID (or one of its resources) may be
  // handed to `session` (access rules). The router asks while choosing sessions, on the
  // sender's worker: filters must be quick and must not block.
  using DeliveryFilter = std::function<bool(Session& session, const StanzaEvent& event)>;
  void add_delivery_filter(DeliveryFilter filter) { delivery_filters_.push_back(std::move(filter)); }
  bool may_deliver(Session& session, const StanzaEvent& event) const {
    for (const auto& filter : delivery_filters_)
      if (!filter(session, event)) return false;
    return true;
  }

  // Contributions to <stream:features> after resource binding is offered.
  using FeatureHook = std::function<void(xml::Element& features)>;
  void add_stream_feature(FeatureHook hook) { stream_features_.push_back(std::move(hook)); }
  void add_stream_features(xml::Element& features) const {
    for (const auto& hook : stream_features_) hook(features);
  }

 private:
  Server* server_;
  std::string domain_;
  EventBus events_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::vector<std::string> features_;
  std::vector<std::string> account_features_;
  std::vector<FeatureHook> stream_features_;
  std::vector<DeliveryFilter> delivery_filters_;
  std::vector<SessionHook> bound_hooks_;
  std::vector<SessionHook> closed_hooks_;
  std::vector<SessionHook> available_hooks_;
  std::vector<MoveHook> moved_hooks_;
  std::vector<DeliveryObserver> delivery_observers_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> services_;
};

}  // namespace herald::core
