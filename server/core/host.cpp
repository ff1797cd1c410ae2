#include "server/core/host.hpp"

#include "server/core/session.hpp"

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

awaitable<void> Host::session_bound(std::shared_ptr<Session> session) const {
  for (const auto& hook : bound_hooks_) co_await hook(session);
}

awaitable<void> Host::session_available(std::shared_ptr<Session> session) const {
  for (const auto& hook : available_hooks_) {
    try {
      co_await hook(session);
    } catch (const std::exception& e) {
      spdlog::error("{}: session-available hook for {} failed: {}", domain_, session->jid().str(), e.what());
    }
  }
}

awaitable<void> Host::session_closed(std::shared_ptr<Session> session) const {
  for (const auto& hook : closed_hooks_) {
    try {
      co_await hook(session);
    } catch (const std::exception& e) {
      // One failing hook (e.g. storage down) must not stop the others (presence going out).
      spdlog::error("{}: session-closed hook for {} failed: {}", domain_, session->jid().str(), e.what());
    }
  }
}

}  // namespace herald::core
