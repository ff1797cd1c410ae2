// Small helpers shared by modules that answer IQs.
#pragma once

#include "server/core/events.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/stanza.hpp"

namespace herald::modules {

// Routes `reply` (already addressed) back through the router.
inline awaitable<core::Result> reply(core::StanzaEvent& ev, xml::Element reply) {
  co_await ev.host.server().router().route(std::move(reply));
  co_return core::Result::handled;
}

inline awaitable<core::Result> reply_error(core::StanzaEvent& ev, xmpp::StanzaError error, std::string_view text = {}) {
  co_await ev.host.server().router().bounce(ev.stanza, error, text);
  co_return core::Result::handled;
}

}  // namespace herald::modules
