"""Privacy lists (XEP-0016): managing lists (names, get, set, remove, active, default,
pushes, errors and the conflict rules of 2.2) and enforcing them (2.1, 2.13, 2.14) for
every item type (jid in its four forms, group, subscription, fall-through) and stanza kind
(message, iq, presence-in, presence-out, and none: everything both ways), with the owner
online (active or default list) and offline (default list).

Naming: the *owner* has the list; the *target* is the party an item matches; the
*control* is a party it does not match, whose stanzas must pass. Every test uses fresh
accounts (flows.new_user)."""
import asyncio
import time

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_LAST, NS_PRIVACY, assert_error, assert_result, bare,
                   befriend, blocked_error, collect, deny_jid, disco_features, error_for, is_iq, is_message,
                   is_pres, new_user, new_users, online, presence, privacy_active,
                   privacy_default, privacy_get, privacy_iq, privacy_item, privacy_items,
                   privacy_names, privacy_set_list, quiet, roster, roster_set, send_iq, take,
                   take_privacy_push, use_list, wait_pres, wait_push)
from rawclient import q

WINDOW = 0.4   # how long "nothing arrives" is watched
IQ_ERROR = ("<error type='cancel'><service-unavailable "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")


def unavailable_error(el):
    return rc.stanza_error(el) == ("cancel", "service-unavailable")


def assert_bounced(sender, id, addressee, condition="service-unavailable"):
    """The sender got an error with that condition for stanza `id`, from the addressee
    (its full or bare JID)."""
    el = error_for(sender, id)
    err = rc.stanza_error(el)
    assert err is not None and err[1] == condition, f"expected <{condition}/>: {rc.show(el)}"
    if condition == "service-unavailable":
        assert err[0] == "cancel", rc.show(el)
    assert el.get("from") in (addressee, bare(addressee)), f"error from {el.get('from')}: {rc.show(el)}"
    return el


def no_errors(c, duration=0.1, what="an error for a stanza that must be dropped silently"):
    got = [e for e in collect(c, duration) if e.get("type") == "error"]
    assert not got, f"{c.jid} received {what}: " + " ".join(rc.show(e) for e in got)


def message_from(c, body, timeout=None):
    return take(c, lambda e: is_message(e, body), timeout, what=f"the message {body!r}")


def close_all(*sessions):
    for s in sessions:
        s.close()


# ---------------------------------------------------------------- discovery

def test_disco_lists_access_rule_features(server):
    (user,) = new_users(server, "dsc")
    c = online(server, user)
    try:
        features = disco_features(c)
        for ns in (NS_PRIVACY, "urn:xmpp:blocking", "urn:xmpp:invisible:1", "urn:xmpp:invisible:0"):
            assert ns in features, f"{ns} missing from {sorted(features)}"
    finally:
        c.close()


# ---------------------------------------------------------------- managing lists

def test_no_lists_at_first(server):
    (user,) = new_users(server, "nol")
    c = online(server, user)
    try:
        active, default, names = privacy_names(c)
        assert (active, default, names) == (None, None, []), (active, default, names)
    finally:
        c.close()


def test_set_get_and_replace_list(server):
    """A list comes back item for item (type, value, action, order, kinds); a second set
    replaces the whole list (XEP-0016 2.6: not a delta)."""
    owner, friend = new_users(server, "sgl", "sglf")
    c = online(server, owner)
    try:
        assert_result(roster_set(c, friend, groups=["Friends"]))
        wait_push(c, friend)
        items = [
            privacy_item("deny", 1, "jid", "tybalt@example.test", ["message"]),
            privacy_item("allow", 2, "group", "Friends", ["presence-in", "presence-out"]),
            privacy_item("deny", 3, "subscription", "both", ["iq"]),
            privacy_item("deny", 4, "jid", "example.test/res", ["message", "iq", "presence-in", "presence-out"]),
            privacy_item("allow", 10),
        ]
        assert_result(privacy_set_list(c, "public", items))
        take_privacy_push(c, "public")
        got = sorted(privacy_items(c, "public"), key=lambda i: int(i["order"]))
        assert got == [
            {"type": "jid", "value": "tybalt@example.test", "action": "deny", "order": "1", "kinds": ["message"]},
            {"type": "group", "value": "Friends", "action": "allow", "order": "2",
             "kinds": ["presence-in", "presence-out"]},
            {"type": "subscription", "value": "both", "action": "deny", "order": "3", "kinds": ["iq"]},
            {"type": "jid", "value": "example.test/res", "action": "deny", "order": "4",
             "kinds": ["iq", "message", "presence-in", "presence-out"]},
            {"type": None, "value": None, "action": "allow", "order": "10", "kinds": []},
        ], got

        assert_result(privacy_set_list(c, "public", [deny_jid("paris@example.test", 7)]))
        take_privacy_push(c, "public")
        assert privacy_items(c, "public") == [
            {"type": "jid", "value": "paris@example.test", "action": "deny", "order": "7", "kinds": []}]
        assert privacy_names(c)[2] == ["public"]
    finally:
        c.close()


def test_push_goes_to_every_bound_resource(server):
    """XEP-0016 2.6: a privacy list push to every connected resource, the sender included,
    also one that is neither available nor interested (only bound)."""
    (owner,) = new_users(server, "psh")
    sender = online(server, owner, "sender")
    avail = online(server, owner, "avail")
    bound = online(server, owner, "bound", roster=False, presence=False)
    try:
        answer = privacy_set_list(sender, "pushed", [deny_jid("x@example.test")])
        assert_result(answer)
        for s in (sender, avail, bound):
            take_privacy_push(s, "pushed")
        # a second edit: another push
        assert_result(privacy_set_list(avail, "pushed", [deny_jid("y@example.test")]))
        for s in (sender, avail, bound):
            take_privacy_push(s, "pushed")
        for s in (sender, avail, bound):
            quiet(s, 0.2, ignore=lambda e: not (e.tag == q(rc.NS_CLIENT, "iq")),
                  what="a second push for one edit")
    finally:
        close_all(sender, avail, bound)


def test_names_show_this_sessions_active_list_and_the_default(server):
    (owner,) = new_users(server, "nam")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        use_list(o1, "a", [deny_jid("a@example.test")], others=[o2], active=False)
        use_list(o1, "b", [deny_jid("b@example.test")], others=[o2], active=False)
        assert_result(privacy_default(o1, "a"))
        assert_result(privacy_active(o1, "b"))
        active, default, names = privacy_names(o1)
        assert (active, default, sorted(names)) == ("b", "a", ["a", "b"])
        active, default, names = privacy_names(o2)
        assert (active, default, sorted(names)) == (None, "a", ["a", "b"]), (
            "another session's active list is not this session's")
        # declining the active list
        assert_result(privacy_active(o1))
        assert privacy_names(o1)[0] is None
    finally:
        close_all(o1, o2)


def test_remove_list_and_unknown_names(server):
    (owner,) = new_users(server, "rem")
    c = online(server, owner)
    try:
        use_list(c, "gone", [deny_jid("g@example.test")], active=False)
        assert_result(privacy_set_list(c, "gone", []))
        assert_error(privacy_get(c, "gone"), "item-not-found", "get of a removed list")
        assert privacy_names(c)[2] == []
        assert_error(privacy_set_list(c, "gone", []), "item-not-found", "removing an absent list")
        assert_error(privacy_get(c, "never"), "item-not-found", "get of an unknown list")
        assert_error(privacy_active(c, "never"), "item-not-found", "activating an unknown list")
        assert_error(privacy_default(c, "never"), "item-not-found", "default of an unknown list")
        assert privacy_names(c) == (None, None, [])
    finally:
        c.close()


def test_get_two_lists_is_bad_request(server):
    (owner,) = new_users(server, "two")
    c = online(server, owner)
    try:
        use_list(c, "one", [deny_jid("a@example.test")], active=False)
        use_list(c, "other", [deny_jid("b@example.test")], active=False)
        assert_error(privacy_get(c, "one", "other"), "bad-request", "get of two lists")
    finally:
        c.close()


@pytest.mark.parametrize("inner", [
    "<active name='x'/><default name='x'/>",
    "<list name='x'><item action='deny' order='1'/></list><list name='y'><item action='deny' order='1'/></list>",
    "<list name='x'><item action='deny' order='1'/></list><active name='x'/>",
], ids=["active+default", "two-lists", "list+active"])
def test_set_with_more_than_one_child_is_bad_request(server, inner):
    (owner,) = new_users(server, "mc")
    c = online(server, owner)
    try:
        use_list(c, "x", [deny_jid("a@example.test")], active=False)
        assert_error(privacy_iq(c, "set", inner), "bad-request", "a set with two children")
        assert privacy_names(c) == (None, None, ["x"]), "nothing may change"
        assert privacy_items(c, "x")[0]["value"] == "a@example.test"
    finally:
        c.close()


@pytest.mark.parametrize("items", [
    [privacy_item("deny", 1, "jid", "a@example.test"), privacy_item("allow", 1)],
    [privacy_item("maybe", 1, "jid", "a@example.test")],
    [privacy_item("deny", 1, "colour", "blue")],
], ids=["duplicate-order", "bad-action", "bad-type"])
def test_invalid_list_is_bad_request(server, items):
    """XEP-0016 2.1: orders unique, action allow|deny, type jid|group|subscription; an
    invalid list is rejected whole (nothing stored, no push)."""
    (owner,) = new_users(server, "inv")
    c = online(server, owner)
    try:
        assert_error(privacy_set_list(c, "bad", items), "bad-request", "an invalid list")
        assert_error(privacy_get(c, "bad"), "item-not-found", "get of a rejected list")
        quiet(c, 0.2, ignore=lambda e: e.tag != q(rc.NS_CLIENT, "iq"), what="a push for a rejected list")
    finally:
        c.close()


# ---------------------------------------------------------------- conflict rules (2.2 rule 11)

def test_removing_a_list_active_in_another_session_is_conflict(server):
    owner, target = new_users(server, "cfa", "cfat")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    t = online(server, target)
    try:
        use_list(o1, "mine", [deny_jid(target, kinds=["message"])], others=[o2])
        assert_error(privacy_set_list(o2, "mine", []), "conflict", "removing another session's active list")
        assert privacy_items(o2, "mine")[0]["value"] == target, "the list must still exist"
        mid = t.message(o1.jid, "still denied")
        assert_bounced(t, mid, o1.jid)
        # once o1 declines it, the list may go
        assert_result(privacy_active(o1))
        assert_result(privacy_set_list(o2, "mine", []))
    finally:
        close_all(o1, o2, t)


def test_removing_the_default_that_applies_to_another_session_is_conflict(server):
    (owner,) = new_users(server, "cfd")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        use_list(o1, "dflt", [deny_jid("a@example.test")], others=[o2], active=False, default=True)
        use_list(o1, "other", [deny_jid("b@example.test")], others=[o2], active=False)
        assert_error(privacy_set_list(o1, "dflt", []), "conflict",
                     "removing the default list while it applies to another session")
        assert privacy_names(o1)[1] == "dflt"
        # with an active list of its own, o2 no longer uses the default
        assert_result(privacy_active(o2, "other"))
        assert_result(privacy_set_list(o1, "dflt", []))
        assert privacy_names(o1)[1] is None
    finally:
        close_all(o1, o2)


def test_changing_or_declining_the_default_in_use_elsewhere_is_conflict(server):
    (owner,) = new_users(server, "cfc")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    try:
        use_list(o1, "a", [deny_jid("a@example.test")], others=[o2], active=False)
        use_list(o1, "b", [deny_jid("b@example.test")], others=[o2], active=False)
        # no default yet: setting one is allowed although o2 has no active list
        assert_result(privacy_default(o1, "a"))
        assert_error(privacy_default(o1, "b"), "conflict", "changing the default in use by another session")
        assert_error(privacy_default(o1), "conflict", "declining the default in use by another session")
        assert privacy_names(o1)[1] == "a"
        assert_result(privacy_active(o2, "b"))
        assert_result(privacy_default(o1, "b"))
        assert privacy_names(o2)[1] == "b"
        # o2 uses "b" as its active list, not as the default: declining the default
        # changes nothing for it
        assert_result(privacy_default(o1))
        assert privacy_names(o1)[1] is None
    finally:
        close_all(o1, o2)


def test_a_single_session_may_change_and_decline_the_default(server):
    (owner,) = new_users(server, "cfs")
    c = online(server, owner)
    try:
        use_list(c, "a", [deny_jid("a@example.test")], active=False, default=True)
        use_list(c, "b", [deny_jid("b@example.test")], active=False, default=True)
        assert privacy_names(c)[1] == "b"
        assert_result(privacy_default(c))
        assert privacy_names(c)[1] is None
        # and may remove the default list while only itself uses it
        assert_result(privacy_default(c, "a"))
        assert_result(privacy_set_list(c, "a", []))
        assert privacy_names(c) == (None, None, ["b"])
    finally:
        c.close()


# ---------------------------------------------------------------- enforcement matrix

TYPES = ["jid-full", "jid-bare", "jid-domain", "group", "subscription-none", "fall-through"]
KINDS = ["message", "iq", "presence-in", "presence-out", "all"]


class Scene:
    """The owner's session o with the list active; t the target session (matched by the
    item); x the control session (not matched; for fall-through: the owner's own other
    resource, which no rule may block)."""

    def __init__(self, server, type_, kinds):
        self.type_ = type_
        owner, cj, dj = new_users(server, "own", "tgt", "ctl")
        self.sessions = []
        if type_ == "subscription-none":
            befriend(server, owner, dj)          # the control is 'both', the target a stranger
        self.o = self.add(online(server, owner, "o"))
        others = []
        if type_ == "jid-full":
            self.t = self.add(online(server, cj, "c"))
            self.x = self.add(online(server, cj, "other"))
            attrs = ("jid", self.t.jid)
        elif type_ == "jid-bare":
            self.t = self.add(online(server, cj, "c"))
            self.x = self.add(online(server, dj, "d"))
            attrs = ("jid", cj)
        elif type_ == "jid-domain":
            far = new_user(server, "far", domain="example.test")
            self.t = self.add(online(server, far, "c"))
            self.x = self.add(online(server, dj, "d"))
            attrs = ("jid", "example.test")
        elif type_ == "group":
            self.t = self.add(online(server, cj, "c"))
            self.x = self.add(online(server, dj, "d"))
            for jid, group in ((cj, "Rivals"), (dj, "Friends")):
                assert_result(roster_set(self.o, jid, groups=[group]))
                wait_push(self.o, jid)
            attrs = ("group", "Rivals")
        elif type_ == "subscription-none":
            self.t = self.add(online(server, cj, "c"))
            self.x = self.add(online(server, dj, "d"))
            attrs = ("subscription", "none")
        else:
            self.t = self.add(online(server, cj, "c"))
            self.x = self.add(online(server, owner, "o2"))
            others = [self.x]
            attrs = (None, None)
        use_list(self.o, "rules", [privacy_item("deny", 5, *attrs, kinds=kinds)], others=others)

    def add(self, s):
        self.sessions.append(s)
        return s

    def from_t(self, el):
        """Sent by the target (its full JID; subscription stanzas carry the bare JID)."""
        f = el.get("from")
        return f == self.t.jid or (f == bare(self.t.jid) and self.type_ != "jid-full")

    def from_o(self, el):
        return el.get("from") in (self.o.jid, bare(self.o.jid))

    def close(self):
        close_all(*self.sessions)


def check_message(s):
    o, t, x = s.o, s.t, s.x
    mid = t.message(o.jid, "target to owner")
    x.message(o.jid, "control to owner")
    assert_bounced(t, mid, o.jid)
    message_from(o, "control to owner")
    quiet(o, WINDOW, ignore=lambda e: not s.from_t(e), what="a message denied by <message/>")
    # <message/> is about inbound messages only
    o.message(t.jid, "owner to target")
    message_from(t, "owner to target")


def check_iq(s):
    o, t, x = s.o, s.t, s.x
    rid = send_iq(t, "result", o.jid, payload="")
    eid = send_iq(t, "error", o.jid, payload=IQ_ERROR)
    sid = send_iq(t, "set", o.jid)
    gid = send_iq(t, "get", o.jid)
    xid = send_iq(x, "get", o.jid)
    assert_bounced(t, sid, o.jid)
    assert_bounced(t, gid, o.jid)
    take(o, lambda e: is_iq(e, xid), what="the control's iq")
    quiet(o, WINDOW, ignore=lambda e: not s.from_t(e), what="an iq denied by <iq/>")
    answered = [e for e in collect(t, 0.1) if e.get("id") in (rid, eid)]
    assert not answered, "iq results and errors are dropped silently: " + " ".join(map(rc.show, answered))
    # <iq/> is about inbound IQs only
    oid = send_iq(o, "get", t.jid)
    take(t, lambda e: is_iq(e, oid) and e.get("type") == "get", what="the owner's iq")


def check_presence_in(s):
    o, t, x = s.o, s.t, s.x
    subscribe = s.type_ != "jid-full"    # a subscription request carries the bare JID
    presence(t, to=o.jid, payload="<status>target</status>")
    presence(t, to=o.jid, type_="unavailable")
    if subscribe:
        presence(t, to=bare(o.jid), type_="subscribe")
    presence(x, to=o.jid, payload="<status>control</status>")
    t.message(o.jid, "a message is not presence")
    # the target's stanzas are processed in order: the message comes after its presence
    message_from(o, "a message is not presence")
    wait_pres(o, x.jid, status="control")
    if subscribe:   # <presence-in/> is about notifications, not subscription requests
        take(o, lambda e: is_pres(e, bare(t.jid), "subscribe"), what="the target's subscription request")
    quiet(o, WINDOW, ignore=lambda e: not is_pres(e, t.jid), what="presence denied by <presence-in/>")
    no_errors(t)


def check_presence_out(s):
    o, t, x = s.o, s.t, s.x
    presence(o, to=t.jid, payload="<status>for the target</status>")
    presence(o, to=t.jid, type_="unavailable")
    presence(o, to=x.jid, payload="<status>for the control</status>")
    presence(o, to=bare(t.jid), type_="subscribe")
    wait_pres(x, o.jid, status="for the control")
    # <presence-out/> is about notifications, not subscription requests
    take(t, lambda e: is_pres(e, bare(o.jid), "subscribe"), what="the owner's subscription request")
    quiet(t, WINDOW, ignore=lambda e: not is_pres(e, o.jid), what="presence denied by <presence-out/>")
    for e in collect(o, 0.1):
        if e.get("type") == "error":
            assert is_pres(e) and rc.stanza_error(e)[1] == "not-acceptable", (
                f"only a <not-acceptable/> presence error may come back: {rc.show(e)}")
    # inbound presence is not covered
    presence(t, to=o.jid, payload="<status>target to owner</status>")
    wait_pres(o, t.jid, status="target to owner")


def check_all(s):
    o, t, x = s.o, s.t, s.x
    presence(t, to=o.jid, payload="<status>target</status>")
    if s.type_ != "jid-full":
        presence(t, to=bare(o.jid), type_="subscribe")
    rid = send_iq(t, "result", o.jid, payload="")
    mid = t.message(o.jid, "denied message")
    gid = send_iq(t, "get", o.jid)
    assert_bounced(t, mid, o.jid)
    assert_bounced(t, gid, o.jid)
    x.message(o.jid, "control message")
    message_from(o, "control message")
    quiet(o, WINDOW, ignore=lambda e: not s.from_t(e), what="a stanza denied by an item without kinds")
    got = [e for e in collect(t, 0.1) if e.get("type") == "error"]
    assert not got, "presence and IQ results are dropped silently: " + " ".join(rc.show(e) for e in got)
    assert rid not in [e.get("id") for e in got]
    # outbound: not routed, <not-acceptable/> to the owner (presence: nothing or that)
    presence(o, to=t.jid, payload="<status>to the denied</status>")
    if s.type_ != "jid-full":     # a subscription request goes to the bare JID
        presence(o, to=bare(t.jid), type_="subscribe")
    m2 = o.message(t.jid, "owner to denied")
    g2 = send_iq(o, "get", t.jid)
    errors = [assert_bounced(o, m2, t.jid, "not-acceptable"), assert_bounced(o, g2, t.jid, "not-acceptable")]
    if not s.type_.startswith("jid"):
        # not a blocking-command item: no <blocked xmlns='urn:xmpp:blocking:errors'/>
        for e in errors:
            assert blocked_error(e) is None, rc.show(e)
    o.message(x.jid, "owner to control")
    message_from(x, "owner to control")
    quiet(t, WINDOW, ignore=lambda e: not s.from_o(e), what="a stanza the owner's list denies")
    for e in collect(o, 0.1):
        if is_pres(e, type_="error"):
            assert rc.stanza_error(e)[1] == "not-acceptable", rc.show(e)


CHECKS = {"message": check_message, "iq": check_iq, "presence-in": check_presence_in,
          "presence-out": check_presence_out, "all": check_all}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("type_", TYPES)
def test_item_type_and_kind(server, type_, kind):
    """XEP-0016 2.1/2.13/2.14: a deny item of that type and stanza kind (all: no kind
    children) in the owner's active list. Inbound: message and iq get/set bounce
    <service-unavailable/>, iq result and presence vanish silently; outbound (all kinds
    only): <not-acceptable/> to the owner. The control passes, other kinds pass."""
    s = Scene(server, type_, [] if kind == "all" else [kind])
    try:
        CHECKS[kind](s)
    finally:
        s.close()


# ---------------------------------------------------------------- matching details

def test_subscription_items_match_the_exact_state(server):
    """2.1: 'none' (strangers included), 'to', 'from', 'both' are exact matches."""
    owner, n, t, f, b = new_users(server, "svo", "svn", "svt", "svf", "svb")
    befriend(server, owner, t, mutual=False)     # 'to' in the owner's roster
    befriend(server, f, owner, mutual=False)     # 'from'
    befriend(server, owner, b)                   # 'both'
    o = online(server, owner, "o")
    senders = {"none": online(server, n, "s"), "to": online(server, t, "s"),
               "from": online(server, f, "s"), "both": online(server, b, "s")}
    problems = []
    try:
        assert {j: i["subscription"] for j, i in roster(o).items()} == {t: "to", f: "from", b: "both"}
        for value in ("none", "to", "from", "both"):
            use_list(o, f"sub-{value}", [privacy_item("deny", 1, "subscription", value, ["message"])])
            ids = {state: s.message(o.jid, f"{state} under {value}") for state, s in senders.items()}
            for state, s in senders.items():
                if state == value:
                    try:
                        assert_bounced(s, ids[state], o.jid)
                    except AssertionError as e:
                        problems.append(f"subscription={value}: {state} not denied: {e}")
                else:
                    try:
                        message_from(o, f"{state} under {value}", timeout=2)
                    except AssertionError:
                        problems.append(f"subscription={value}: the message of a '{state}' contact was not delivered")
            leaked = [e for e in collect(o, WINDOW) if is_message(e, f"{value} under {value}")]
            if leaked:
                problems.append(f"subscription={value}: delivered although denied")
        assert not problems, "\n".join(problems)
    finally:
        close_all(o, *senders.values())


def test_jid_forms_match_as_specified(server):
    """2.1 JID matching: user@domain/resource only that resource; user@domain any
    resource (values compared after preparation: the localpart is case-insensitive);
    domain/resource only that resource of the domain itself, not user@domain/resource."""
    owner, c, d = new_users(server, "jm", "jmc", "jmd")
    far = new_user(server, "jmf", domain="example.test")
    o = online(server, owner, "o")
    c_desk = online(server, c, "desk")
    c_laptop = online(server, c, "laptop")
    d_any = online(server, d, "anything")
    far_phone = online(server, far, "phone")
    try:
        use_list(o, "forms", [
            privacy_item("deny", 1, "jid", c_desk.jid, ["message"]),
            privacy_item("deny", 2, "jid", d.upper(), ["message"]),
            privacy_item("deny", 3, "jid", "example.test/phone", ["message"]),
        ])
        denied = [(c_desk, c_desk.message(o.jid, "from desk")), (d_any, d_any.message(o.jid, "from d"))]
        c_laptop.message(o.jid, "from laptop")
        far_phone.message(o.jid, "from far phone")
        for sender, mid in denied:
            assert_bounced(sender, mid, o.jid)
        message_from(o, "from laptop")
        message_from(o, "from far phone")
        quiet(o, WINDOW, ignore=lambda e: not is_message(e), what="a message from a denied JID")
    finally:
        close_all(o, c_desk, c_laptop, d_any, far_phone)


def test_items_are_processed_in_numeric_order_first_match_wins(server):
    """2.2 rules 5-6: ascending 'order' as integers (9 before 10), whatever the document
    order; the first matching item decides."""
    owner, friend, other = new_users(server, "ord", "ordf", "ordo")
    o = online(server, owner, "o")
    fs = online(server, friend, "f")
    os_ = online(server, other, "x")
    try:
        use_list(o, "only-friend", [
            privacy_item("deny", 10, kinds=["message"]),
            privacy_item("allow", 9, "jid", friend, ["message"]),
        ])
        fs.message(o.jid, "friend passes")
        oid = os_.message(o.jid, "other denied")
        message_from(o, "friend passes")
        assert_bounced(os_, oid, o.jid)
        # reversed: the deny comes first now
        use_list(o, "only-friend", [
            privacy_item("deny", 1, kinds=["message"]),
            privacy_item("allow", 2, "jid", friend, ["message"]),
        ])
        fid = fs.message(o.jid, "friend denied now")
        assert_bounced(fs, fid, o.jid)
        quiet(o, WINDOW, ignore=lambda e: not is_message(e), what="a denied message")
    finally:
        close_all(o, fs, os_)


def test_group_change_applies_to_the_list_at_once(server):
    """2.2 rule 9: a roster group change during the session is taken into account."""
    owner, c, rival = new_users(server, "grc", "grcc", "grcr")
    o = online(server, owner, "o")
    cs = online(server, c, "c")
    try:
        # the group must exist (2.1: item-not-found otherwise)
        for jid, group in ((c, "Friends"), (rival, "Rivals")):
            assert_result(roster_set(o, jid, groups=[group]))
            wait_push(o, jid)
        use_list(o, "no-rivals", [privacy_item("deny", 1, "group", "Rivals", ["message"])])
        cs.message(o.jid, "as a friend")
        message_from(o, "as a friend")
        assert_result(roster_set(o, c, groups=["Rivals"]))
        wait_push(o, c)
        mid = cs.message(o.jid, "as a rival")
        assert_bounced(cs, mid, o.jid)
    finally:
        close_all(o, cs)


# ---------------------------------------------------------------- which list applies

def test_active_list_applies_only_to_its_session(server):
    owner, c = new_users(server, "act", "actc")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    cs = online(server, c, "c")
    try:
        use_list(o1, "deny-c", [deny_jid(c, kinds=["message"])], others=[o2])
        mid = cs.message(o1.jid, "to one")
        cs.message(o2.jid, "to two")
        assert_bounced(cs, mid, o1.jid)
        message_from(o2, "to two")
        quiet(o1, WINDOW, ignore=lambda e: not is_message(e), what="a message its active list denies")
    finally:
        close_all(o1, o2, cs)


def test_active_list_replaces_the_default_without_layering(server):
    """2.2 rules 1-2: a session with an active list uses that list only; sessions without
    one (also later ones) use the default; declining the active list falls back to it."""
    owner, c, d = new_users(server, "lay", "layc", "layd")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    cs = online(server, c, "c")
    ds = online(server, d, "d")
    o3 = None
    try:
        use_list(o1, "no-c", [deny_jid(c, kinds=["message"])], others=[o2], active=False, default=True)
        use_list(o1, "no-d", [deny_jid(d, kinds=["message"])], others=[o2], active=True)
        bounced = [(cs, cs.message(o2.jid, "c to two"), o2.jid),
                   (ds, ds.message(o1.jid, "d to one"), o1.jid)]
        cs.message(o1.jid, "c to one")
        ds.message(o2.jid, "d to two")
        for sender, mid, to in bounced:
            assert_bounced(sender, mid, to)
        message_from(o1, "c to one")
        message_from(o2, "d to two")
        o3 = online(server, owner, "three")
        mid = cs.message(o3.jid, "c to three")
        assert_bounced(cs, mid, o3.jid)
        assert_result(privacy_active(o1))
        mid = cs.message(o1.jid, "c to one again")
        ds.message(o1.jid, "d to one again")
        assert_bounced(cs, mid, o1.jid)
        message_from(o1, "d to one again")
        for s in (o1, o2, o3):
            quiet(s, 0.2 if s is not o1 else WINDOW, ignore=lambda e: not is_message(e),
                  what="a message the applicable list denies")
    finally:
        close_all(o1, o2, cs, ds, *([o3] if o3 else []))


def test_editing_a_list_active_elsewhere_takes_effect_there_at_once(server):
    """2.2 rule 8: the edit is allowed (no conflict), pushed, and applies at once."""
    owner, c, d = new_users(server, "edt", "edtc", "edtd")
    o1 = online(server, owner, "one")
    o2 = online(server, owner, "two")
    cs = online(server, c, "c")
    ds = online(server, d, "d")
    try:
        use_list(o1, "shared", [deny_jid(d, kinds=["message"])], others=[o2])
        assert_result(privacy_set_list(o2, "shared", [deny_jid(c, kinds=["message"])]))
        for s in (o1, o2):
            take_privacy_push(s, "shared")
        mid = cs.message(o1.jid, "c now denied")
        ds.message(o1.jid, "d now allowed")
        assert_bounced(cs, mid, o1.jid)
        message_from(o1, "d now allowed")
        quiet(o1, WINDOW, ignore=lambda e: not is_message(e), what="a message the edited list denies")
    finally:
        close_all(o1, o2, cs, ds)


def test_presence_in_hides_the_contact_including_probe_answers(server):
    """<presence-in/>: the owner's sessions get none of the contact's presence, not even the
    answer to the login probe, while the contact still sees the owner; a control contact's
    presence passes."""
    owner, c, d = new_users(server, "pin", "pinc", "pind")
    befriend(server, owner, c)
    befriend(server, owner, d)
    setup = online(server, owner, "setup", presence=False)
    use_list(setup, "no-c-presence", [deny_jid(c, kinds=["presence-in"])], active=False, default=True)
    setup.close()
    cs = online(server, c, "c", payload="<status>c here</status>")
    ds = online(server, d, "d", payload="<status>d here</status>")
    o = None
    try:
        o = online(server, owner, "o")
        wait_pres(o, ds.jid, status="d here")
        wait_pres(cs, o.jid)      # presence-out is not denied
        presence(cs, payload="<status>c changed</status>")
        presence(ds, payload="<status>d changed</status>")
        wait_pres(o, ds.jid, status="d changed")
        cs.message(o.jid, "c may still write")
        message_from(o, "c may still write")
        quiet(o, WINDOW, ignore=lambda e: not is_pres(e, cs.jid), what="presence of a contact denied by <presence-in/>")
    finally:
        close_all(cs, ds, *([o] if o else []))


def test_default_list_applies_while_the_owner_is_offline(server):
    """2.2 rule 2: with no session the default list applies. A denied message bounces
    (and is not kept for later); an IQ to the bare JID (jabber:iq:last) from an
    iq-denied contact gets <service-unavailable/> where an allowed contact gets the
    answer; a subscription request from a JID denied by an item without kinds is dropped
    for good, another stranger's request is delivered at the next login; a probe from a
    presence-out-denied contact gets no available presence."""
    owner, c, d, s, t = new_users(server, "off", "offc", "offd", "offs", "offt")
    befriend(server, owner, c)
    befriend(server, owner, d)
    setup = online(server, owner, "setup")
    use_list(setup, "offline", [
        deny_jid(c, 1, ["message", "iq", "presence-out"]),
        deny_jid(s, 2),
    ], active=False, default=True)
    setup.close()
    time.sleep(0.3)
    cs = online(server, c, "c")
    ds = online(server, d, "d")
    ss = online(server, s, "s")
    ts = online(server, t, "t")
    o = None
    try:
        mid = cs.message(owner, "while you were away")
        assert_bounced(cs, mid, owner)
        answer = cs.iq("get", f"<query xmlns='{NS_LAST}'/>", to=owner)
        assert_error(answer, "service-unavailable", "last activity asked by an iq-denied contact")
        answer = ds.iq("get", f"<query xmlns='{NS_LAST}'/>", to=owner)
        assert_result(answer, "last activity asked by an allowed contact")
        presence(ss, owner, "subscribe")
        presence(ts, owner, "subscribe")
        ss.sync()
        ts.sync()
        no_errors(ss, 0.2)
        # the presence-out-denied contact logs in again: its probe reveals nothing
        cs.close()
        cs = online(server, c, "c2")
        got = [e for e in collect(cs, WINDOW) if is_pres(e, owner, "available", bare_from=True)]
        assert not got, [rc.show(e) for e in got]

        o = online(server, owner, "back")
        take(o, lambda e: is_pres(e, t, "subscribe"), what="the allowed stranger's stored request")
        got = [e for e in collect(o, WINDOW) if is_pres(e, s, "subscribe") or is_message(e)]
        assert not got, "a denied request or message was kept: " + " ".join(rc.show(e) for e in got)
    finally:
        close_all(cs, ds, ss, ts, *([o] if o else []))


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_owner_activates_a_list_slixmpp_contacts_observe(server):
    """slixmpp's XEP-0016 stanzas: the owner creates and activates a list denying one
    contact's messages and IQs; that contact's slixmpp gets the error, another contact's
    messages pass. The owner's slixmpp answers the privacy push with an error of its own,
    which the server must ignore."""
    from slixmpp.exceptions import IqError

    owner, c, d = new_users(server, "sxo", "sxc", "sxd")

    async def scenario():
        o = sx.connect(owner, server.users[owner], server.port, "SCRAM-SHA-256", resource="o")
        cs = sx.connect(c, server.users[c], server.port, "SCRAM-SHA-256", resource="c")
        ds = sx.connect(d, server.users[d], server.port, "SCRAM-SHA-256", resource="d")
        for s in (o, cs, ds):
            assert await s.started == "session"
        o.client.register_plugin("xep_0016")
        errors = asyncio.Queue()
        cs.client.add_event_handler("message_error", lambda m: errors.put_nowait(m))

        iq = o.client.make_iq_set()
        plist = iq["privacy"]["list"]
        plist["name"] = "slix"
        plist.add_item(c, "deny", "1", itype="jid", message=True, iq=True)
        await iq.send(timeout=5)
        iq = o.client.make_iq_get()
        iq["privacy"]["list"]["name"] = "slix"
        answer = await iq.send(timeout=5)
        items = list(answer["privacy"]["list"]["items"])
        assert len(items) == 1 and items[0]["value"] == c and items[0]["action"] == "deny", str(answer)
        assert items[0]["message"] and items[0]["iq"], str(answer)
        iq = o.client.make_iq_set()
        iq["privacy"]["active"]["name"] = "slix"
        await iq.send(timeout=5)

        cs.client.send_message(mto=o.jid, mbody="denied by slixmpp's list", mtype="chat")
        err = await asyncio.wait_for(errors.get(), 5)
        assert err["error"]["condition"] == "service-unavailable", str(err)
        try:
            await cs.client["xep_0199"].send_ping(o.jid, timeout=5)
            raise AssertionError("an iq-denied contact's ping reached the owner")
        except IqError as e:
            assert e.iq["error"]["condition"] == "service-unavailable", str(e.iq)
        ds.client.send_message(mto=o.jid, mbody="allowed", mtype="chat")
        while True:
            m = await asyncio.wait_for(o.messages.get(), 5)
            assert m["body"] != "denied by slixmpp's list", "a denied message was delivered"
            if m["body"] == "allowed":
                break
        assert o.messages.empty()
    sx.run(scenario, timeout=40)
