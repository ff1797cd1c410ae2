// XEP-0280 Message Carbons (urn:xmpp:carbons:2) with the XEP-0334 no-copy hint: each
// resource that enabled carbons gets a copy of the user's chat messages that went to or
// came from the user's other resources, wrapped in <sent/> or <received/> from the
// user's bare JID.
//
// Forged carbons (XEP-0280 §11): copies are made here and handed straight to sessions,
// never routed. So any message that reaches one of our users through the router while
// carrying a carbon wrapper is a forgery (from another user, a remote server, or the
// user's own client) and is dropped before delivery, archiving or offline storage.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "server/core/host.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/core/session.hpp"
#include "server/modules/iq_helpers.hpp"
#include "server/xml/serializer.hpp"

namespace herald::modules {
namespace {

constexpr std::string_view kCarbons = "urn:xmpp:carbons:2";
constexpr std::string_view kForward = "urn:xmpp:forward:0";
constexpr std::string_view kHints = "urn:xmpp:hints";

bool is_carbon(const xml::Element& message) {
  for (const auto* child : message.elements())
    if (child->ns() == kCarbons && (child->name() == "sent" || child->name() == "received")) return true;
  return false;
}

// XEP-0280 §6: chat messages, normal messages with a body, and the IM payloads that go
// with them; not private or no-copy ones, not MUC traffic, not archive results.
bool eligible(const xml::Element& message) {
  auto type = message.attr_or("type");
  if (type.empty()) type = "normal";
  if (type == "groupchat" || type == "headline" || type == "error") return false;
  bool body = false, im_payload = false;
  for (const auto* child : message.elements()) {
    const auto& ns = child->ns();
    const auto& name = child->name();
    if (ns == kCarbons) return false;  // <private/>, or a carbon itself
    if (ns == kHints && name == "no-copy") return false;
    if (ns == "urn:xmpp:mam:2" || ns == "http://jabber.org/protocol/muc#user") return false;
    if (name == "body") body = true;
    if (ns == "http://jabber.org/protocol/chatstates" || ns == "urn:xmpp:receipts" ||
        ns == "urn:xmpp:chat-markers:0" || ns == "eu.siacs.conversations.axolotl" || ns == "urn:xmpp:omemo:2")
      im_payload = true;
  }
  return type == "chat" || body || im_payload;
}

xml::Element wrap(std::string_view direction, const xmpp::Jid& user, const core::Session& to, const xml::Element& message) {
  xml::Element copy("message", "jabber:client");
  copy.set_attr("from", user.bare_str());
  copy.set_attr("to", to.jid().str());
  if (auto type = message.attr_or("type"); !type.empty()) copy.set_attr("type", std::string(type));
  auto& forwarded = copy.add(std::string(direction), std::string(kCarbons)).add("forwarded", std::string(kForward));
  forwarded.append(message);
  return copy;
}

class Carbons final : public core::Module {
 public:
  void load(core::Host& host) override {
    host_ = &host;
    host.add_feature(std::string(kCarbons));
    auto& ev = host.events();
    ev.on("iq-set/bare/urn:xmpp:carbons:2:enable", 0, [this](core::StanzaEvent& e) { return toggle(e, true); });
    ev.on("iq-set/bare/urn:xmpp:carbons:2:disable", 0, [this](core::StanzaEvent& e) { return toggle(e, false); });
    for (const char* name : {"inbound/bare", "inbound/full"})
      ev.on(name, 90, [](core::StanzaEvent& e) -> awaitable<core::Result> {
        if (e.stanza.name() == "message" && is_carbon(e.stanza)) {
          spdlog::warn("dropping a forged carbon from {} to {}", e.from.str(), e.to.str());
          co_return core::Result::handled;
        }
        co_return core::Result::pass;
      });
    // Sent carbons, once the outbound rules (privacy, priority 100) let the message go.
    for (const char* name : {"pre-message/bare", "pre-message/full", "pre-message/host"})
      ev.on(name, 10, [this](core::StanzaEvent& e) -> awaitable<core::Result> {
        sent(e);
        co_return core::Result::pass;
      });
    host.add_delivery_observer([this](const core::StanzaEvent& e, const std::vector<core::Session*>& got) { received(e, got); });
  }

 private:
  awaitable<core::Result> toggle(core::StanzaEvent& ev, bool on) {
    if (!ev.origin || ev.from.bare() != ev.to) co_return co_await reply_error(ev, xmpp::StanzaError::forbidden);
    ev.origin->carbons.store(on);
    co_return co_await reply(ev, xmpp::iq_result(ev.stanza));
  }

  void sent(core::StanzaEvent& ev) {
    if (!ev.origin) return;
    // <private/> stays in the message: the recipient's server must not copy it either,
    // and XEP-0280 no longer asks anyone to remove it (§9, interoperability note).
    if (!eligible(ev.stanza)) return;
    const auto user = ev.from.bare();
    for (auto& other : host_->server().directory().resources(user)) {
      if (other.get() == ev.origin || !other->carbons.load() || !other->available.load()) continue;
      core::Router::send_to(*other, wrap("sent", user, *other, ev.stanza));
    }
  }

  void received(const core::StanzaEvent& ev, const std::vector<core::Session*>& got) {
    if (ev.stanza.name() != "message" || !eligible(ev.stanza)) return;
    const auto user = ev.to.bare();
    // A message between two resources of the same user is already a "sent" carbon.
    if (ev.from.bare() == user) return;
    for (auto& other : host_->server().directory().resources(user)) {
      if (!other->carbons.load() || !other->available.load()) continue;
      if (std::find(got.begin(), got.end(), other.get()) != got.end()) continue;
      if (!host_->may_deliver(*other, ev)) continue;  // that resource's access rules refuse the sender
      core::Router::send_to(*other, wrap("received", user, *other, ev.stanza));
    }
  }

  core::Host* host_ = nullptr;
};

}  // namespace
}  // namespace herald::modules

HERALD_MODULE("carbons", "XEP-0280: Message Carbons", herald::modules::Carbons)
