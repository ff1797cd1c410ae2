// Presence subscription state machine (RFC 6121 Appendix A, §3.1-3.4). Pure logic: the
// caller loads the state of one (user, contact) pair, asks what a subscription stanza
// does to it, then persists, roster-pushes, routes/delivers and auto-replies as told.
// Kept free of I/O so every row of the RFC tables can be checked in isolation.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace herald::roster {

enum class Sub { none, to, from, both };
// "none", "to", "from", "both": the roster item's 'subscription' attribute.
std::string_view to_string(Sub);
// Exact (case-sensitive, as XML attribute values are) match. "remove" is a roster-set
// request, not a state, so it yields nullopt.
std::optional<Sub> sub_from_string(std::string_view);

// Subscription state of the user toward one contact (RFC 6121 Appendix A.1): the four
// primary states plus pending-out (roster ask='subscribe'), pending-in (an inbound request
// awaiting the user's answer), and a pre-approval (§3.4: the user sent 'subscribed'
// before any request; roster approved='true').
struct State {
  Sub sub = Sub::none;
  bool pending_out = false;
  bool pending_in = false;
  bool preapproved = false;
  friend bool operator==(const State&, const State&) = default;
};

// The nine named states of Appendix A.1 ("None", "None + Pending Out", "None + Pending In",
// "None + Pending Out+In", "To", "To + Pending In", "From", "From + Pending Out", "Both"),
// for tests and logs. A pre-approval is shown as the suffix " [pre-approved]"; it only
// exists in "None", "None + Pending Out" and "To" (§3.4.2 rule 3). Invalid combinations
// (e.g. To + pending_out) are not among them and render as "invalid{...}", which
// state_from_name rejects.
std::string name(const State&);
std::optional<State> state_from_name(std::string_view);
// The nine states in Appendix A.1 order, none of them pre-approved.
const std::array<State, 9>& all_states();

// False for combinations no RFC transition produces: ask='subscribe' while already
// subscribed to the contact, a pending inbound request from a contact that is already
// subscribed, or a pre-approval next to 'from'/'both' or a pending inbound request.
bool is_valid(const State&);
// Repairs an invalid state (e.g. one loaded from damaged storage) by dropping the flags
// that the subscription attribute contradicts. A pre-approval next to a pending request
// is dropped too, so inconsistent data never silently grants presence access.
State normalized(const State&);

enum class Type { subscribe, subscribed, unsubscribe, unsubscribed };
// Only the four subscription types; "available", "probe", "error" etc. yield nullopt.
std::optional<Type> type_from_string(std::string_view);
std::string_view to_string(Type);

struct Outcome {
  State next;                      // == the old state when nothing changes
  bool changed = false;            // state (incl. preapproved) changed: persist and roster-push if the sub/ask changed
  bool forward = false;            // outbound: route the stanza to the contact; inbound: deliver to the user
  std::optional<Type> auto_reply;  // a stanza the user's server sends to the contact on the user's behalf
};

// Appendix A.2 (user -> contact). An invalid `current` is normalized first; `changed`
// then also reports the repair so it gets persisted.
Outcome outbound(const State& current, Type type);
// Appendix A.3 (contact -> user), same conventions.
Outcome inbound(const State& current, Type type);

// Whether the roster item the client sees changed (subscription attribute or ask flag):
// roster push needed.
bool visible_change(const State& before, const State& after);
// visible_change, or the pre-approval flag changed: §3.4.2 requires a roster push with
// approved='true' when a pre-approval is noted, and one without it when it is cancelled.
// Use this instead of visible_change if the server advertises pre-approval support.
bool push_needed(const State& before, const State& after);

}  // namespace herald::roster
