// Hands stanzas for domains this server does not serve to the S2sManager (route/remote),
// in the jabber:server namespace they travel in between servers.
#include <spdlog/spdlog.h>

#include "federation/s2s/s2s_manager.hpp"
#include "server/core/host.hpp"
#include "server/core/module.hpp"
#include "server/core/server.hpp"

namespace herald::federation {
namespace {

class Federation final : public core::Module {
 public:
  void load(core::Host& host) override {
    if (!host.server().config().federation.enabled) return;
    auto& manager = S2sManager::of(host.server());
    host.events().on("route/remote", 0, [&manager](core::StanzaEvent& ev) -> awaitable<core::Result> {
      xml::Element stanza = ev.stanza;
      stanza.rename_namespace("jabber:client", "jabber:server");
      manager.send(ev.from.domain(), ev.to.domain(), std::move(stanza));
      co_return core::Result::handled;
    });
  }
};

}  // namespace
}  // namespace herald::federation

HERALD_MODULE("federation", "RFC 6120 server-to-server streams; XEP-0220, XEP-0178, XEP-0368",
              herald::federation::Federation)
