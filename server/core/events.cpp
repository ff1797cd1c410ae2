#include "server/core/events.hpp"

#include <algorithm>

namespace herald::core {

void EventBus::on(std::string name, int priority, StanzaHandler handler) {
  auto& list = handlers_[std::move(name)];
  auto pos = std::find_if(list.begin(), list.end(), [&](const Entry& e) { return e.priority < priority; });
  list.insert(pos, Entry{priority, std::move(handler)});
}

bool EventBus::has(std::string_view name) const { return handlers_.find(name) != handlers_.end(); }

awaitable<Result> EventBus::fire(std::string_view name, StanzaEvent& event) const {
  auto it = handlers_.find(name);
  if (it == handlers_.end()) co_return Result::pass;
  for (const auto& entry : it->second) {
    if (co_await entry.handler(event) == Result::handled) co_return Result::handled;
  }
  co_return Result::pass;
}

}  // namespace herald::core
