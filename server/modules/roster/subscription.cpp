#include "server/modules/roster/subscription.hpp"

#include <cstddef>
#include <cstdint>

namespace herald::roster {
namespace {

// Indices into all_states(), in Appendix A.1 order, so the tables below read exactly like
// Tables 2-9 of the RFC.
enum Idx : std::uint8_t { kNone, kNonePO, kNonePI, kNonePOPI, kTo, kToPI, kFrom, kFromPO, kBoth };

constexpr std::array<State, 9> kStates{{
    {Sub::none, false, false, false},
    {Sub::none, true, false, false},
    {Sub::none, false, true, false},
    {Sub::none, true, true, false},
    {Sub::to, false, false, false},
    {Sub::to, false, true, false},
    {Sub::from, false, false, false},
    {Sub::from, true, false, false},
    {Sub::both, false, false, false},
}};

constexpr std::array<std::string_view, 9> kNames{
    "None", "None + Pending Out", "None + Pending In", "None + Pending Out+In", "To",
    "To + Pending In", "From", "From + Pending Out", "Both",
};

constexpr std::string_view kPreSuffix = " [pre-approved]";

// One table row: whether the stanza is routed (outbound) / delivered (inbound) -- MUST is
// true, "M.N." and "S.N." are false -- and the new state, or kSame for "no state change".
// The pre-approval rows of Table 4 are kSame here; the footnote logic below sets the flag.
constexpr std::int8_t kSame = -1;
struct Row {
  bool route;
  std::int8_t next;
};
using Table = std::array<Row, 9>;

// Indexed by Type, then by state index.
constexpr std::array<Table, 4> kOutbound{{
    // Table 2: outbound "subscribe"
    {{{true, kNonePO}, {true, kSame}, {true, kNonePOPI}, {true, kSame}, {true, kSame},
      {true, kSame}, {true, kFromPO}, {true, kSame}, {true, kSame}}},
    // Table 4: outbound "subscribed"
    {{{false, kSame}, {false, kSame}, {true, kFrom}, {true, kFromPO}, {false, kSame},
      {true, kBoth}, {false, kSame}, {false, kSame}, {false, kSame}}},
    // Table 3: outbound "unsubscribe"
    {{{true, kSame}, {true, kNone}, {true, kSame}, {true, kNonePI}, {true, kNone},
      {true, kNonePI}, {true, kSame}, {true, kFrom}, {true, kFrom}}},
    // Table 5: outbound "unsubscribed"
    {{{false, kSame}, {false, kSame}, {true, kNone}, {true, kNonePO}, {false, kSame},
      {true, kTo}, {true, kNone}, {true, kNonePO}, {true, kTo}}},
}};

constexpr std::array<Table, 4> kInbound{{
    // Table 6: inbound "subscribe"
    {{{true, kNonePI}, {true, kNonePOPI}, {false, kSame}, {false, kSame}, {true, kToPI},
      {false, kSame}, {false, kSame}, {false, kSame}, {false, kSame}}},
    // Table 8: inbound "subscribed"
    {{{false, kSame}, {true, kTo}, {false, kSame}, {true, kToPI}, {false, kSame},
      {false, kSame}, {false, kSame}, {true, kBoth}, {false, kSame}}},
    // Table 7: inbound "unsubscribe"
    {{{false, kSame}, {false, kSame}, {true, kNone}, {true, kNonePO}, {false, kSame},
      {true, kTo}, {true, kNone}, {true, kNonePO}, {true, kTo}}},
    // Table 9: inbound "unsubscribed"
    {{{false, kSame}, {true, kNone}, {false, kSame}, {true, kNonePI}, {true, kNone},
      {true, kNonePI}, {false, kSame}, {true, kFrom}, {true, kFrom}}},
}};

bool has_to(Sub s) { return s == Sub::to || s == Sub::both; }
bool has_from(Sub s) { return s == Sub::from || s == Sub::both; }

// Position of a (valid) state among the nine, ignoring the pre-approval flag.
std::size_t index_of(const State& s) {
  for (std::size_t i = 0; i < kStates.size(); ++i) {
    const State& k = kStates[i];
    if (k.sub == s.sub && k.pending_out == s.pending_out && k.pending_in == s.pending_in) return i;
  }
  return kNone;  // unreachable for normalized states
}

// §3.4.2 rule 3: a pre-approval can only be noted where the contact has neither a
// subscription nor a pending request.
bool can_preapprove(std::size_t i) { return i == kNone || i == kNonePO || i == kTo; }

State apply_row(const State& cur, const Row& r) {
  if (r.next == kSame) return cur;
  State next = kStates[static_cast<std::size_t>(r.next)];
  // The tables only speak of the primary states and pending flags; a pre-approval is
  // orthogonal to them and survives unless the footnotes below say otherwise.
  next.preapproved = cur.preapproved;
  return next;
}

// Once the contact holds a subscription the pre-approval has been used up (or was never
// needed); §3.4.2 leaves keeping it to policy and we drop it so 'approved' stays
// meaningful only where it can still trigger an auto-reply.
State finish(State s) {
  if (has_from(s.sub)) s.preapproved = false;
  return s;
}

std::size_t type_index(Type t) { return static_cast<std::size_t>(t); }

}  // namespace

std::string_view to_string(Sub s) {
  switch (s) {
    case Sub::none: return "none";
    case Sub::to: return "to";
    case Sub::from: return "from";
    case Sub::both: return "both";
  }
  return "none";
}

std::optional<Sub> sub_from_string(std::string_view v) {
  if (v == "none") return Sub::none;
  if (v == "to") return Sub::to;
  if (v == "from") return Sub::from;
  if (v == "both") return Sub::both;
  return std::nullopt;
}

std::string_view to_string(Type t) {
  switch (t) {
    case Type::subscribe: return "subscribe";
    case Type::subscribed: return "subscribed";
    case Type::unsubscribe: return "unsubscribe";
    case Type::unsubscribed: return "unsubscribed";
  }
  return "subscribe";
}

std::optional<Type> type_from_string(std::string_view v) {
  if (v == "subscribe") return Type::subscribe;
  if (v == "subscribed") return Type::subscribed;
  if (v == "unsubscribe") return Type::unsubscribe;
  if (v == "unsubscribed") return Type::unsubscribed;
  return std::nullopt;
}

const std::array<State, 9>& all_states() { return kStates; }

bool is_valid(const State& s) {
  if (has_to(s.sub) && s.pending_out) return false;
  if (has_from(s.sub) && (s.pending_in || s.preapproved)) return false;
  if (s.pending_in && s.preapproved) return false;
  return true;
}

State normalized(const State& s) {
  State n = s;
  if (has_to(n.sub)) n.pending_out = false;
  if (has_from(n.sub)) n.pending_in = n.preapproved = false;
  if (n.pending_in) n.preapproved = false;
  return n;
}

std::string name(const State& s) {
  if (!is_valid(s)) {
    std::string out = "invalid{sub=";
    out += to_string(s.sub);
    out += s.pending_out ? " out" : "";
    out += s.pending_in ? " in" : "";
    out += s.preapproved ? " pre" : "";
    out += '}';
    return out;
  }
  std::string out(kNames[index_of(s)]);
  if (s.preapproved) out += kPreSuffix;
  return out;
}

std::optional<State> state_from_name(std::string_view v) {
  bool pre = false;
  if (v.size() > kPreSuffix.size() && v.substr(v.size() - kPreSuffix.size()) == kPreSuffix) {
    pre = true;
    v.remove_suffix(kPreSuffix.size());
  }
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] != v) continue;
    if (pre && !can_preapprove(i)) return std::nullopt;
    State s = kStates[i];
    s.preapproved = pre;
    return s;
  }
  return std::nullopt;
}

Outcome outbound(const State& current, Type type) {
  const State cur = normalized(current);
  const std::size_t i = index_of(cur);
  const Row row = kOutbound[type_index(type)][i];
  State next = apply_row(cur, row);
  if (type == Type::subscribed && can_preapprove(i)) {
    // Table 4 note [1], §3.4.2 rule 3: note the pre-approval, do not route.
    next.preapproved = true;
  } else if (type == Type::unsubscribed) {
    // Table 5 note [1], §3.2.2 rule 2 and §3.4.2: 'unsubscribed' cancels any pre-approval
    // (and in the other rows it denies or revokes, which leaves nothing to pre-approve).
    next.preapproved = false;
  }
  next = finish(next);
  return Outcome{next, next != current, row.route, std::nullopt};
}

Outcome inbound(const State& current, Type type) {
  const State cur = normalized(current);
  const std::size_t i = index_of(cur);
  const Row row = kInbound[type_index(type)][i];
  Outcome out{apply_row(cur, row), false, row.route, std::nullopt};
  switch (type) {
    case Type::subscribe:
      if (cur.preapproved && can_preapprove(i)) {
        // Table 6 note [1] and §3.4.2: with 'approved' set the server MUST NOT deliver the
        // request and MUST answer it itself, granting the contact a subscription. Note [1]
        // only annotates "None"; §3.4.2 rule 3 puts "None + Pending Out" and "To" under the
        // same MUST, so they gain 'from' the same way.
        State granted = cur;
        granted.sub = cur.sub == Sub::to ? Sub::both : Sub::from;
        out.next = granted;
        out.forward = false;
        out.auto_reply = Type::subscribed;
      } else if (has_from(cur.sub)) {
        // Table 6 note [2], §3.1.3 rule 2: the contact already has a subscription (its
        // 'subscribed' was probably lost), so confirm it again rather than asking the user.
        out.auto_reply = Type::subscribed;
      }
      break;
    case Type::unsubscribe:
      // Table 7 note [1]: every delivered row is a state change and is acknowledged.
      if (row.route) out.auto_reply = Type::unsubscribed;
      break;
    case Type::subscribed:
    case Type::unsubscribed:
      break;
  }
  out.next = finish(out.next);
  out.changed = out.next != current;
  return out;
}

bool visible_change(const State& before, const State& after) {
  return before.sub != after.sub || before.pending_out != after.pending_out;
}

bool push_needed(const State& before, const State& after) {
  return visible_change(before, after) || before.preapproved != after.preapproved;
}

}  // namespace herald::roster
