// Unit tests for the privacy-list / blocking-command rule engine
// (server/modules/privacy/rules.hpp): XEP-0016 privacy lists and XEP-0191 blocking.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/modules/privacy/rules.hpp"

namespace pv = herald::modules::privacy;
namespace st = herald::storage;

using herald::xml::Element;
using herald::xmpp::Jid;
using herald::xmpp::Kind;
using herald::xmpp::StanzaError;
using pv::Check;
using pv::CompiledList;
using pv::Contact;
using pv::Decision;
using st::PrivacyItem;
using st::PrivacyList;
using st::PrivacyLists;
using st::Subscription;
using Type = st::PrivacyItem::Type;

namespace kind = st::privacy_kind;

namespace {

// --- helpers ---------------------------------------------------------------------------

Jid jid(std::string_view s) {
  auto j = Jid::parse(s);
  REQUIRE_MESSAGE(j.has_value(), "test JID does not parse: ", std::string(s));
  return *j;
}

PrivacyItem item(Type type, std::string value, bool allow, std::uint32_t order,
                 std::uint8_t kinds = 0) {
  PrivacyItem i;
  i.type = type;
  i.value = std::move(value);
  i.allow = allow;
  i.order = order;
  i.kinds = kinds;
  return i;
}
PrivacyItem block_item(std::string j, std::uint32_t order) {
  return item(Type::jid, std::move(j), false, order, 0);
}
PrivacyItem fall_through(bool allow, std::uint32_t order) {
  return item(Type::any, "", allow, order, 0);
}

PrivacyList make_list(std::string name, std::vector<PrivacyItem> items) {
  PrivacyList l;
  l.name = std::move(name);
  l.items = std::move(items);
  return l;
}

constexpr std::array<Check, 5> kChecks{Check::message_in, Check::iq_in, Check::presence_in,
                                       Check::presence_out, Check::other};

const char* check_name(Check c) {
  switch (c) {
    case Check::message_in: return "message_in";
    case Check::iq_in: return "iq_in";
    case Check::presence_in: return "presence_in";
    case Check::presence_out: return "presence_out";
    case Check::other: return "other";
  }
  return "?";
}

const char* type_name(Type t) {
  switch (t) {
    case Type::any: return "any";
    case Type::jid: return "jid";
    case Type::group: return "group";
    case Type::subscription: return "subscription";
  }
  return "?";
}

const char* sub_name(Subscription s) {
  switch (s) {
    case Subscription::none: return "none";
    case Subscription::to: return "to";
    case Subscription::from: return "from";
    case Subscription::both: return "both";
  }
  return "?";
}

// The privacy_kind bit an item needs to cover `c`; 0 for Check::other (no bit covers it).
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

const PrivacyList* default_list(const PrivacyLists& lists) {
  if (lists.default_name.empty()) return nullptr;
  return pv::find_list(lists, lists.default_name);
}

// Evaluates the default list of `lists` (which must exist).
Decision eval_default(const CompiledList& cl, Check check, std::string_view other,
                      const Contact& contact = {}) {
  return cl.evaluate(check, jid(other), contact);
}

// Invariants of storage::PrivacyLists (storage/stores.hpp) and of the XEP-0016 data model:
// lists sorted bytewise by name with unique names, default_name empty or naming a list,
// item orders unique within each list.
void check_invariants(const PrivacyLists& lists) {
  for (std::size_t i = 1; i < lists.lists.size(); ++i) {
    INFO("lists ", lists.lists[i - 1].name, " / ", lists.lists[i].name);
    CHECK_MESSAGE(lists.lists[i - 1].name < lists.lists[i].name,
                  "lists must be sorted bytewise by name with unique names");
  }
  if (!lists.default_name.empty()) {
    CHECK_MESSAGE(pv::find_list(lists, lists.default_name) != nullptr,
                  "default_name must name an existing list");
  }
  for (const auto& l : lists.lists) {
    std::set<std::uint32_t> orders;
    for (const auto& it : l.items) orders.insert(it.order);
    INFO("list ", l.name);
    CHECK_MESSAGE(orders.size() == l.items.size(), "item orders must be unique in a list");
  }
}

// Items of `l` sorted by ascending order (what evaluation sees).
std::vector<PrivacyItem> by_order(const PrivacyList& l) {
  auto v = l.items;
  std::stable_sort(v.begin(), v.end(),
                   [](const PrivacyItem& a, const PrivacyItem& b) { return a.order < b.order; });
  return v;
}

// The item without its order (orders may be renumbered).
struct Shape {
  Type type;
  std::string value;
  bool allow;
  std::uint8_t kinds;
  friend bool operator==(const Shape&, const Shape&) = default;
};
Shape shape(const PrivacyItem& i) { return {i.type, i.value, i.allow, i.kinds}; }

// --- XML builders for parse_list -------------------------------------------------------

using Attrs = std::vector<std::pair<std::string, std::string>>;

Element list_element(std::optional<std::string> name) {
  Element l("list", std::string(pv::kPrivacyNs));
  if (name) l.set_attr("name", *name);
  return l;
}

void add_item(Element& list, const Attrs& attrs, std::initializer_list<std::string_view> children = {}) {
  Element it("item", std::string(pv::kPrivacyNs));
  for (const auto& [k, v] : attrs) it.set_attr(k, v);
  for (auto c : children) it.add(std::string(c));
  list.append(std::move(it));
}

struct Parsed {
  std::optional<PrivacyList> list;
  StanzaError error = StanzaError::undefined_condition;
  std::string text;
};

Parsed parse(const Element& e) {
  Parsed p;
  p.list = pv::parse_list(e, p.error, p.text);
  return p;
}

const PrivacyItem* item_with_order(const PrivacyList& l, std::uint32_t order) {
  for (const auto& i : l.items)
    if (i.order == order) return &i;
  return nullptr;
}

}  // namespace

// =======================================================================================
// classify
// =======================================================================================

TEST_CASE("classify: inbound message of any type is message_in") {
  for (std::string_view t : {"", "normal", "chat", "groupchat", "headline", "error"}) {
    INFO("type='", std::string(t), "'");
    CHECK(pv::classify(Kind::message, t, true) == Check::message_in);
  }
}

TEST_CASE("classify: outbound message of any type is other") {
  for (std::string_view t : {"", "normal", "chat", "groupchat", "headline", "error"}) {
    INFO("type='", std::string(t), "'");
    CHECK(pv::classify(Kind::message, t, false) == Check::other);
  }
}

TEST_CASE("classify: inbound iq of any type is iq_in, outbound iq is other") {
  for (std::string_view t : {"get", "set", "result", "error"}) {
    INFO("type='", std::string(t), "'");
    CHECK(pv::classify(Kind::iq, t, true) == Check::iq_in);
    CHECK(pv::classify(Kind::iq, t, false) == Check::other);
  }
}

TEST_CASE("classify: presence notifications are presence_in / presence_out") {
  for (std::string_view t : {"", "unavailable"}) {
    INFO("type='", std::string(t), "'");
    CHECK(pv::classify(Kind::presence, t, true) == Check::presence_in);
    CHECK(pv::classify(Kind::presence, t, false) == Check::presence_out);
  }
}

TEST_CASE("classify: subscription presences, probes and presence errors are other both ways") {
  for (std::string_view t :
       {"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"}) {
    INFO("type='", std::string(t), "'");
    CHECK(pv::classify(Kind::presence, t, true) == Check::other);
    CHECK(pv::classify(Kind::presence, t, false) == Check::other);
  }
}

// =======================================================================================
// jid_matches (XEP-0016 §2.1, XEP-0191 §9)
// =======================================================================================

namespace {
// Candidate other parties, and for each item form the set of those it must match.
const std::vector<std::string_view> kOthers{
    "romeo@example.net/orchard",  // 0
    "romeo@example.net/balcony",  // 1
    "romeo@example.net",          // 2
    "juliet@example.net",         // 3
    "juliet@example.net/orchard", // 4
    "example.net",                // 5
    "example.net/orchard",        // 6
    "example.net/balcony",        // 7
    "romeo@example.org",          // 8
    "romeo@example.org/orchard",  // 9
    "example.org",                // 10
    "example.org/orchard",        // 11
    "romeo@sub.example.net",      // 12
    "romeo@sub.example.net/orchard",  // 13
    "sub.example.net",            // 14
    "sub.example.net/orchard",    // 15
    "net",                        // 16
};

struct JidRow {
  std::string_view item;
  std::set<std::string_view> matches;
};

const std::vector<JidRow> kJidRows{
    // user@domain/resource: only that full JID
    {"romeo@example.net/orchard", {"romeo@example.net/orchard"}},
    // user@domain: the bare JID and every resource of it
    {"romeo@example.net",
     {"romeo@example.net/orchard", "romeo@example.net/balcony", "romeo@example.net"}},
    // domain/resource: only that resource of the domain itself
    {"example.net/orchard", {"example.net/orchard"}},
    // domain: the domain, every user@domain, every domain/resource, every user@domain/res
    {"example.net",
     {"romeo@example.net/orchard", "romeo@example.net/balcony", "romeo@example.net",
      "juliet@example.net", "juliet@example.net/orchard", "example.net", "example.net/orchard",
      "example.net/balcony"}},
    // a subdomain item does not match the parent domain either
    {"sub.example.net",
     {"romeo@sub.example.net", "romeo@sub.example.net/orchard", "sub.example.net",
      "sub.example.net/orchard"}},
    {"juliet@example.net/orchard", {"juliet@example.net/orchard"}},
};
}  // namespace

TEST_CASE("jid_matches: the four XEP-0016 JID forms against many candidates") {
  for (const auto& row : kJidRows) {
    const Jid item_jid = jid(row.item);
    for (auto other : kOthers) {
      const bool expected = row.matches.count(other) != 0;
      INFO("item=", std::string(row.item), " other=", std::string(other),
           " expected=", expected);
      CHECK(pv::jid_matches(item_jid, jid(other)) == expected);
    }
  }
}

TEST_CASE("jid_matches: prepared JIDs compare after preparation") {
  CHECK(pv::jid_matches(jid("Romeo@Example.NET"), jid("romeo@example.net/Orchard")));
  CHECK(pv::jid_matches(jid("example.net"), jid("ROMEO@EXAMPLE.NET/x")));
  // resources are case-sensitive
  CHECK_FALSE(pv::jid_matches(jid("romeo@example.net/orchard"), jid("romeo@example.net/Orchard")));
  CHECK_FALSE(pv::jid_matches(jid("example.net/orchard"), jid("example.net/Orchard")));
}

TEST_CASE("jid_matches: domain/resource item does not match user@domain/resource") {
  CHECK_FALSE(pv::jid_matches(jid("example.net/orchard"), jid("romeo@example.net/orchard")));
  CHECK_FALSE(pv::jid_matches(jid("example.net/orchard"), jid("example.net")));
  CHECK_FALSE(pv::jid_matches(jid("romeo@example.net/orchard"), jid("romeo@example.net")));
}

TEST_CASE("evaluate: a jid item matches exactly as jid_matches says, through CompiledList") {
  for (const auto& row : kJidRows) {
    for (bool allow : {false, true}) {
      CompiledList cl(make_list("l", {item(Type::jid, std::string(row.item), allow, 1)}));
      for (auto other : kOthers) {
        const bool expected = row.matches.count(other) != 0;
        INFO("item=", std::string(row.item), " other=", std::string(other),
             " allow=", allow, " expected match=", expected);
        for (Check c : kChecks) {
          INFO("check=", check_name(c));
          Decision d = cl.evaluate(c, jid(other), Contact{});
          if (expected) {
            REQUIRE(d.item != nullptr);
            CHECK(d.item->order == 1u);
            CHECK(d.allow == allow);
          } else {
            CHECK(d.item == nullptr);
            CHECK(d.allow);
          }
        }
      }
    }
  }
}

// =======================================================================================
// evaluate: every item type x every Check x action x stanza kinds (table-driven)
// =======================================================================================

TEST_CASE("evaluate: every item type x every check x allow/deny x every kinds subset") {
  const std::vector<std::string> groups{"Friends", "Work"};
  const Contact friend_contact{Subscription::both, &groups};
  const Contact stranger{};  // not in the roster: subscription none, no groups
  const Jid romeo = jid("romeo@example.net/orchard");
  const Jid tybalt = jid("tybalt@example.org/street");

  struct TypeCase {
    Type type;
    std::string value;  // matches romeo/friend_contact, not tybalt/stranger (except any)
  };
  const std::vector<TypeCase> types{{Type::any, ""},
                                    {Type::jid, "romeo@example.net"},
                                    {Type::group, "Work"},
                                    {Type::subscription, "both"}};

  int combinations = 0;
  for (const auto& tc : types) {
    for (bool allow : {false, true}) {
      for (unsigned k = 0; k <= unsigned{kind::all}; ++k) {
        const auto kinds = static_cast<std::uint8_t>(k);
        const PrivacyItem under_test = item(tc.type, tc.value, allow, 5, kinds);
        CompiledList with_ft(make_list("ft", {under_test, fall_through(!allow, 9)}));
        CompiledList alone(make_list("alone", {under_test}));
        for (Check c : kChecks) {
          ++combinations;
          const bool covers = kinds == 0 || (bit_of(c) & kinds) != 0;
          const bool matches_stranger = tc.type == Type::any;
          INFO("type=", type_name(tc.type), " allow=", allow, " kinds=", k,
               " check=", check_name(c), " covers=", covers);

          // The matching party: the item decides iff its kinds cover the check.
          Decision d = with_ft.evaluate(c, romeo, friend_contact);
          REQUIRE(d.item != nullptr);  // the fall-through (kinds 0) always matches
          if (covers) {
            CHECK(d.item->order == 5u);
            CHECK(d.allow == allow);
            CHECK(*d.item == under_test);
          } else {
            CHECK(d.item->order == 9u);
            CHECK(d.allow == !allow);
          }
          // blocked() only for a type-jid deny item with no kinds.
          CHECK(d.blocked() ==
                (covers && tc.type == Type::jid && !allow && kinds == 0));

          // A party the item does not match (except type any): falls through.
          d = with_ft.evaluate(c, tybalt, stranger);
          REQUIRE(d.item != nullptr);
          if (covers && matches_stranger) {
            CHECK(d.item->order == 5u);
            CHECK(d.allow == allow);
          } else {
            CHECK(d.item->order == 9u);
            CHECK(d.allow == !allow);
          }
          CHECK_FALSE(d.blocked());

          // No fall-through item: no match allows with item == nullptr.
          d = alone.evaluate(c, romeo, friend_contact);
          if (covers) {
            REQUIRE(d.item != nullptr);
            CHECK(d.item->order == 5u);
            CHECK(d.allow == allow);
          } else {
            CHECK(d.item == nullptr);
            CHECK(d.allow);
            CHECK_FALSE(d.blocked());
          }
          d = alone.evaluate(c, tybalt, stranger);
          if (covers && matches_stranger) {
            REQUIRE(d.item != nullptr);
            CHECK(d.allow == allow);
          } else {
            CHECK(d.item == nullptr);
            CHECK(d.allow);
            CHECK_FALSE(d.blocked());
          }
        }
      }
    }
  }
  CHECK(combinations == 4 * 2 * 16 * 5);
}

TEST_CASE("evaluate: an item with kinds != 0 never matches other, even with all four kinds") {
  for (Type t : {Type::any, Type::jid}) {
    const std::string value = t == Type::jid ? "romeo@example.net" : "";
    CompiledList cl(make_list("l", {item(t, value, false, 1, kind::all)}));
    INFO("type=", type_name(t));
    Decision d = cl.evaluate(Check::other, jid("romeo@example.net/orchard"), Contact{});
    CHECK(d.allow);
    CHECK(d.item == nullptr);
    for (Check c : {Check::message_in, Check::iq_in, Check::presence_in, Check::presence_out}) {
      INFO("check=", check_name(c));
      CHECK_FALSE(cl.evaluate(c, jid("romeo@example.net/orchard"), Contact{}).allow);
    }
  }
}

// =======================================================================================
// evaluate: subscription and group items
// =======================================================================================

TEST_CASE("evaluate: subscription items match the contact's subscription exactly") {
  const std::array<std::pair<std::string_view, Subscription>, 4> subs{{
      {"none", Subscription::none},
      {"to", Subscription::to},
      {"from", Subscription::from},
      {"both", Subscription::both},
  }};
  const Jid other = jid("nurse@example.com/x");
  for (const auto& [value, item_sub] : subs) {
    CompiledList cl(make_list("l", {item(Type::subscription, std::string(value), false, 1)}));
    CHECK(cl.needs_roster());
    for (const auto& [cvalue, contact_sub] : subs) {
      INFO("item value=", std::string(value), " contact subscription=", sub_name(contact_sub));
      (void)cvalue;
      const std::vector<std::string> groups{"G"};
      for (const std::vector<std::string>* g : {static_cast<const std::vector<std::string>*>(nullptr), &groups}) {
        Decision d = cl.evaluate(Check::message_in, other, Contact{contact_sub, g});
        if (item_sub == contact_sub) {
          CHECK_FALSE(d.allow);
          CHECK(d.item != nullptr);
        } else {
          CHECK(d.allow);
          CHECK(d.item == nullptr);
        }
      }
    }
  }
}

TEST_CASE("evaluate: subscription 'none' covers entities not in the roster") {
  CompiledList cl(make_list("l", {item(Type::subscription, "none", false, 1)}));
  Decision d = cl.evaluate(Check::message_in, jid("stranger@example.org"), Contact{});
  CHECK_FALSE(d.allow);
  REQUIRE(d.item != nullptr);
  CHECK(d.item->value == "none");
  // 'both' does not match 'from' or 'to' only (XEP-0016 §2.1: exact matches)
  CompiledList both(make_list("b", {item(Type::subscription, "both", true, 1), fall_through(false, 2)}));
  CHECK_FALSE(both.evaluate(Check::message_in, jid("a@b"), Contact{Subscription::from, nullptr}).allow);
  CHECK_FALSE(both.evaluate(Check::message_in, jid("a@b"), Contact{Subscription::to, nullptr}).allow);
  CHECK(both.evaluate(Check::message_in, jid("a@b"), Contact{Subscription::both, nullptr}).allow);
}

TEST_CASE("evaluate: group items match when the contact is in that group") {
  const std::vector<std::string> groups{"Friends", "Work"};
  const std::vector<std::string> no_groups;
  const std::vector<std::string> other_groups{"Family"};
  const Jid other = jid("mercutio@example.org/x");

  CompiledList work(make_list("l", {item(Type::group, "Work", false, 1)}));
  CHECK(work.needs_roster());
  CHECK_FALSE(work.evaluate(Check::message_in, other, Contact{Subscription::both, &groups}).allow);
  CHECK_FALSE(work.evaluate(Check::iq_in, other, Contact{Subscription::none, &groups}).allow);
  CHECK(work.evaluate(Check::message_in, other, Contact{Subscription::both, &no_groups}).allow);
  CHECK(work.evaluate(Check::message_in, other, Contact{Subscription::both, &other_groups}).allow);
  CHECK(work.evaluate(Check::message_in, other, Contact{Subscription::both, nullptr}).allow);
  CHECK(work.evaluate(Check::message_in, other, Contact{}).allow);

  // The first group also matches; a name that is only a prefix or differs in case does not.
  CompiledList friends(make_list("l", {item(Type::group, "Friends", false, 1)}));
  CHECK_FALSE(friends.evaluate(Check::message_in, other, Contact{Subscription::both, &groups}).allow);
  CompiledList prefix(make_list("l", {item(Type::group, "Wor", false, 1)}));
  CHECK(prefix.evaluate(Check::message_in, other, Contact{Subscription::both, &groups}).allow);
  CompiledList lower(make_list("l", {item(Type::group, "work", false, 1)}));
  CHECK(lower.evaluate(Check::message_in, other, Contact{Subscription::both, &groups}).allow);
}

TEST_CASE("evaluate: a group or subscription item ignores the JID; a jid item ignores the roster") {
  const std::vector<std::string> groups{"Enemies"};
  CompiledList cl(make_list("l", {item(Type::jid, "tybalt@example.com", false, 1),
                                  item(Type::group, "Enemies", false, 2),
                                  fall_through(true, 3)}));
  // tybalt, not in the roster at all: denied by the jid item.
  Decision d = cl.evaluate(Check::message_in, jid("tybalt@example.com/a"), Contact{});
  CHECK_FALSE(d.allow);
  REQUIRE(d.item != nullptr);
  CHECK(d.item->order == 1u);
  // someone else in group Enemies: denied by the group item.
  d = cl.evaluate(Check::message_in, jid("paris@example.org"), Contact{Subscription::both, &groups});
  CHECK_FALSE(d.allow);
  REQUIRE(d.item != nullptr);
  CHECK(d.item->order == 2u);
  // someone else: the fall-through.
  d = cl.evaluate(Check::message_in, jid("nurse@example.org"), Contact{Subscription::both, nullptr});
  CHECK(d.allow);
  REQUIRE(d.item != nullptr);
  CHECK(d.item->order == 3u);
}

// =======================================================================================
// evaluate: ordering, first match, fall-through, empty list
// =======================================================================================

TEST_CASE("evaluate: an empty list allows everything") {
  CompiledList cl(make_list("empty", {}));
  CHECK(cl.name() == "empty");
  CHECK_FALSE(cl.needs_roster());
  const std::vector<std::string> groups{"Friends"};
  for (Check c : kChecks) {
    for (auto other : kOthers) {
      for (const Contact& contact :
           {Contact{}, Contact{Subscription::both, &groups}, Contact{Subscription::to, nullptr}}) {
        INFO("check=", check_name(c), " other=", std::string(other));
        Decision d = cl.evaluate(c, jid(other), contact);
        CHECK(d.allow);
        CHECK(d.item == nullptr);
        CHECK_FALSE(d.blocked());
      }
    }
  }
}

TEST_CASE("evaluate: a default-constructed Decision allows with no item") {
  Decision d;
  CHECK(d.allow);
  CHECK(d.item == nullptr);
  CHECK_FALSE(d.blocked());
}

TEST_CASE("evaluate: the first matching item in ascending order decides") {
  const Jid romeo = jid("romeo@example.net/orchard");
  const Jid other = jid("paris@example.org");

  SUBCASE("earlier deny, later allow (both match): deny") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", false, 1),
                                    item(Type::jid, "romeo@example.net", true, 2)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 1u);
  }
  SUBCASE("earlier allow, later deny (both match): allow") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", true, 1),
                                    item(Type::jid, "romeo@example.net", false, 2)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 1u);
  }
  SUBCASE("deny one JID, then allow everyone else") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", false, 1),
                                    fall_through(true, 2)}));
    CHECK_FALSE(cl.evaluate(Check::message_in, romeo, Contact{}).allow);
    CHECK(cl.evaluate(Check::message_in, other, Contact{}).allow);
  }
  SUBCASE("allow one JID, then deny everyone else (whitelist)") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", true, 1),
                                    fall_through(false, 2)}));
    CHECK(cl.evaluate(Check::message_in, romeo, Contact{}).allow);
    Decision d = cl.evaluate(Check::message_in, other, Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->type == Type::any);
    CHECK_FALSE(d.blocked());
  }
  SUBCASE("a broader earlier item wins over a more specific later one") {
    CompiledList cl(make_list("l", {item(Type::jid, "example.net", false, 1),
                                    item(Type::jid, "romeo@example.net/orchard", true, 2)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->value == "example.net");
  }
  SUBCASE("items whose kinds do not cover the check are skipped") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", false, 1, kind::message),
                                    item(Type::jid, "romeo@example.net", true, 2, kind::iq),
                                    fall_through(false, 3)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 1u);
    d = cl.evaluate(Check::iq_in, romeo, Contact{});
    CHECK(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 2u);
    for (Check c : {Check::presence_in, Check::presence_out, Check::other}) {
      INFO("check=", check_name(c));
      d = cl.evaluate(c, romeo, Contact{});
      CHECK_FALSE(d.allow);
      REQUIRE(d.item != nullptr);
      CHECK(d.item->order == 3u);
    }
  }
}

TEST_CASE("evaluate: items are considered in ascending order whatever order they are given in") {
  const Jid romeo = jid("romeo@example.net/orchard");

  SUBCASE("later allow given first, earlier deny given second: deny") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", true, 20),
                                    item(Type::jid, "romeo@example.net", false, 10)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 10u);
  }
  SUBCASE("later deny given first, earlier allow given second: allow") {
    CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net", false, 20),
                                    item(Type::jid, "romeo@example.net", true, 10)}));
    Decision d = cl.evaluate(Check::message_in, romeo, Contact{});
    CHECK(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 10u);
  }
  SUBCASE("fall-through given first still comes last") {
    CompiledList cl(make_list("l", {fall_through(false, 100),
                                    item(Type::jid, "romeo@example.net", true, 50)}));
    CHECK(cl.evaluate(Check::message_in, romeo, Contact{}).allow);
    CHECK_FALSE(cl.evaluate(Check::message_in, jid("paris@example.org"), Contact{}).allow);
  }
  SUBCASE("order 0 and 4294967295 are compared numerically") {
    CompiledList cl(make_list("l", {fall_through(false, 4294967295u),
                                    item(Type::jid, "romeo@example.net", true, 0),
                                    item(Type::jid, "juliet@example.net", false, 2),
                                    item(Type::jid, "juliet@example.net", true, 10)}));
    CHECK(cl.evaluate(Check::message_in, romeo, Contact{}).allow);
    // 2 < 10 numerically (not "10" < "2" as strings)
    CHECK_FALSE(cl.evaluate(Check::message_in, jid("juliet@example.net"), Contact{}).allow);
    Decision d = cl.evaluate(Check::message_in, jid("paris@example.org"), Contact{});
    CHECK_FALSE(d.allow);
    REQUIRE(d.item != nullptr);
    CHECK(d.item->order == 4294967295u);
  }
  SUBCASE("CompiledList::list() holds the items in ascending order") {
    CompiledList cl(make_list("mixed", {item(Type::jid, "a@example.net", true, 30),
                                        item(Type::group, "G", false, 10),
                                        fall_through(true, 40),
                                        item(Type::subscription, "to", false, 20)}));
    CHECK(cl.name() == "mixed");
    REQUIRE(cl.list().items.size() == 4u);
    CHECK(cl.list().items[0].order == 10u);
    CHECK(cl.list().items[1].order == 20u);
    CHECK(cl.list().items[2].order == 30u);
    CHECK(cl.list().items[3].order == 40u);
    // the Decision's item points into the compiled list
    const std::vector<std::string> groups{"G"};
    Decision d = cl.evaluate(Check::message_in, jid("x@example.org"), Contact{Subscription::both, &groups});
    CHECK(d.item == &cl.list().items[0]);
  }
}

TEST_CASE("evaluate: a full JID item does not match the bare JID on a stanza") {
  CompiledList cl(make_list("l", {item(Type::jid, "romeo@example.net/orchard", false, 1)}));
  CHECK(cl.evaluate(Check::message_in, jid("romeo@example.net"), Contact{}).allow);
  CHECK(cl.evaluate(Check::message_in, jid("romeo@example.net/balcony"), Contact{}).allow);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("romeo@example.net/orchard"), Contact{}).allow);
}

TEST_CASE("evaluate: the XEP-0016 example lists 'public', 'private' and 'special'") {
  const Jid tybalt = jid("tybalt@example.com/x");
  const Jid juliet = jid("juliet@example.com/balcony");
  const Jid benvolio = jid("benvolio@example.org");
  const Jid mercutio = jid("mercutio@example.org/a");
  const Jid nurse = jid("nurse@example.com");

  CompiledList pub(make_list("public", {item(Type::jid, "tybalt@example.com", false, 1),
                                        fall_through(true, 2)}));
  CHECK_FALSE(pub.needs_roster());
  for (Check c : kChecks) {
    INFO("check=", check_name(c));
    CHECK_FALSE(pub.evaluate(c, tybalt, Contact{}).allow);
    CHECK(pub.evaluate(c, juliet, Contact{}).allow);
    CHECK(pub.evaluate(c, nurse, Contact{Subscription::both, nullptr}).allow);
  }

  CompiledList priv(make_list("private", {item(Type::subscription, "both", true, 10),
                                          fall_through(false, 15)}));
  CHECK(priv.needs_roster());
  for (Check c : kChecks) {
    INFO("check=", check_name(c));
    CHECK(priv.evaluate(c, juliet, Contact{Subscription::both, nullptr}).allow);
    CHECK_FALSE(priv.evaluate(c, juliet, Contact{Subscription::from, nullptr}).allow);
    CHECK_FALSE(priv.evaluate(c, tybalt, Contact{}).allow);
  }

  CompiledList special(make_list("special", {item(Type::jid, "juliet@example.com", true, 6),
                                              item(Type::jid, "benvolio@example.org", true, 7),
                                              item(Type::jid, "mercutio@example.org", true, 42),
                                              fall_through(false, 666)}));
  for (Check c : kChecks) {
    INFO("check=", check_name(c));
    CHECK(special.evaluate(c, juliet, Contact{}).allow);
    CHECK(special.evaluate(c, benvolio, Contact{}).allow);
    CHECK(special.evaluate(c, mercutio, Contact{}).allow);
    CHECK_FALSE(special.evaluate(c, nurse, Contact{Subscription::both, nullptr}).allow);
    CHECK_FALSE(special.evaluate(c, tybalt, Contact{}).allow);
  }
}

// =======================================================================================
// needs_roster, is_block_item, Decision::blocked
// =======================================================================================

TEST_CASE("needs_roster: true iff some item is of type group or subscription") {
  CHECK_FALSE(CompiledList(make_list("l", {})).needs_roster());
  CHECK_FALSE(CompiledList(make_list("l", {fall_through(true, 1)})).needs_roster());
  CHECK_FALSE(CompiledList(make_list("l", {item(Type::jid, "a@b", false, 1)})).needs_roster());
  CHECK_FALSE(CompiledList(make_list("l", {item(Type::jid, "a@b", false, 1, kind::message),
                                           fall_through(false, 2)}))
                  .needs_roster());
  CHECK(CompiledList(make_list("l", {item(Type::group, "G", true, 1)})).needs_roster());
  CHECK(CompiledList(make_list("l", {item(Type::subscription, "none", false, 1)})).needs_roster());
  CHECK(CompiledList(make_list("l", {item(Type::jid, "a@b", false, 1),
                                     fall_through(true, 2),
                                     item(Type::group, "G", true, 3, kind::presence_out)}))
            .needs_roster());
  CHECK(CompiledList(make_list("l", {item(Type::subscription, "both", true, 9, kind::iq),
                                     item(Type::jid, "a@b", false, 1)}))
            .needs_roster());
}

TEST_CASE("is_block_item: type jid, action deny, no stanza kinds") {
  CHECK(pv::is_block_item(block_item("romeo@example.net", 1)));
  CHECK(pv::is_block_item(block_item("example.net", 0)));
  CHECK(pv::is_block_item(block_item("romeo@example.net/orchard", 7)));
  CHECK_FALSE(pv::is_block_item(item(Type::jid, "romeo@example.net", true, 1)));
  for (unsigned k = 1; k <= unsigned{kind::all}; ++k) {
    INFO("kinds=", k);
    CHECK_FALSE(pv::is_block_item(item(Type::jid, "romeo@example.net", false, 1,
                                       static_cast<std::uint8_t>(k))));
  }
  CHECK_FALSE(pv::is_block_item(item(Type::group, "G", false, 1)));
  CHECK_FALSE(pv::is_block_item(item(Type::subscription, "none", false, 1)));
  CHECK_FALSE(pv::is_block_item(fall_through(false, 1)));
}

TEST_CASE("Decision::blocked: only when a block item decided") {
  const Jid romeo = jid("romeo@example.net/orchard");
  const std::vector<std::string> groups{"G"};
  const Contact c{Subscription::none, &groups};

  CompiledList block(make_list("l", {block_item("romeo@example.net", 1)}));
  for (Check ch : kChecks) {
    INFO("check=", check_name(ch));
    Decision d = block.evaluate(ch, romeo, c);
    CHECK_FALSE(d.allow);
    CHECK(d.blocked());
  }
  // denied, but not by a block item
  for (const PrivacyItem& deny : {item(Type::jid, "romeo@example.net", false, 1, kind::message),
                                  item(Type::group, "G", false, 1),
                                  item(Type::subscription, "none", false, 1),
                                  fall_through(false, 1)}) {
    INFO("type=", type_name(deny.type), " kinds=", int(deny.kinds));
    const CompiledList list(make_list("l", {deny}));  // Decision points into it: keep it alive
    Decision d = list.evaluate(Check::message_in, romeo, c);
    CHECK_FALSE(d.allow);
    CHECK_FALSE(d.blocked());
  }
  // allowed by an earlier item before the block item
  CompiledList allowed(make_list("l", {item(Type::jid, "romeo@example.net", true, 1),
                                       block_item("romeo@example.net", 2)}));
  Decision d = allowed.evaluate(Check::message_in, romeo, c);
  CHECK(d.allow);
  CHECK_FALSE(d.blocked());
  // a block item for someone else, fall-through deny decides
  CompiledList other(make_list("l", {block_item("tybalt@example.com", 1), fall_through(false, 2)}));
  d = other.evaluate(Check::message_in, romeo, c);
  CHECK_FALSE(d.allow);
  CHECK_FALSE(d.blocked());
}

// =======================================================================================
// parse_list / write_list
// =======================================================================================

TEST_CASE("parse_list: a valid list with every item type and stanza kinds") {
  Element l = list_element("x");
  add_item(l, {{"type", "jid"}, {"value", "tybalt@example.com"}, {"action", "deny"}, {"order", "1"}},
           {"message", "presence-in"});
  add_item(l, {{"type", "group"}, {"value", "Friends"}, {"action", "allow"}, {"order", "2"}},
           {"iq"});
  add_item(l, {{"type", "subscription"}, {"value", "both"}, {"action", "allow"}, {"order", "3"}},
           {"presence-out"});
  add_item(l, {{"type", "subscription"}, {"value", "none"}, {"action", "deny"}, {"order", "4"}},
           {"message", "iq", "presence-in", "presence-out"});
  add_item(l, {{"type", "jid"}, {"value", "example.org"}, {"action", "deny"}, {"order", "5"}});
  add_item(l, {{"action", "allow"}, {"order", "6"}});

  Parsed p = parse(l);
  INFO("error text: ", p.text);
  REQUIRE(p.list.has_value());
  CHECK(p.list->name == "x");
  REQUIRE(p.list->items.size() == 6u);

  const PrivacyItem* i = item_with_order(*p.list, 1);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::jid, "tybalt@example.com", false, 1, kind::message | kind::presence_in));
  i = item_with_order(*p.list, 2);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::group, "Friends", true, 2, kind::iq));
  i = item_with_order(*p.list, 3);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::subscription, "both", true, 3, kind::presence_out));
  i = item_with_order(*p.list, 4);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::subscription, "none", false, 4, kind::all));
  i = item_with_order(*p.list, 5);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::jid, "example.org", false, 5, 0));
  CHECK(pv::is_block_item(*i));
  i = item_with_order(*p.list, 6);
  REQUIRE(i != nullptr);
  CHECK(*i == item(Type::any, "", true, 6, 0));
}

TEST_CASE("parse_list: each stanza-kind child sets its own bit") {
  const std::array<std::pair<std::string_view, std::uint8_t>, 4> children{{
      {"message", kind::message},
      {"iq", kind::iq},
      {"presence-in", kind::presence_in},
      {"presence-out", kind::presence_out},
  }};
  for (const auto& [name, bit] : children) {
    Element l = list_element("k");
    add_item(l, {{"action", "deny"}, {"order", "1"}}, {name});
    Parsed p = parse(l);
    INFO("child=", std::string(name), " error text: ", p.text);
    REQUIRE(p.list.has_value());
    REQUIRE(p.list->items.size() == 1u);
    CHECK(p.list->items[0].kinds == bit);
    CHECK(p.list->items[0].type == Type::any);
  }
  // children in another order, and no children at all
  Element l = list_element("k");
  add_item(l, {{"action", "deny"}, {"order", "1"}}, {"presence-out", "message"});
  add_item(l, {{"action", "allow"}, {"order", "2"}});
  Parsed p = parse(l);
  REQUIRE(p.list.has_value());
  REQUIRE(item_with_order(*p.list, 1) != nullptr);
  CHECK(item_with_order(*p.list, 1)->kinds == (kind::presence_out | kind::message));
  REQUIRE(item_with_order(*p.list, 2) != nullptr);
  CHECK(item_with_order(*p.list, 2)->kinds == 0);
}

TEST_CASE("parse_list: jid values are stored prepared") {
  const std::array<std::pair<std::string_view, std::string_view>, 5> cases{{
      {"Juliet@Example.COM", "juliet@example.com"},
      {"EXAMPLE.com", "example.com"},
      {"Example.COM/Balcony", "example.com/Balcony"},
      {"Romeo@Example.NET/Orchard", "romeo@example.net/Orchard"},
      {"example.com.", "example.com"},
  }};
  for (const auto& [raw, prepared] : cases) {
    Element l = list_element("p");
    add_item(l, {{"type", "jid"}, {"value", std::string(raw)}, {"action", "deny"}, {"order", "1"}});
    Parsed p = parse(l);
    INFO("value=", std::string(raw), " error text: ", p.text);
    REQUIRE(p.list.has_value());
    REQUIRE(p.list->items.size() == 1u);
    CHECK(p.list->items[0].value == prepared);
  }
}

TEST_CASE("parse_list: order accepts 0 and 4294967295") {
  Element l = list_element("o");
  add_item(l, {{"action", "deny"}, {"order", "4294967295"}});
  add_item(l, {{"type", "jid"}, {"value", "a@example.com"}, {"action", "allow"}, {"order", "0"}});
  Parsed p = parse(l);
  INFO("error text: ", p.text);
  REQUIRE(p.list.has_value());
  REQUIRE(p.list->items.size() == 2u);
  CHECK(item_with_order(*p.list, 4294967295u) != nullptr);
  CHECK(item_with_order(*p.list, 0) != nullptr);
  // and the compiled result evaluates in numeric order
  CompiledList cl(*p.list);
  CHECK(cl.evaluate(Check::message_in, jid("a@example.com/x"), Contact{}).allow);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("b@example.com/x"), Contact{}).allow);
}

TEST_CASE("parse_list: a group value is kept as given") {
  Element l = list_element("g");
  add_item(l, {{"type", "group"}, {"value", "My Friends \xC3\xA9"}, {"action", "deny"}, {"order", "1"}});
  Parsed p = parse(l);
  REQUIRE(p.list.has_value());
  REQUIRE(p.list->items.size() == 1u);
  CHECK(p.list->items[0].value == "My Friends \xC3\xA9");
}

TEST_CASE("parse_list: invalid items are rejected with bad-request") {
  struct Bad {
    std::string why;
    Attrs attrs;
    std::vector<std::string_view> children;
  };
  const std::vector<Bad> cases{
      {"missing action", {{"type", "jid"}, {"value", "b@example.com"}, {"order", "2"}}, {}},
      {"action block", {{"type", "jid"}, {"value", "b@example.com"}, {"action", "block"}, {"order", "2"}}, {}},
      {"empty action", {{"type", "jid"}, {"value", "b@example.com"}, {"action", ""}, {"order", "2"}}, {}},
      {"missing order", {{"type", "jid"}, {"value", "b@example.com"}, {"action", "deny"}}, {}},
      {"negative order", {{"action", "deny"}, {"order", "-1"}}, {}},
      {"non-numeric order", {{"action", "deny"}, {"order", "abc"}}, {}},
      {"empty order", {{"action", "deny"}, {"order", ""}}, {}},
      {"order with trailing junk", {{"action", "deny"}, {"order", "2x"}}, {}},
      {"fractional order", {{"action", "deny"}, {"order", "1.5"}}, {}},
      {"order 4294967296", {{"action", "deny"}, {"order", "4294967296"}}, {}},
      {"order far beyond 32 bits", {{"action", "deny"}, {"order", "99999999999999999999999"}}, {}},
      {"duplicate order", {{"type", "jid"}, {"value", "b@example.com"}, {"action", "deny"}, {"order", "1"}}, {}},
      {"bad type", {{"type", "foo"}, {"value", "b@example.com"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"jid without value", {{"type", "jid"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"group without value", {{"type", "group"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"subscription without value", {{"type", "subscription"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"subscription value all", {{"type", "subscription"}, {"value", "all"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"subscription value pending", {{"type", "subscription"}, {"value", "pending"}, {"action", "deny"}, {"order", "2"}}, {}},
      {"subscription value empty", {{"type", "subscription"}, {"value", ""}, {"action", "deny"}, {"order", "2"}}, {}},
      {"unknown child body", {{"action", "deny"}, {"order", "2"}}, {"body"}},
      {"unknown child presence", {{"action", "deny"}, {"order", "2"}}, {"message", "presence"}},
  };
  for (const auto& bad : cases) {
    Element l = list_element("x");
    // a valid first item, so the failure is about the second
    add_item(l, {{"type", "jid"}, {"value", "a@example.com"}, {"action", "allow"}, {"order", "1"}});
    Element it("item", std::string(pv::kPrivacyNs));
    for (const auto& [k, v] : bad.attrs) it.set_attr(k, v);
    for (auto c : bad.children) it.add(std::string(c));
    l.append(std::move(it));
    Parsed p = parse(l);
    INFO("case: ", bad.why);
    CHECK_FALSE(p.list.has_value());
    CHECK(p.error == StanzaError::bad_request);
    CHECK_FALSE(p.text.empty());
  }
}

TEST_CASE("parse_list: the invalid item alone (first and only item) is rejected too") {
  const std::vector<Attrs> cases{
      {{"order", "1"}},
      {{"action", "deny"}},
      {{"action", "deny"}, {"order", "-5"}},
      {{"type", "bogus"}, {"value", "x"}, {"action", "deny"}, {"order", "1"}},
      {{"type", "subscription"}, {"value", "Both"}, {"action", "deny"}, {"order", "1"}},
  };
  for (const auto& attrs : cases) {
    Element l = list_element("x");
    add_item(l, attrs);
    Parsed p = parse(l);
    std::string desc;
    for (const auto& [k, v] : attrs) desc += k + "='" + v + "' ";
    INFO("item: ", desc);
    CHECK_FALSE(p.list.has_value());
    CHECK(p.error == StanzaError::bad_request);
  }
}

TEST_CASE("parse_list: a jid value that is not a JID is jid-malformed") {
  for (std::string_view bad : {"@example.com", "juliet@", "juliet@example.com/", "a@b@example.com",
                               "juliet@exa mple.com", "/foobar"}) {
    Element l = list_element("x");
    add_item(l, {{"type", "jid"}, {"value", std::string(bad)}, {"action", "deny"}, {"order", "1"}});
    Parsed p = parse(l);
    INFO("value='", std::string(bad), "'");
    CHECK_FALSE(p.list.has_value());
    CHECK(p.error == StanzaError::jid_malformed);
    CHECK_FALSE(p.text.empty());
  }
}

TEST_CASE("parse_list: a list without a name is bad-request") {
  Element l = list_element(std::nullopt);
  add_item(l, {{"action", "allow"}, {"order", "1"}});
  Parsed p = parse(l);
  CHECK_FALSE(p.list.has_value());
  CHECK(p.error == StanzaError::bad_request);
  CHECK_FALSE(p.text.empty());
}

TEST_CASE("parse_list: an item with no type and no value is the fall-through") {
  Element l = list_element("ft");
  add_item(l, {{"action", "deny"}, {"order", "7"}});
  Parsed p = parse(l);
  REQUIRE(p.list.has_value());
  REQUIRE(p.list->items.size() == 1u);
  CHECK(p.list->items[0].type == Type::any);
  CHECK(p.list->items[0].value.empty());
  CHECK_FALSE(p.list->items[0].allow);
  CHECK(p.list->items[0].order == 7u);
  CHECK(p.list->items[0].kinds == 0);
  CompiledList cl(*p.list);
  for (Check c : kChecks) CHECK_FALSE(cl.evaluate(c, jid("anyone@example.org"), Contact{}).allow);
}

TEST_CASE("parse_list: the XEP-0016 edit example parses (out-of-order items)") {
  // XEP-0016 §2.6 Example: edit list 'public'
  Element l = list_element("public");
  add_item(l, {{"type", "jid"}, {"value", "tybalt@example.com"}, {"action", "deny"}, {"order", "3"}});
  add_item(l, {{"type", "jid"}, {"value", "paris@example.org"}, {"action", "deny"}, {"order", "5"}});
  add_item(l, {{"action", "allow"}, {"order", "68"}});
  Parsed p = parse(l);
  REQUIRE(p.list.has_value());
  CHECK(p.list->name == "public");
  CHECK(p.list->items.size() == 3u);

  Element r = list_element("r");
  add_item(r, {{"action", "allow"}, {"order", "30"}});
  add_item(r, {{"type", "jid"}, {"value", "paris@example.org"}, {"action", "deny"}, {"order", "10"}});
  add_item(r, {{"type", "group"}, {"value", "Friends"}, {"action", "allow"}, {"order", "20"}});
  p = parse(r);
  REQUIRE(p.list.has_value());
  CHECK(p.list->items.size() == 3u);
  CompiledList cl(*p.list);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("paris@example.org/x"), Contact{}).allow);
  CHECK(cl.needs_roster());
}

TEST_CASE("write_list: writes <list name> with every item, and parse_list reads it back") {
  const PrivacyList original = make_list(
      "Round Trip", {item(Type::jid, "romeo@example.net", false, 0),
                     item(Type::jid, "example.com/Res", false, 1, kind::message | kind::presence_in),
                     item(Type::group, "Friends & \"Family\" <x>", true, 2, kind::iq),
                     item(Type::subscription, "none", false, 3, kind::presence_out),
                     item(Type::subscription, "to", true, 4, kind::all),
                     item(Type::subscription, "from", false, 5),
                     item(Type::subscription, "both", true, 6),
                     fall_through(false, 4294967295u)});
  Element query("query", std::string(pv::kPrivacyNs));
  pv::write_list(query, original);
  auto children = query.elements();
  REQUIRE(children.size() == 1u);
  const Element& list = *children[0];
  CHECK(list.name() == "list");
  CHECK(list.ns() == pv::kPrivacyNs);
  CHECK(list.attr_or("name") == "Round Trip");
  auto items = list.elements();
  REQUIRE(items.size() == original.items.size());
  for (const Element* e : items) CHECK(e->name() == "item");

  // The fall-through item has neither type nor value; no-kinds items have no children.
  const Element* ft = nullptr;
  const Element* first = nullptr;
  const Element* two_kinds = nullptr;
  for (const Element* e : items) {
    if (e->attr_or("order") == "4294967295") ft = e;
    if (e->attr_or("order") == "0") first = e;
    if (e->attr_or("order") == "1") two_kinds = e;
  }
  REQUIRE(ft != nullptr);
  CHECK(ft->attr("type") == nullptr);
  CHECK(ft->attr("value") == nullptr);
  CHECK(ft->attr_or("action") == "deny");
  CHECK(ft->elements().empty());
  REQUIRE(first != nullptr);
  CHECK(first->attr_or("type") == "jid");
  CHECK(first->attr_or("value") == "romeo@example.net");
  CHECK(first->elements().empty());
  REQUIRE(two_kinds != nullptr);
  CHECK(two_kinds->child("message", pv::kPrivacyNs) != nullptr);
  CHECK(two_kinds->child("presence-in", pv::kPrivacyNs) != nullptr);
  CHECK(two_kinds->child("iq", pv::kPrivacyNs) == nullptr);
  CHECK(two_kinds->child("presence-out", pv::kPrivacyNs) == nullptr);

  Parsed p = parse(list);
  INFO("error text: ", p.text);
  REQUIRE(p.list.has_value());
  CHECK(p.list->name == original.name);
  REQUIRE(p.list->items.size() == original.items.size());
  for (const auto& o : original.items) {
    INFO("order=", o.order);
    const PrivacyItem* back = item_with_order(*p.list, o.order);
    REQUIRE(back != nullptr);
    CHECK(*back == o);
  }
  // items are already ascending, so the whole list compares equal once sorted
  PrivacyList sorted = *p.list;
  sorted.items = by_order(sorted);
  CHECK(sorted == original);
}

TEST_CASE("write_list: appends, keeping what the query already has") {
  Element query("query", std::string(pv::kPrivacyNs));
  pv::write_list(query, make_list("a", {fall_through(true, 1)}));
  pv::write_list(query, make_list("b", {item(Type::jid, "x@example.com", false, 1)}));
  auto children = query.elements();
  REQUIRE(children.size() == 2u);
  CHECK(children[0]->attr_or("name") == "a");
  CHECK(children[1]->attr_or("name") == "b");
}

TEST_CASE("parse_list -> write_list -> parse_list is stable") {
  Element l = list_element("stable");
  add_item(l, {{"type", "jid"}, {"value", "Juliet@Example.COM"}, {"action", "deny"}, {"order", "1"}},
           {"message", "presence-in"});
  add_item(l, {{"type", "group"}, {"value", "Work"}, {"action", "allow"}, {"order", "2"}});
  add_item(l, {{"action", "deny"}, {"order", "3"}}, {"iq", "presence-out"});
  Parsed p1 = parse(l);
  REQUIRE(p1.list.has_value());
  Element query("query", std::string(pv::kPrivacyNs));
  pv::write_list(query, *p1.list);
  REQUIRE(query.elements().size() == 1u);
  Parsed p2 = parse(*query.elements()[0]);
  REQUIRE(p2.list.has_value());
  CHECK(*p2.list == *p1.list);
  REQUIRE(item_with_order(*p2.list, 1) != nullptr);
  CHECK(item_with_order(*p2.list, 1)->value == "juliet@example.com");
}

// =======================================================================================
// find_list
// =======================================================================================

TEST_CASE("find_list: by exact name") {
  PrivacyLists lists;
  lists.lists = {make_list("Public", {fall_through(true, 1)}), make_list("private", {}),
                 make_list("special", {fall_through(false, 1)})};
  lists.default_name = "Public";
  const PrivacyList* l = pv::find_list(lists, "private");
  REQUIRE(l != nullptr);
  CHECK(l == &lists.lists[1]);
  CHECK(pv::find_list(lists, "special") == &lists.lists[2]);
  CHECK(pv::find_list(lists, "Public") == &lists.lists[0]);
  CHECK(pv::find_list(lists, "public") == nullptr);
  CHECK(pv::find_list(lists, "missing") == nullptr);
  CHECK(pv::find_list(lists, "") == nullptr);
  CHECK(pv::find_list(PrivacyLists{}, "Public") == nullptr);
}

// =======================================================================================
// blocklist / block / unblock (XEP-0191 §8)
// =======================================================================================

TEST_CASE("blocklist: the default list's block items in list order") {
  PrivacyLists lists;
  CHECK(pv::blocklist(lists).empty());

  lists.lists = {
      make_list("other", {block_item("zed@example.com", 1), block_item("yan@example.com", 2)}),
      make_list("public",
                {block_item("a@example.com", 1),
                 item(Type::jid, "b@example.com", true, 2),
                 item(Type::jid, "c@example.com", false, 3, kind::message),
                 block_item("d@example.com/res", 4),
                 item(Type::group, "Enemies", false, 5),
                 item(Type::subscription, "none", false, 6),
                 block_item("example.org", 7),
                 fall_through(false, 8)}),
  };
  // no default list: empty, even though lists contain block items
  CHECK(pv::blocklist(lists).empty());

  lists.default_name = "public";
  CHECK(pv::blocklist(lists) ==
        std::vector<std::string>{"a@example.com", "d@example.com/res", "example.org"});

  lists.default_name = "other";
  CHECK(pv::blocklist(lists) == std::vector<std::string>{"zed@example.com", "yan@example.com"});
}

TEST_CASE("blocklist: jid-deny items with stanza kinds are not blocks") {
  PrivacyLists lists;
  lists.lists = {make_list("d", {item(Type::jid, "a@example.com", false, 1, kind::message),
                                 item(Type::jid, "b@example.com", false, 2, kind::all),
                                 item(Type::jid, "c@example.com", false, 3, kind::presence_out)})};
  lists.default_name = "d";
  CHECK(pv::blocklist(lists).empty());
}

TEST_CASE("block: without a default list creates 'Blocked contacts' as the default") {
  CHECK(pv::kBlocklistName == "Blocked contacts");
  PrivacyLists after = pv::block(PrivacyLists{}, {"romeo@example.net"});
  check_invariants(after);
  CHECK(after.default_name == pv::kBlocklistName);
  REQUIRE(after.lists.size() == 1u);
  const PrivacyList* bl = pv::find_list(after, pv::kBlocklistName);
  REQUIRE(bl != nullptr);
  REQUIRE(bl->items.size() == 1u);
  CHECK(pv::is_block_item(bl->items[0]));
  CHECK(bl->items[0].value == "romeo@example.net");
  CHECK(pv::blocklist(after) == std::vector<std::string>{"romeo@example.net"});

  CompiledList cl(*bl);
  for (Check c : kChecks) {
    INFO("check=", check_name(c));
    Decision d = cl.evaluate(c, jid("romeo@example.net/orchard"), Contact{});
    CHECK_FALSE(d.allow);
    CHECK(d.blocked());
    CHECK(cl.evaluate(c, jid("juliet@example.com"), Contact{}).allow);
  }
}

TEST_CASE("block: several JIDs at once into a new blocklist") {
  PrivacyLists after =
      pv::block(PrivacyLists{}, {"romeo@example.net", "example.org", "tybalt@example.com/sword"});
  check_invariants(after);
  CHECK(after.default_name == pv::kBlocklistName);
  auto bl = pv::blocklist(after);
  CHECK(std::set<std::string>(bl.begin(), bl.end()) ==
        std::set<std::string>{"romeo@example.net", "example.org", "tybalt@example.com/sword"});
  CHECK(bl.size() == 3u);
  const PrivacyList* l = default_list(after);
  REQUIRE(l != nullptr);
  CompiledList cl(*l);
  CHECK_FALSE(eval_default(cl, Check::message_in, "anyone@example.org/x").allow);
  CHECK_FALSE(eval_default(cl, Check::iq_in, "tybalt@example.com/sword").allow);
  CHECK(eval_default(cl, Check::iq_in, "tybalt@example.com/dagger").allow);
}

TEST_CASE("block: without a default, other (non-default) lists stay as they were") {
  PrivacyLists before;
  before.lists = {make_list("A", {fall_through(false, 1)}),
                  make_list("zzz", {item(Type::jid, "romeo@example.net", true, 1)})};
  PrivacyLists after = pv::block(before, {"romeo@example.net"});
  check_invariants(after);
  CHECK(after.default_name == pv::kBlocklistName);
  REQUIRE(after.lists.size() == 3u);
  REQUIRE(pv::find_list(after, "A") != nullptr);
  CHECK(*pv::find_list(after, "A") == before.lists[0]);
  REQUIRE(pv::find_list(after, "zzz") != nullptr);
  CHECK(*pv::find_list(after, "zzz") == before.lists[1]);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"romeo@example.net"});
}

TEST_CASE("block: with a default list, new blocks come before every existing item") {
  PrivacyLists before;
  before.lists = {make_list("public", {item(Type::jid, "romeo@example.net", true, 1),
                                       item(Type::group, "Enemies", false, 2),
                                       item(Type::jid, "nurse@example.com", false, 3, kind::message),
                                       fall_through(true, 4)}),
                  make_list("special", {fall_through(false, 1)})};
  before.default_name = "public";

  // before blocking, romeo is allowed by the order-1 item
  CHECK(CompiledList(before.lists[0])
            .evaluate(Check::message_in, jid("romeo@example.net/orchard"), Contact{})
            .allow);

  PrivacyLists after = pv::block(before, {"romeo@example.net", "tybalt@example.com"});
  check_invariants(after);
  CHECK(after.default_name == "public");
  CHECK(pv::find_list(after, pv::kBlocklistName) == nullptr);
  REQUIRE(pv::find_list(after, "special") != nullptr);
  CHECK(*pv::find_list(after, "special") == before.lists[1]);

  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  CHECK(def->items.size() == 6u);
  CompiledList cl(*def);
  Decision d = cl.evaluate(Check::message_in, jid("romeo@example.net/orchard"), Contact{});
  CHECK_FALSE(d.allow);
  CHECK(d.blocked());
  d = cl.evaluate(Check::presence_in, jid("tybalt@example.com"), Contact{});
  CHECK_FALSE(d.allow);
  CHECK(d.blocked());
  CHECK(cl.evaluate(Check::message_in, jid("juliet@example.com"), Contact{}).allow);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("nurse@example.com"), Contact{}).allow);

  // In evaluation order: every block item first, then the old items in their old order.
  auto sorted = by_order(*def);
  std::vector<Shape> rest;
  bool seen_non_block = false;
  for (const auto& i : sorted) {
    if (pv::is_block_item(i)) {
      CHECK_MESSAGE(!seen_non_block, "a block item comes after an existing item");
    } else {
      seen_non_block = true;
      rest.push_back(shape(i));
    }
  }
  std::vector<Shape> expected_rest;
  for (const auto& i : before.lists[0].items) expected_rest.push_back(shape(i));
  CHECK(rest == expected_rest);

  auto bl = pv::blocklist(after);
  CHECK(std::set<std::string>(bl.begin(), bl.end()) ==
        std::set<std::string>{"romeo@example.net", "tybalt@example.com"});
  CHECK(bl.size() == 2u);
}

TEST_CASE("block: existing items starting at order 0 are renumbered, blocks still first") {
  PrivacyLists before;
  before.lists = {make_list("d", {item(Type::jid, "romeo@example.net", true, 0),
                                  item(Type::jid, "juliet@example.com", true, 1),
                                  fall_through(false, 2)})};
  before.default_name = "d";
  PrivacyLists after = pv::block(before, {"romeo@example.net", "paris@example.org"});
  check_invariants(after);
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  REQUIRE(def->items.size() == 5u);
  CompiledList cl(*def);
  CHECK(cl.evaluate(Check::message_in, jid("romeo@example.net"), Contact{}).blocked());
  CHECK(cl.evaluate(Check::message_in, jid("paris@example.org"), Contact{}).blocked());
  CHECK(cl.evaluate(Check::message_in, jid("juliet@example.com"), Contact{}).allow);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("nurse@example.com"), Contact{}).allow);
  auto sorted = by_order(*def);
  CHECK(pv::is_block_item(sorted[0]));
  CHECK(pv::is_block_item(sorted[1]));
  CHECK(shape(sorted[2]) == shape(before.lists[0].items[0]));
  CHECK(shape(sorted[3]) == shape(before.lists[0].items[1]));
  CHECK(shape(sorted[4]) == shape(before.lists[0].items[2]));
}

TEST_CASE("block: existing items spanning 0..4294967295 still leave unique orders") {
  PrivacyLists before;
  before.lists = {make_list("d", {item(Type::jid, "romeo@example.net", true, 0),
                                  item(Type::jid, "juliet@example.com", true, 1),
                                  fall_through(false, 4294967295u)})};
  before.default_name = "d";
  PrivacyLists after =
      pv::block(before, {"romeo@example.net", "a@example.org", "b@example.org"});
  check_invariants(after);
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  REQUIRE(def->items.size() == 6u);
  auto sorted = by_order(*def);
  for (std::size_t i = 0; i < 3; ++i) CHECK(pv::is_block_item(sorted[i]));
  CHECK(shape(sorted[3]) == shape(before.lists[0].items[0]));
  CHECK(shape(sorted[4]) == shape(before.lists[0].items[1]));
  CHECK(shape(sorted[5]) == shape(before.lists[0].items[2]));
  CompiledList cl(*def);
  CHECK(cl.evaluate(Check::message_in, jid("romeo@example.net"), Contact{}).blocked());
}

TEST_CASE("block: with room below the first item, existing orders are kept") {
  PrivacyLists before;
  before.lists = {make_list("d", {item(Type::jid, "romeo@example.net", true, 100),
                                  fall_through(false, 200)})};
  before.default_name = "d";
  PrivacyLists after = pv::block(before, {"romeo@example.net"});
  check_invariants(after);
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  auto sorted = by_order(*def);
  REQUIRE(sorted.size() == 3u);
  CHECK(pv::is_block_item(sorted[0]));
  CHECK(sorted[0].order < 100u);
  // header: "Orders are renumbered only if the new items do not fit below the first one"
  CHECK(sorted[1] == before.lists[0].items[0]);
  CHECK(sorted[2] == before.lists[0].items[1]);
}

TEST_CASE("block: already-blocked JIDs are not added again") {
  PrivacyLists once = pv::block(PrivacyLists{}, {"romeo@example.net"});
  PrivacyLists twice = pv::block(once, {"romeo@example.net"});
  check_invariants(twice);
  CHECK(pv::blocklist(twice) == std::vector<std::string>{"romeo@example.net"});
  CHECK(twice == once);

  PrivacyLists more = pv::block(once, {"romeo@example.net", "tybalt@example.com"});
  check_invariants(more);
  auto bl = pv::blocklist(more);
  CHECK(bl.size() == 2u);
  CHECK(std::count(bl.begin(), bl.end(), "romeo@example.net") == 1);
  CHECK(std::count(bl.begin(), bl.end(), "tybalt@example.com") == 1);
}

TEST_CASE("block: an already-blocked JID in an existing default list is not duplicated") {
  PrivacyLists before;
  before.lists = {make_list("d", {block_item("romeo@example.net", 5),
                                  item(Type::group, "G", false, 6), fall_through(true, 7)})};
  before.default_name = "d";
  PrivacyLists after = pv::block(before, {"romeo@example.net"});
  check_invariants(after);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"romeo@example.net"});
  CHECK(after == before);
}

TEST_CASE("block: the same JID twice in one request is blocked once") {
  PrivacyLists after = pv::block(PrivacyLists{}, {"romeo@example.net", "romeo@example.net"});
  check_invariants(after);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"romeo@example.net"});
}

TEST_CASE("block: a jid-deny item limited to some kinds does not count as blocked") {
  PrivacyLists before;
  before.lists = {make_list("d", {item(Type::jid, "romeo@example.net", false, 1, kind::message),
                                  fall_through(true, 2)})};
  before.default_name = "d";
  PrivacyLists after = pv::block(before, {"romeo@example.net"});
  check_invariants(after);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"romeo@example.net"});
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  CHECK(def->items.size() == 3u);
  CompiledList cl(*def);
  Decision d = cl.evaluate(Check::iq_in, jid("romeo@example.net/x"), Contact{});
  CHECK_FALSE(d.allow);
  CHECK(d.blocked());
  d = cl.evaluate(Check::message_in, jid("romeo@example.net/x"), Contact{});
  CHECK_FALSE(d.allow);
  CHECK(d.blocked());  // the new block item now comes first
}

TEST_CASE("unblock: removes just the named block item") {
  PrivacyLists before;
  before.lists = {make_list("d", {block_item("romeo@example.net", 1),
                                  block_item("tybalt@example.com", 2),
                                  item(Type::group, "Enemies", false, 3),
                                  item(Type::jid, "romeo@example.net", false, 4, kind::message),
                                  fall_through(true, 5)}),
                  make_list("other", {block_item("romeo@example.net", 1)})};
  before.default_name = "d";
  PrivacyLists after = pv::unblock(before, {"romeo@example.net"});
  check_invariants(after);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"tybalt@example.com"});
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  CHECK(def->items == std::vector<PrivacyItem>{before.lists[0].items[1], before.lists[0].items[2],
                                               before.lists[0].items[3], before.lists[0].items[4]});
  // non-default lists are not touched
  REQUIRE(pv::find_list(after, "other") != nullptr);
  CHECK(*pv::find_list(after, "other") == before.lists[1]);
  CHECK(after.default_name == "d");

  CompiledList cl(*def);
  CHECK(cl.evaluate(Check::iq_in, jid("romeo@example.net/x"), Contact{}).allow);
  Decision d = cl.evaluate(Check::message_in, jid("romeo@example.net/x"), Contact{});
  CHECK_FALSE(d.allow);  // the message-only deny item stays
  CHECK_FALSE(d.blocked());
  CHECK(cl.evaluate(Check::iq_in, jid("tybalt@example.com"), Contact{}).blocked());
}

TEST_CASE("unblock: several named JIDs") {
  PrivacyLists before = pv::block(PrivacyLists{}, {"a@example.com", "b@example.com", "c@example.com"});
  PrivacyLists after = pv::unblock(before, {"a@example.com", "c@example.com"});
  check_invariants(after);
  CHECK(pv::blocklist(after) == std::vector<std::string>{"b@example.com"});
}

TEST_CASE("unblock: an empty JID set removes every block item and keeps the rest") {
  PrivacyLists before;
  before.lists = {make_list("d", {block_item("romeo@example.net", 1),
                                  item(Type::group, "Enemies", false, 2),
                                  block_item("example.org", 3),
                                  item(Type::jid, "paris@example.org", false, 4, kind::iq),
                                  item(Type::jid, "juliet@example.com", true, 5),
                                  block_item("tybalt@example.com/x", 6)})};
  before.default_name = "d";
  PrivacyLists after = pv::unblock(before, {});
  check_invariants(after);
  CHECK(pv::blocklist(after).empty());
  CHECK(after.default_name == "d");
  const PrivacyList* def = default_list(after);
  REQUIRE(def != nullptr);
  CHECK(def->items == std::vector<PrivacyItem>{before.lists[0].items[1], before.lists[0].items[3],
                                               before.lists[0].items[4]});
  const std::vector<std::string> enemies{"Enemies"};
  CompiledList cl(*def);
  CHECK_FALSE(cl.evaluate(Check::message_in, jid("x@example.net"), Contact{Subscription::both, &enemies}).allow);
  CHECK(cl.evaluate(Check::message_in, jid("romeo@example.net"), Contact{}).allow);
}

TEST_CASE("unblock: a JID that is not blocked is a no-op") {
  PrivacyLists before;
  before.lists = {make_list("d", {block_item("romeo@example.net", 1),
                                  item(Type::jid, "tybalt@example.com", false, 2, kind::message),
                                  fall_through(true, 3)})};
  before.default_name = "d";
  CHECK(pv::unblock(before, {"juliet@example.com"}) == before);
  // a deny item with kinds is not a block item, so unblocking its JID changes nothing
  CHECK(pv::unblock(before, {"tybalt@example.com"}) == before);
  // block items match by value exactly, not by JID containment
  CHECK(pv::unblock(before, {"romeo@example.net/orchard"}) == before);
  CHECK(pv::unblock(before, {"example.net"}) == before);
}

TEST_CASE("unblock: without a default list nothing changes") {
  PrivacyLists before;
  before.lists = {make_list("x", {block_item("romeo@example.net", 1)})};
  CHECK(pv::unblock(before, {"romeo@example.net"}) == before);
  CHECK(pv::unblock(before, {}) == before);
  CHECK(pv::unblock(PrivacyLists{}, {}) == PrivacyLists{});
}

TEST_CASE("block then unblock restores the blocklist") {
  PrivacyLists before;
  before.lists = {make_list("d", {item(Type::jid, "romeo@example.net", true, 10),
                                  fall_through(true, 20)})};
  before.default_name = "d";
  PrivacyLists blocked = pv::block(before, {"romeo@example.net"});
  CHECK_FALSE(CompiledList(*default_list(blocked))
                  .evaluate(Check::message_in, jid("romeo@example.net"), Contact{})
                  .allow);
  PrivacyLists unblocked = pv::unblock(blocked, {"romeo@example.net"});
  check_invariants(unblocked);
  CHECK(pv::blocklist(unblocked).empty());
  const PrivacyList* def = default_list(unblocked);
  REQUIRE(def != nullptr);
  std::vector<Shape> got;
  for (const auto& i : by_order(*def)) got.push_back(shape(i));
  CHECK(got == std::vector<Shape>{shape(before.lists[0].items[0]), shape(before.lists[0].items[1])});
  CHECK(CompiledList(*def).evaluate(Check::message_in, jid("romeo@example.net"), Contact{}).allow);
}
