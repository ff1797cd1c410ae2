// The priority hook bus (Prosody's util/events): handlers for an event name run from the
// highest priority down until one returns Handled. Handlers are registered while hosts load
// their modules, before any worker starts; afterwards the bus is read-only, so firing takes
// no lock from any worker.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/net/asio.hpp"
#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"

namespace herald::core {

class Host;
class Session;

enum class Result { pass, handled };

// What a stanza handler sees. `from` and `to` are parsed and trustworthy: the router has
// stamped `from` for local senders.
struct StanzaEvent {
  Host& host;
  xml::Element& stanza;
  xmpp::Jid from;
  xmpp::Jid to;
  Session* origin = nullptr;  // the local session that sent it, if any (on this thread)
};

using StanzaHandler = std::function<awaitable<Result>(StanzaEvent&)>;

class EventBus {
 public:
  // Higher priority runs first; equal priorities run in registration order.
  void on(std::string name, int priority, StanzaHandler handler);
  bool has(std::string_view name) const;
  awaitable<Result> fire(std::string_view name, StanzaEvent& event) const;

 private:
  struct Entry {
    int priority;
    StanzaHandler handler;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<Entry>, Hash, std::equal_to<>> handlers_;
};

}  // namespace herald::core
