#include "server/c2s/csi.hpp"

#include <algorithm>
#include <string_view>

namespace herald::c2s {

namespace {
constexpr std::string_view kChatStates = "http://jabber.org/protocol/chatstates";
}

std::string csi_hold_key(const xml::Element& stanza) {
  const auto type = stanza.attr_or("type");
  const auto from = stanza.attr_or("from");
  if (stanza.name() == "presence") {
    // Availability changes can wait; subscription requests, probes and errors cannot.
    if (type.empty() || type == "unavailable") return "p " + std::string(from);
    return {};
  }
  if (stanza.name() == "message") {
    if (type == "error" || type == "groupchat" || type == "headline") return {};
    // A message that carries nothing but a chat state (typing notifications).
    bool state = false;
    for (const auto* child : stanza.elements()) {
      if (child->ns() == kChatStates) state = true;
      else if (child->name() != "thread" && child->ns() != "urn:xmpp:hints" && child->ns() != "urn:xmpp:sid:0") return {};
    }
    if (state) return "c " + std::string(from);
  }
  return {};
}

bool CsiBuffer::hold(const std::string& key, std::shared_ptr<const std::string> xml) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.key == key; });
  if (it != items_.end()) items_.erase(it);
  else if (items_.size() >= limit_) return false;
  items_.push_back({key, std::move(xml)});
  return true;
}

std::vector<std::shared_ptr<const std::string>> CsiBuffer::take() {
  std::vector<std::shared_ptr<const std::string>> out;
  out.reserve(items_.size());
  for (auto& i : items_) out.push_back(std::move(i.xml));
  items_.clear();
  return out;
}

}  // namespace herald::c2s
