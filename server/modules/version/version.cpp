// XEP-0092: Software Version. The operating system is not disclosed.
#include "server/core/host.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xmpp/namespaces.hpp"

#ifndef HERALD_VERSION
#define HERALD_VERSION "0"
#endif

namespace herald::modules {
namespace {

class Version final : public core::Module {
 public:
  void load(core::Host& host) override {
    host.add_feature(std::string(ns::version));
    host.events().on("iq-get/host/jabber:iq:version:query", 0, [](core::StanzaEvent& ev) {
      auto result = xmpp::iq_result(ev.stanza);
      auto& q = result.add("query", std::string(ns::version));
      q.add("name").add_text("Herald");
      q.add("version").add_text(HERALD_VERSION);
      return reply(ev, std::move(result));
    });
  }
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("version", "XEP-0092: Software Version", herald::modules::Version)
