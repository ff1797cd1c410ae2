#include <doctest/doctest.h>

#include <array>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "server/modules/roster/subscription.hpp"

using herald::roster::all_states;
using herald::roster::inbound;
using herald::roster::is_valid;
using herald::roster::name;
using herald::roster::normalized;
using herald::roster::Outcome;
using herald::roster::outbound;
using herald::roster::push_needed;
using herald::roster::State;
using herald::roster::state_from_name;
using herald::roster::Sub;
using herald::roster::sub_from_string;
using herald::roster::Type;
using herald::roster::type_from_string;
using herald::roster::visible_change;

namespace {

enum class Dir { out, in };

// One row of RFC 6121 Appendix A, copied from the RFC text: the route/deliver column
// verbatim ("MUST", "M.N.", "S.N.") and the new-state column verbatim ("no state change",
// "pre-approval" or a state name). `reply` is the auto-reply the footnotes call for.
struct Row {
  Dir dir;
  int table;
  std::string_view state;
  Type type;
  std::string_view route;
  std::string_view next;
  std::optional<Type> reply;
};

constexpr auto S = Type::subscribe;
constexpr auto SD = Type::subscribed;
constexpr auto U = Type::unsubscribe;
constexpr auto UD = Type::unsubscribed;
constexpr std::optional<Type> none_reply = std::nullopt;

// clang-format off
constexpr std::array<Row, 72> kRfcRows{{
    // Table 2: Processing of outbound "subscribe" stanzas
    {Dir::out, 2, "None",                  S, "MUST", "None + Pending Out",     none_reply},
    {Dir::out, 2, "None + Pending Out",    S, "MUST", "no state change",        none_reply},
    {Dir::out, 2, "None + Pending In",     S, "MUST", "None + Pending Out+In",  none_reply},
    {Dir::out, 2, "None + Pending Out+In", S, "MUST", "no state change",        none_reply},
    {Dir::out, 2, "To",                    S, "MUST", "no state change",        none_reply},
    {Dir::out, 2, "To + Pending In",       S, "MUST", "no state change",        none_reply},
    {Dir::out, 2, "From",                  S, "MUST", "From + Pending Out",     none_reply},
    {Dir::out, 2, "From + Pending Out",    S, "MUST", "no state change",        none_reply},
    {Dir::out, 2, "Both",                  S, "MUST", "no state change",        none_reply},
    // Table 3: Processing of outbound "unsubscribe" stanzas
    {Dir::out, 3, "None",                  U, "MUST", "no state change",        none_reply},
    {Dir::out, 3, "None + Pending Out",    U, "MUST", "None",                   none_reply},
    {Dir::out, 3, "None + Pending In",     U, "MUST", "no state change",        none_reply},
    {Dir::out, 3, "None + Pending Out+In", U, "MUST", "None + Pending In",      none_reply},
    {Dir::out, 3, "To",                    U, "MUST", "None",                   none_reply},
    {Dir::out, 3, "To + Pending In",       U, "MUST", "None + Pending In",      none_reply},
    {Dir::out, 3, "From",                  U, "MUST", "no state change",        none_reply},
    {Dir::out, 3, "From + Pending Out",    U, "MUST", "From",                   none_reply},
    {Dir::out, 3, "Both",                  U, "MUST", "From",                   none_reply},
    // Table 4: Processing of outbound "subscribed" stanzas
    {Dir::out, 4, "None",                  SD, "M.N.", "pre-approval",          none_reply},
    {Dir::out, 4, "None + Pending Out",    SD, "M.N.", "pre-approval",          none_reply},
    {Dir::out, 4, "None + Pending In",     SD, "MUST", "From",                  none_reply},
    {Dir::out, 4, "None + Pending Out+In", SD, "MUST", "From + Pending Out",    none_reply},
    {Dir::out, 4, "To",                    SD, "M.N.", "pre-approval",          none_reply},
    {Dir::out, 4, "To + Pending In",       SD, "MUST", "Both",                  none_reply},
    {Dir::out, 4, "From",                  SD, "M.N.", "no state change",       none_reply},
    {Dir::out, 4, "From + Pending Out",    SD, "M.N.", "no state change",       none_reply},
    {Dir::out, 4, "Both",                  SD, "M.N.", "no state change",       none_reply},
    // Table 5: Processing of outbound "unsubscribed" stanzas
    {Dir::out, 5, "None",                  UD, "S.N.", "no state change",       none_reply},
    {Dir::out, 5, "None + Pending Out",    UD, "S.N.", "no state change",       none_reply},
    {Dir::out, 5, "None + Pending In",     UD, "MUST", "None",                  none_reply},
    {Dir::out, 5, "None + Pending Out+In", UD, "MUST", "None + Pending Out",    none_reply},
    {Dir::out, 5, "To",                    UD, "S.N.", "no state change",       none_reply},
    {Dir::out, 5, "To + Pending In",       UD, "MUST", "To",                    none_reply},
    {Dir::out, 5, "From",                  UD, "MUST", "None",                  none_reply},
    {Dir::out, 5, "From + Pending Out",    UD, "MUST", "None + Pending Out",    none_reply},
    {Dir::out, 5, "Both",                  UD, "MUST", "To",                    none_reply},
    // Table 6: Processing of inbound "subscribe" stanzas ([2]: SHOULD auto-reply "subscribed")
    {Dir::in, 6, "None",                  S, "MUST", "None + Pending In",       none_reply},
    {Dir::in, 6, "None + Pending Out",    S, "MUST", "None + Pending Out+In",   none_reply},
    {Dir::in, 6, "None + Pending In",     S, "S.N.", "no state change",         none_reply},
    {Dir::in, 6, "None + Pending Out+In", S, "S.N.", "no state change",         none_reply},
    {Dir::in, 6, "To",                    S, "MUST", "To + Pending In",         none_reply},
    {Dir::in, 6, "To + Pending In",       S, "S.N.", "no state change",         none_reply},
    {Dir::in, 6, "From",                  S, "S.N.", "no state change",         SD},
    {Dir::in, 6, "From + Pending Out",    S, "S.N.", "no state change",         SD},
    {Dir::in, 6, "Both",                  S, "S.N.", "no state change",         SD},
    // Table 7: Processing of inbound "unsubscribe" stanzas ([1]: SHOULD auto-reply "unsubscribed")
    {Dir::in, 7, "None",                  U, "S.N.", "no state change",         none_reply},
    {Dir::in, 7, "None + Pending Out",    U, "S.N.", "no state change",         none_reply},
    {Dir::in, 7, "None + Pending In",     U, "MUST", "None",                    UD},
    {Dir::in, 7, "None + Pending Out+In", U, "MUST", "None + Pending Out",      UD},
    {Dir::in, 7, "To",                    U, "S.N.", "no state change",         none_reply},
    {Dir::in, 7, "To + Pending In",       U, "MUST", "To",                      UD},
    {Dir::in, 7, "From",                  U, "MUST", "None",                    UD},
    {Dir::in, 7, "From + Pending Out",    U, "MUST", "None + Pending Out",      UD},
    {Dir::in, 7, "Both",                  U, "MUST", "To",                      UD},
    // Table 8: Processing of inbound "subscribed" stanzas
    {Dir::in, 8, "None",                  SD, "S.N.", "no state change",        none_reply},
    {Dir::in, 8, "None + Pending Out",    SD, "MUST", "To",                     none_reply},
    {Dir::in, 8, "None + Pending In",     SD, "S.N.", "no state change",        none_reply},
    {Dir::in, 8, "None + Pending Out+In", SD, "MUST", "To + Pending In",        none_reply},
    {Dir::in, 8, "To",                    SD, "S.N.", "no state change",        none_reply},
    {Dir::in, 8, "To + Pending In",       SD, "S.N.", "no state change",        none_reply},
    {Dir::in, 8, "From",                  SD, "S.N.", "no state change",        none_reply},
    {Dir::in, 8, "From + Pending Out",    SD, "MUST", "Both",                   none_reply},
    {Dir::in, 8, "Both",                  SD, "S.N.", "no state change",        none_reply},
    // Table 9: Processing of inbound "unsubscribed" stanzas
    {Dir::in, 9, "None",                  UD, "S.N.", "no state change",        none_reply},
    {Dir::in, 9, "None + Pending Out",    UD, "MUST", "None",                   none_reply},
    {Dir::in, 9, "None + Pending In",     UD, "S.N.", "no state change",        none_reply},
    {Dir::in, 9, "None + Pending Out+In", UD, "MUST", "None + Pending In",      none_reply},
    {Dir::in, 9, "To",                    UD, "MUST", "None",                   none_reply},
    {Dir::in, 9, "To + Pending In",       UD, "MUST", "None + Pending In",      none_reply},
    {Dir::in, 9, "From",                  UD, "S.N.", "no state change",        none_reply},
    {Dir::in, 9, "From + Pending Out",    UD, "MUST", "From",                   none_reply},
    {Dir::in, 9, "Both",                  UD, "MUST", "From",                   none_reply},
}};

// The same tables for the three states that can carry a pre-approval (§3.4.2 rule 3),
// written out because the footnotes change exactly these rows.
constexpr std::array<Row, 24> kPreapprovedRows{{
    {Dir::out, 2, "None [pre-approved]",               S,  "MUST", "None + Pending Out [pre-approved]", none_reply},
    {Dir::out, 2, "None + Pending Out [pre-approved]", S,  "MUST", "no state change",                   none_reply},
    {Dir::out, 2, "To [pre-approved]",                 S,  "MUST", "no state change",                   none_reply},
    {Dir::out, 3, "None [pre-approved]",               U,  "MUST", "no state change",                   none_reply},
    {Dir::out, 3, "None + Pending Out [pre-approved]", U,  "MUST", "None [pre-approved]",               none_reply},
    {Dir::out, 3, "To [pre-approved]",                 U,  "MUST", "None [pre-approved]",               none_reply},
    // Already pre-approved: nothing new to note.
    {Dir::out, 4, "None [pre-approved]",               SD, "M.N.", "no state change",                   none_reply},
    {Dir::out, 4, "None + Pending Out [pre-approved]", SD, "M.N.", "no state change",                   none_reply},
    {Dir::out, 4, "To [pre-approved]",                 SD, "M.N.", "no state change",                   none_reply},
    // Table 5 note [1], §3.2.2 rule 2: the pre-approval is cancelled, the stanza not routed.
    {Dir::out, 5, "None [pre-approved]",               UD, "S.N.", "None",                              none_reply},
    {Dir::out, 5, "None + Pending Out [pre-approved]", UD, "S.N.", "None + Pending Out",                none_reply},
    {Dir::out, 5, "To [pre-approved]",                 UD, "S.N.", "To",                                none_reply},
    // Table 6 note [1], §3.4.2: auto-approve instead of delivering.
    {Dir::in, 6, "None [pre-approved]",               S,  "S.N.", "From",                               SD},
    {Dir::in, 6, "None + Pending Out [pre-approved]", S,  "S.N.", "From + Pending Out",                 SD},
    {Dir::in, 6, "To [pre-approved]",                 S,  "S.N.", "Both",                               SD},
    {Dir::in, 7, "None [pre-approved]",               U,  "S.N.", "no state change",                    none_reply},
    {Dir::in, 7, "None + Pending Out [pre-approved]", U,  "S.N.", "no state change",                    none_reply},
    {Dir::in, 7, "To [pre-approved]",                 U,  "S.N.", "no state change",                    none_reply},
    {Dir::in, 8, "None [pre-approved]",               SD, "S.N.", "no state change",                    none_reply},
    {Dir::in, 8, "None + Pending Out [pre-approved]", SD, "MUST", "To [pre-approved]",                  none_reply},
    {Dir::in, 8, "To [pre-approved]",                 SD, "S.N.", "no state change",                    none_reply},
    {Dir::in, 9, "None [pre-approved]",               UD, "S.N.", "no state change",                    none_reply},
    {Dir::in, 9, "None + Pending Out [pre-approved]", UD, "MUST", "None [pre-approved]",                none_reply},
    {Dir::in, 9, "To [pre-approved]",                 UD, "MUST", "None [pre-approved]",                none_reply},
}};
// clang-format on

State must_state(std::string_view n) {
  auto s = state_from_name(n);
  REQUIRE_MESSAGE(s.has_value(), "unknown state name: ", std::string(n));
  return *s;
}

std::string reply_str(const std::optional<Type>& t) {
  return t ? std::string(herald::roster::to_string(*t)) : std::string("(none)");
}

Outcome run(Dir d, const State& s, Type t) { return d == Dir::out ? outbound(s, t) : inbound(s, t); }

void check_row(const Row& r) {
  INFO("Table ", r.table, (r.dir == Dir::out ? " outbound " : " inbound "),
       std::string(herald::roster::to_string(r.type)), " in \"", std::string(r.state), "\"");
  REQUIRE((r.route == "MUST" || r.route == "M.N." || r.route == "S.N."));
  const State before = must_state(r.state);
  State expected = before;
  if (r.next == "pre-approval") {
    expected.preapproved = true;
  } else if (r.next != "no state change") {
    expected = must_state(r.next);
  }
  const Outcome o = run(r.dir, before, r.type);
  CHECK(o.forward == (r.route == "MUST"));
  CHECK(name(o.next) == name(expected));
  CHECK(o.next == expected);
  CHECK(o.changed == (expected != before));
  CHECK(reply_str(o.auto_reply) == reply_str(r.reply));
}

const std::array<Type, 4> kTypes{Type::subscribe, Type::subscribed, Type::unsubscribe, Type::unsubscribed};

}  // namespace

TEST_CASE("RFC 6121 Appendix A: the rows cover every state, type and direction exactly once") {
  std::set<std::tuple<int, std::string, int>> seen;
  for (const Row& r : kRfcRows) {
    CHECK(seen.emplace(static_cast<int>(r.dir), std::string(r.state), static_cast<int>(r.type)).second);
    // Tables 2-5 are outbound, 6-9 inbound; each table is about a single type.
    CHECK((r.dir == Dir::out) == (r.table <= 5));
  }
  CHECK(seen.size() == 2 * 9 * 4);
  // Each table lists the nine states in Appendix A.1 order.
  for (std::size_t t = 0; t < 8; ++t) {
    for (std::size_t i = 0; i < 9; ++i) {
      const Row& r = kRfcRows[t * 9 + i];
      CHECK(r.table == static_cast<int>(t) + 2);
      CHECK(r.type == kRfcRows[t * 9].type);
      CHECK(r.state == name(all_states()[i]));
    }
  }
}

TEST_CASE("RFC 6121 Tables 2-5: outbound subscription stanzas") {
  for (std::size_t i = 0; i < 36; ++i) check_row(kRfcRows[i]);
}

TEST_CASE("RFC 6121 Tables 6-9: inbound subscription stanzas") {
  for (std::size_t i = 36; i < 72; ++i) check_row(kRfcRows[i]);
}

TEST_CASE("RFC 6121 Appendix A with a pre-approval in place") {
  for (const Row& r : kPreapprovedRows) check_row(r);
}

TEST_CASE("§3.4 pre-approval flows") {
  SUBCASE("pre-approve an unknown contact, then its request is answered by the server") {
    const State none{};
    const Outcome pre = outbound(none, Type::subscribed);
    CHECK_FALSE(pre.forward);  // §3.4.2 rule 4: MUST NOT route
    CHECK(pre.changed);
    CHECK(pre.next.preapproved);
    CHECK(pre.next.sub == Sub::none);
    CHECK_FALSE(pre.auto_reply);
    // The roster item gains approved='true' only: no sub/ask change, but a push is due.
    CHECK_FALSE(visible_change(none, pre.next));
    CHECK(push_needed(none, pre.next));

    const Outcome req = inbound(pre.next, Type::subscribe);
    CHECK_FALSE(req.forward);  // MUST NOT deliver
    REQUIRE(req.auto_reply.has_value());
    CHECK(*req.auto_reply == Type::subscribed);
    CHECK(req.next == State{Sub::from, false, false, false});
    CHECK(req.changed);
    CHECK(visible_change(pre.next, req.next));

    // The contact repeats its request (lost 'subscribed'): confirmed again, not delivered.
    const Outcome again = inbound(req.next, Type::subscribe);
    CHECK_FALSE(again.forward);
    CHECK_FALSE(again.changed);
    CHECK(again.auto_reply == std::optional<Type>(Type::subscribed));
  }
  SUBCASE("pre-approval while our own request is pending, ending in a mutual subscription") {
    State s = outbound(State{}, Type::subscribe).next;
    CHECK(name(s) == "None + Pending Out");
    s = outbound(s, Type::subscribed).next;
    CHECK(name(s) == "None + Pending Out [pre-approved]");
    const Outcome req = inbound(s, Type::subscribe);
    CHECK(name(req.next) == "From + Pending Out");
    CHECK(req.auto_reply == std::optional<Type>(Type::subscribed));
    CHECK_FALSE(req.forward);
    const Outcome ok = inbound(req.next, Type::subscribed);
    CHECK(ok.forward);
    CHECK(name(ok.next) == "Both");
  }
  SUBCASE("pre-approval while already subscribed to the contact") {
    State s = must_state("To");
    const Outcome pre = outbound(s, Type::subscribed);
    CHECK_FALSE(pre.forward);
    CHECK(name(pre.next) == "To [pre-approved]");
    const Outcome req = inbound(pre.next, Type::subscribe);
    CHECK(name(req.next) == "Both");
    CHECK(req.auto_reply == std::optional<Type>(Type::subscribed));
    CHECK_FALSE(req.forward);
  }
  SUBCASE("cancelling a pre-approval with 'unsubscribed'") {
    const State pre = outbound(State{}, Type::subscribed).next;
    const Outcome cancel = outbound(pre, Type::unsubscribed);
    CHECK_FALSE(cancel.forward);  // §3.2.2 rule 2: MUST NOT route
    CHECK(cancel.changed);
    CHECK(cancel.next == State{});
    CHECK_FALSE(visible_change(pre, cancel.next));
    CHECK(push_needed(pre, cancel.next));  // approved attribute removed
    // Afterwards a request is delivered to the user as usual.
    const Outcome req = inbound(cancel.next, Type::subscribe);
    CHECK(req.forward);
    CHECK_FALSE(req.auto_reply);
    CHECK(name(req.next) == "None + Pending In");
  }
  SUBCASE("'unsubscribed' without a pre-approval changes nothing and is not routed") {
    for (std::string_view n : {"None", "None + Pending Out", "To"}) {
      INFO(std::string(n));
      const Outcome o = outbound(must_state(n), Type::unsubscribed);
      CHECK_FALSE(o.changed);
      CHECK_FALSE(o.forward);
      CHECK_FALSE(push_needed(must_state(n), o.next));
    }
  }
  SUBCASE("pre-approving twice is a no-op") {
    const State pre = outbound(State{}, Type::subscribed).next;
    const Outcome twice = outbound(pre, Type::subscribed);
    CHECK_FALSE(twice.changed);
    CHECK_FALSE(twice.forward);
    CHECK(twice.next == pre);
  }
  SUBCASE("§3.4.2 rule 1: 'subscribed' to From / From + Pending Out / Both is ignored") {
    for (std::string_view n : {"From", "From + Pending Out", "Both"}) {
      INFO(std::string(n));
      const Outcome o = outbound(must_state(n), Type::subscribed);
      CHECK_FALSE(o.forward);
      CHECK_FALSE(o.changed);
      CHECK_FALSE(o.next.preapproved);
    }
  }
  SUBCASE("§3.4.2 rule 2: 'subscribed' with a pending request is a normal approval") {
    const std::array<std::pair<std::string_view, std::string_view>, 3> cases{{
        {"To + Pending In", "Both"}, {"None + Pending In", "From"}, {"None + Pending Out+In", "From + Pending Out"}}};
    for (const auto& c : cases) {
      // Not a structured binding: INFO captures it in a lambda, which clang < 16 rejects.
      const std::string_view from = c.first;
      INFO(std::string(from));
      const Outcome o = outbound(must_state(from), Type::subscribed);
      CHECK(o.forward);
      CHECK(name(o.next) == c.second);
      CHECK_FALSE(o.next.preapproved);
      CHECK(visible_change(must_state(from), o.next));
    }
  }
  SUBCASE("a pre-approval survives changes to the user's own subscription") {
    State s = outbound(State{}, Type::subscribed).next;             // None [pre]
    s = outbound(s, Type::subscribe).next;                          // None + Pending Out [pre]
    s = inbound(s, Type::subscribed).next;                          // To [pre]
    CHECK(name(s) == "To [pre-approved]");
    s = inbound(s, Type::unsubscribed).next;                        // None [pre]
    CHECK(name(s) == "None [pre-approved]");
    CHECK(inbound(s, Type::subscribe).auto_reply == std::optional<Type>(Type::subscribed));
  }
}

TEST_CASE("every transition yields a valid state and reports changes honestly") {
  std::array<State, 12> starts{};
  std::size_t n = 0;
  for (const State& s : all_states()) starts[n++] = s;
  for (std::string_view p : {"None [pre-approved]", "None + Pending Out [pre-approved]", "To [pre-approved]"}) {
    starts[n++] = must_state(p);
  }
  for (const State& s : starts) {
    for (Type t : kTypes) {
      for (Dir d : {Dir::out, Dir::in}) {
        INFO(name(s), " ", std::string(herald::roster::to_string(t)), (d == Dir::out ? " out" : " in"));
        const Outcome o = run(d, s, t);
        CHECK(is_valid(o.next));
        CHECK(o.changed == (o.next != s));
        if (d == Dir::out) CHECK_FALSE(o.auto_reply);  // auto-replies answer the contact
        // Entering From/Both consumes the pre-approval.
        if (o.next.sub == Sub::from || o.next.sub == Sub::both) CHECK_FALSE(o.next.preapproved);
      }
    }
  }
}

TEST_CASE("invalid states are normalized before processing") {
  const State to_ask{Sub::to, true, false, false};
  CHECK_FALSE(is_valid(to_ask));
  CHECK(name(to_ask).rfind("invalid{", 0) == 0);
  CHECK_FALSE(state_from_name(name(to_ask)));
  CHECK(normalized(to_ask) == State{Sub::to, false, false, false});
  // No table change for To + subscribe, but the repair itself must be persisted.
  const Outcome o = outbound(to_ask, Type::subscribe);
  CHECK(o.forward);
  CHECK(o.changed);
  CHECK(o.next == State{Sub::to, false, false, false});

  CHECK(normalized(State{Sub::both, true, true, true}) == State{Sub::both, false, false, false});
  CHECK(normalized(State{Sub::from, true, true, true}) == State{Sub::from, true, false, false});
  // A pre-approval next to a pending request is dropped: the user gets asked.
  CHECK(normalized(State{Sub::none, false, true, true}) == State{Sub::none, false, true, false});
  const Outcome req = inbound(State{Sub::none, false, true, true}, Type::subscribe);
  CHECK_FALSE(req.auto_reply);
  CHECK(req.next == State{Sub::none, false, true, false});

  for (const State& s : all_states()) {
    CHECK(is_valid(s));
    CHECK(normalized(s) == s);
  }
}

TEST_CASE("visible_change tracks the roster item's subscription and ask attributes") {
  const State none{};
  CHECK_FALSE(visible_change(none, none));
  CHECK(visible_change(none, State{Sub::none, true, false, false}));   // ask='subscribe' appears
  CHECK(visible_change(none, State{Sub::to, false, false, false}));    // subscription changes
  CHECK(visible_change(State{Sub::from, true, false, false}, State{Sub::both, false, false, false}));
  // A pending inbound request is not part of the roster item (Appendix A.1 state 3).
  CHECK_FALSE(visible_change(none, State{Sub::none, false, true, false}));
  CHECK_FALSE(visible_change(none, State{Sub::none, false, false, true}));
  CHECK(push_needed(none, State{Sub::none, false, false, true}));
  CHECK_FALSE(push_needed(none, State{Sub::none, false, true, false}));
  CHECK(push_needed(none, State{Sub::both, false, false, false}));

  // §3.1.2: the outbound request is followed by a push with ask='subscribe'.
  CHECK(visible_change(none, outbound(none, Type::subscribe).next));
  // §3.1.3 security warning: an inbound request adds nothing to the roster.
  CHECK_FALSE(visible_change(none, inbound(none, Type::subscribe).next));
  // §3.2.3: cancellation by the contact pushes subscription='none' / 'from'.
  CHECK(visible_change(must_state("To"), inbound(must_state("To"), Type::unsubscribed).next));
  CHECK(visible_change(must_state("Both"), inbound(must_state("Both"), Type::unsubscribed).next));
}

TEST_CASE("string round trips") {
  for (Sub s : {Sub::none, Sub::to, Sub::from, Sub::both}) {
    CHECK(sub_from_string(herald::roster::to_string(s)) == s);
  }
  CHECK(herald::roster::to_string(Sub::none) == "none");
  CHECK(herald::roster::to_string(Sub::to) == "to");
  CHECK(herald::roster::to_string(Sub::from) == "from");
  CHECK(herald::roster::to_string(Sub::both) == "both");
  for (std::string_view bad : {"", "remove", "None", "BOTH", " to", "to ", "fro"}) {
    CHECK_FALSE(sub_from_string(bad));
  }

  for (Type t : kTypes) CHECK(type_from_string(herald::roster::to_string(t)) == t);
  CHECK(herald::roster::to_string(Type::subscribe) == "subscribe");
  CHECK(herald::roster::to_string(Type::subscribed) == "subscribed");
  CHECK(herald::roster::to_string(Type::unsubscribe) == "unsubscribe");
  CHECK(herald::roster::to_string(Type::unsubscribed) == "unsubscribed");
  for (std::string_view bad : {"", "available", "unavailable", "probe", "error", "Subscribe", "subscribe "}) {
    CHECK_FALSE(type_from_string(bad));
  }

  const std::array<std::string_view, 9> names{"None", "None + Pending Out", "None + Pending In",
                                              "None + Pending Out+In", "To", "To + Pending In",
                                              "From", "From + Pending Out", "Both"};
  const std::array<State, 9> states{{{Sub::none, false, false, false}, {Sub::none, true, false, false},
                                     {Sub::none, false, true, false}, {Sub::none, true, true, false},
                                     {Sub::to, false, false, false}, {Sub::to, false, true, false},
                                     {Sub::from, false, false, false}, {Sub::from, true, false, false},
                                     {Sub::both, false, false, false}}};
  for (std::size_t i = 0; i < 9; ++i) {
    INFO(std::string(names[i]));
    CHECK(all_states()[i] == states[i]);
    CHECK(name(states[i]) == names[i]);
    CHECK(state_from_name(names[i]) == states[i]);
  }
  for (std::string_view n : {"None [pre-approved]", "None + Pending Out [pre-approved]", "To [pre-approved]"}) {
    const auto s = state_from_name(n);
    REQUIRE(s.has_value());
    CHECK(s->preapproved);
    CHECK(name(*s) == n);
  }
  // A pre-approval cannot coexist with a contact subscription or pending request.
  for (std::string_view bad : {"From [pre-approved]", "Both [pre-approved]", "None + Pending In [pre-approved]",
                               "To + Pending In [pre-approved]", " [pre-approved]", "[pre-approved]", "",
                               "none", "None+Pending Out", "To + Pending Out", "None + Pending In+Out"}) {
    CHECK_FALSE(state_from_name(bad));
  }
}
