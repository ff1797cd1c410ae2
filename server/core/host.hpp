// A virtual host: one served domain with its own hook bus, modules and disco features.
#pragma once

#include <functional>
#include <memory>
#include <string>
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

  // disco#info features of the server itself and of accounts on it (XEP-0030).
  void add_feature(std::string var) { features_.push_back(std::move(var)); }
  void add_account_feature(std::string var) { account_features_.push_back(std::move(var)); }
  const std::vector<std::string>& features() const { return features_; }
  const std::vector<std::string>& account_features() const { return account_features_; }

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
};

}  // namespace herald::core
