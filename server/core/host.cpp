#include "server/core/host.hpp"

#include <spdlog/spdlog.h>

namespace herald::core {

Host::Host(Server& server, const config::Host& cfg) : server_(&server), domain_(cfg.domain) {}

void Host::load_modules() {
  for (const auto& info : registered_modules()) {
    auto module = info.make();
    module->load(*this);
    spdlog::debug("{}: loaded module {} ({})", domain_, info.name, info.implements);
    modules_.push_back(std::move(module));
  }
}

}  // namespace herald::core
