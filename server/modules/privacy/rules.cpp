#include "server/modules/privacy/rules.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace herald::modules::privacy {

using storage::PrivacyItem;
using storage::PrivacyList;
using storage::PrivacyLists;
namespace kind = storage::privacy_kind;

Check classify(xmpp::Kind k, std::string_view type, bool inbound) {
  switch (k) {
    case xmpp::Kind::message: return inbound ? Check::message_in : Check::other;
    case xmpp::Kind::iq: return inbound ? Check::iq_in : Check::other;
    case xmpp::Kind::presence:
      if (type.empty() || type == "unavailable") return inbound ? Check::presence_in : Check::presence_out;
      return Check::other;
    case xmpp::Kind::other: break;
  }
  return Check::other;
}

bool is_block_item(const PrivacyItem& item) {
  return item.type == PrivacyItem::Type::jid && !item.allow && item.kinds == 0;
}

bool Decision::blocked() const { return item && is_block_item(*item); }

bool jid_matches(const xmpp::Jid& item, const xmpp::Jid& other) {
  if (item.domain() != other.domain()) return false;
  if (!item.local().empty()) {
    if (item.local() != other.local()) return false;
    return item.resource().empty() || item.resource() == other.resource();
  }
  if (!item.resource().empty()) return other.local().empty() && item.resource() == other.resource();
  return true;  // a bare domain matches everything at that domain
}

namespace {

std::uint8_t bit_of(Check c) {
  switch (c) {
    case Check::message_in: return kind::message;
    case Check::iq_in: return kind::iq;
    case Check::presence_in: return kind::presence_in;
    case Check::presence_out: return kind::presence_out;
    case Check::other: return 0;
  }
  return 0;
}

std::string_view subscription_name(storage::Subscription s) {
  switch (s) {
    case storage::Subscription::none: return "none";
    case storage::Subscription::to: return "to";
    case storage::Subscription::from: return "from";
    case storage::Subscription::both: return "both";
  }
  return "none";
}

void sort_items(std::vector<PrivacyItem>& items) {
  std::stable_sort(items.begin(), items.end(), [](const PrivacyItem& a, const PrivacyItem& b) { return a.order < b.order; });
}

}  // namespace

CompiledList::CompiledList(PrivacyList list) : list_(std::move(list)) {
  sort_items(list_.items);
  jids_.reserve(list_.items.size());
  for (const auto& item : list_.items) {
    if (item.type == PrivacyItem::Type::jid) {
      jids_.push_back(xmpp::Jid::parse(item.value));
    } else {
      jids_.emplace_back();
      if (item.type != PrivacyItem::Type::any) needs_roster_ = true;
    }
  }
}

Decision CompiledList::evaluate(Check check, const xmpp::Jid& other, const Contact& contact) const {
  const std::uint8_t bit = bit_of(check);
  for (std::size_t i = 0; i < list_.items.size(); ++i) {
    const auto& item = list_.items[i];
    if (item.kinds != 0 && (item.kinds & bit) == 0) continue;
    bool match = false;
    switch (item.type) {
      case PrivacyItem::Type::any: match = true; break;
      case PrivacyItem::Type::jid: match = jids_[i] && jid_matches(*jids_[i], other); break;
      case PrivacyItem::Type::group:
        match = contact.groups && std::find(contact.groups->begin(), contact.groups->end(), item.value) != contact.groups->end();
        break;
      case PrivacyItem::Type::subscription: match = item.value == subscription_name(contact.subscription); break;
    }
    if (match) return Decision{item.allow, &item};
  }
  return Decision{};
}

// --- wire format --------------------------------------------------------------------

namespace {

struct KindName {
  std::string_view name;
  std::uint8_t bit;
};
constexpr KindName kKinds[] = {
    {"message", kind::message}, {"iq", kind::iq}, {"presence-in", kind::presence_in}, {"presence-out", kind::presence_out}};

std::optional<PrivacyItem> parse_item(const xml::Element& el, xmpp::StanzaError& error, std::string& text) {
  error = xmpp::StanzaError::bad_request;
  PrivacyItem item;
  const auto action = el.attr_or("action");
  if (action != "allow" && action != "deny") {
    text = "every item needs action='allow' or action='deny'";
    return std::nullopt;
  }
  item.allow = action == "allow";

  const auto* order = el.attr("order");
  std::uint32_t value = 0;
  if (!order || order->empty()) {
    text = "every item needs an order";
    return std::nullopt;
  }
  auto [ptr, ec] = std::from_chars(order->data(), order->data() + order->size(), value);
  if (ec != std::errc() || ptr != order->data() + order->size()) {
    text = "order must be a non-negative integer below 2^32";
    return std::nullopt;
  }
  item.order = value;

  const auto* type = el.attr("type");
  const auto* val = el.attr("value");
  if (!type) {
    if (val) {
      text = "an item with a value needs a type";
      return std::nullopt;
    }
    item.type = PrivacyItem::Type::any;
  } else if (!val) {
    text = "an item with a type needs a value";
    return std::nullopt;
  } else if (*type == "jid") {
    item.type = PrivacyItem::Type::jid;
    auto jid = xmpp::Jid::parse(*val);
    if (!jid) {
      error = xmpp::StanzaError::jid_malformed;
      text = "the value of a jid item is not a valid JID";
      return std::nullopt;
    }
    item.value = jid->str();
  } else if (*type == "group") {
    item.type = PrivacyItem::Type::group;
    if (val->empty()) {
      text = "a group item needs a group name";
      return std::nullopt;
    }
    item.value = *val;
  } else if (*type == "subscription") {
    item.type = PrivacyItem::Type::subscription;
    if (*val != "none" && *val != "to" && *val != "from" && *val != "both") {
      text = "a subscription item's value is none, to, from or both";
      return std::nullopt;
    }
    item.value = *val;
  } else {
    text = "item type must be jid, group or subscription";
    return std::nullopt;
  }

  for (const auto* child : el.elements()) {
    const KindName* found = nullptr;
    for (const auto& k : kKinds)
      if (child->name() == k.name && child->ns() == kPrivacyNs) found = &k;
    if (!found) {
      text = "unknown element in an item: " + child->name();
      return std::nullopt;
    }
    item.kinds |= found->bit;
  }
  // All four kinds named is the same as none named except for 'other' stanzas; keep what
  // the client said so the list reads back as written.
  return item;
}

}  // namespace

std::optional<PrivacyList> parse_list(const xml::Element& el, xmpp::StanzaError& error, std::string& text) {
  error = xmpp::StanzaError::bad_request;
  const auto* name = el.attr("name");
  if (!name || name->empty()) {
    text = "a list needs a name";
    return std::nullopt;
  }
  PrivacyList list;
  list.name = *name;
  std::set<std::uint32_t> orders;
  for (const auto* child : el.elements()) {
    if (child->name() != "item" || child->ns() != kPrivacyNs) {
      text = "a list holds only items";
      return std::nullopt;
    }
    auto item = parse_item(*child, error, text);
    if (!item) return std::nullopt;
    if (!orders.insert(item->order).second) {
      error = xmpp::StanzaError::bad_request;
      text = "order values must be unique within a list";
      return std::nullopt;
    }
    list.items.push_back(std::move(*item));
  }
  sort_items(list.items);
  return list;
}

void write_list(xml::Element& query, const PrivacyList& list) {
  auto& el = query.add("list");
  el.set_attr("name", list.name);
  for (const auto& item : list.items) {
    auto& it = el.add("item");
    switch (item.type) {
      case PrivacyItem::Type::any: break;
      case PrivacyItem::Type::jid: it.set_attr("type", "jid"); break;
      case PrivacyItem::Type::group: it.set_attr("type", "group"); break;
      case PrivacyItem::Type::subscription: it.set_attr("type", "subscription"); break;
    }
    if (item.type != PrivacyItem::Type::any) it.set_attr("value", item.value);
    it.set_attr("action", item.allow ? "allow" : "deny");
    it.set_attr("order", std::to_string(item.order));
    for (const auto& k : kKinds)
      if (item.kinds & k.bit) it.add(std::string(k.name));
  }
}

// --- blocklist ------------------------------------------------------------------------

const PrivacyList* find_list(const PrivacyLists& lists, std::string_view name) {
  for (const auto& l : lists.lists)
    if (l.name == name) return &l;
  return nullptr;
}

namespace {

PrivacyList* find_list(PrivacyLists& lists, std::string_view name) {
  for (auto& l : lists.lists)
    if (l.name == name) return &l;
  return nullptr;
}

}  // namespace

std::vector<std::string> blocklist(const PrivacyLists& lists) {
  std::vector<std::string> out;
  if (lists.default_name.empty()) return out;
  const auto* list = find_list(lists, lists.default_name);
  if (!list) return out;
  for (const auto& item : list->items)
    if (is_block_item(item)) out.push_back(item.value);
  return out;
}

PrivacyLists block(PrivacyLists lists, const std::vector<std::string>& jids) {
  PrivacyList* list = lists.default_name.empty() ? nullptr : find_list(lists, lists.default_name);
  if (!list) {
    if (!find_list(lists, kBlocklistName)) {
      PrivacyList fresh;
      fresh.name = std::string(kBlocklistName);
      auto pos = std::lower_bound(lists.lists.begin(), lists.lists.end(), fresh.name,
                                  [](const PrivacyList& l, const std::string& n) { return l.name < n; });
      lists.lists.insert(pos, std::move(fresh));
    }
    lists.default_name = std::string(kBlocklistName);
    list = find_list(lists, kBlocklistName);
  }
  sort_items(list->items);

  std::vector<std::string> fresh;
  for (const auto& jid : jids) {
    const bool known = std::any_of(list->items.begin(), list->items.end(),
                                   [&](const PrivacyItem& i) { return is_block_item(i) && i.value == jid; });
    if (!known && std::find(fresh.begin(), fresh.end(), jid) == fresh.end()) fresh.push_back(jid);
  }
  if (fresh.empty()) return lists;

  std::vector<PrivacyItem> added;
  for (const auto& jid : fresh) {
    PrivacyItem item;
    item.type = PrivacyItem::Type::jid;
    item.value = jid;
    item.allow = false;
    added.push_back(std::move(item));
  }
  const std::uint64_t first = list->items.empty() ? 0 : list->items.front().order;
  if (list->items.empty() || first >= added.size()) {
    // They fit below the first item: nobody else's order changes.
    const std::uint64_t base = list->items.empty() ? 0 : first - added.size();
    for (std::size_t i = 0; i < added.size(); ++i) added[i].order = static_cast<std::uint32_t>(base + i);
    added.insert(added.end(), list->items.begin(), list->items.end());
    list->items = std::move(added);
    return lists;
  }
  added.insert(added.end(), list->items.begin(), list->items.end());
  for (std::size_t i = 0; i < added.size(); ++i) added[i].order = static_cast<std::uint32_t>(i);
  list->items = std::move(added);
  return lists;
}

PrivacyLists unblock(PrivacyLists lists, const std::vector<std::string>& jids) {
  if (lists.default_name.empty()) return lists;
  PrivacyList* list = find_list(lists, lists.default_name);
  if (!list) return lists;
  std::erase_if(list->items, [&](const PrivacyItem& i) {
    return is_block_item(i) && (jids.empty() || std::find(jids.begin(), jids.end(), i.value) != jids.end());
  });
  return lists;
}

}  // namespace herald::modules::privacy
