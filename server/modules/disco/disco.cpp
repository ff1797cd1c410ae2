// XEP-0030: Service Discovery for the server and for accounts. Every module adds the
// features it implements to its host, so what is advertised is exactly what is loaded.
#include <algorithm>

#include "server/core/host.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xmpp/namespaces.hpp"

namespace herald::modules {
namespace {

void add_features(xml::Element& query, std::vector<std::string> features) {
  std::sort(features.begin(), features.end());
  features.erase(std::unique(features.begin(), features.end()), features.end());
  for (auto& f : features) query.add("feature").set_attr("var", std::move(f));
}

class Disco final : public core::Module {
 public:
  void load(core::Host& host) override {
    host.add_feature(std::string(ns::disco_info));
    host.add_feature(std::string(ns::disco_items));
    host.add_account_feature(std::string(ns::disco_info));
    host.add_account_feature(std::string(ns::disco_items));

    auto& events = host.events();
    events.on("iq-get/host/http://jabber.org/protocol/disco#info:query", 0, [](core::StanzaEvent& ev) {
      if (has_node(ev)) return reply_error(ev, xmpp::StanzaError::item_not_found);
      auto result = xmpp::iq_result(ev.stanza);
      auto& q = result.add("query", std::string(ns::disco_info));
      q.add("identity").set_attr("category", "server").set_attr("type", "im").set_attr("name", "Herald");
      add_features(q, ev.host.features());
      return reply(ev, std::move(result));
    });
    events.on("iq-get/host/http://jabber.org/protocol/disco#items:query", 0, [](core::StanzaEvent& ev) {
      if (has_node(ev)) return reply_error(ev, xmpp::StanzaError::item_not_found);
      auto result = xmpp::iq_result(ev.stanza);
      result.add("query", std::string(ns::disco_items));
      return reply(ev, std::move(result));
    });
    // Accounts: the server answers on the account's behalf (XEP-0030 §3.3), to the account
    // itself. Contacts with a presence subscription are added by the roster module.
    events.on("iq-get/bare/http://jabber.org/protocol/disco#info:query", 0, [](core::StanzaEvent& ev) {
      if (ev.from.bare() != ev.to) return reply_error(ev, xmpp::StanzaError::service_unavailable);
      if (has_node(ev)) return reply_error(ev, xmpp::StanzaError::item_not_found);
      auto result = xmpp::iq_result(ev.stanza);
      auto& q = result.add("query", std::string(ns::disco_info));
      q.add("identity").set_attr("category", "account").set_attr("type", "registered");
      add_features(q, ev.host.account_features());
      return reply(ev, std::move(result));
    });
    events.on("iq-get/bare/http://jabber.org/protocol/disco#items:query", 0, [](core::StanzaEvent& ev) {
      if (ev.from.bare() != ev.to) return reply_error(ev, xmpp::StanzaError::service_unavailable);
      if (has_node(ev)) return reply_error(ev, xmpp::StanzaError::item_not_found);
      auto result = xmpp::iq_result(ev.stanza);
      result.add("query", std::string(ns::disco_items));
      return reply(ev, std::move(result));
    });
  }

 private:
  static bool has_node(const core::StanzaEvent& ev) {
    const auto* q = ev.stanza.first_element();
    return q && q->attr("node") != nullptr;
  }
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("disco", "XEP-0030: Service Discovery", herald::modules::Disco)
