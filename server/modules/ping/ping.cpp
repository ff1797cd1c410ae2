// XEP-0199: XMPP Ping. The server answers pings addressed to it.
#include "server/core/host.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::modules {
namespace {

class Ping final : public core::Module {
 public:
  void load(core::Host& host) override {
    host.add_feature(std::string(ns::ping));
    host.events().on("iq-get/host/urn:xmpp:ping:ping", 0, [](core::StanzaEvent& ev) {
      return reply(ev, xmpp::iq_result(ev.stanza));
    });
  }
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("ping", "XEP-0199: XMPP Ping", herald::modules::Ping)
