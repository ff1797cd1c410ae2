"""Presence subscriptions: RFC 6121 section 3 and the state tables of Appendix A, end to
end between local accounts, with raw clients (to see exactly which stanzas arrive and that
nothing else does) and with slixmpp.

Naming in the tests follows the RFC: the *user* asks for a subscription to the *contact*'s
presence. Every test uses fresh accounts (flows.new_user)."""
import asyncio
import time

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_PREAPPROVAL, befriend, check_push, collect, is_own_presence, is_pres,
                   is_roster_push, login, new_user, new_users, online, presence, quiet,
                   roster, roster_get, roster_remove, roster_set, subscribe_flow, take, take_all,
                   wait_pres, wait_push)

WINDOW = 0.8   # how long "nothing arrives" is watched


def in_order(late, order, first, then, what):
    """Records (instead of failing at once) that the element matched by predicate index
    `first` did not arrive before the one matched by `then`, so that the rest of the
    flow is still checked; the test asserts `late` is empty at its end."""
    if order.index(first) > order.index(then):
        late.append(f"{what} (arrival order of the predicates: {order})")


def sub_pred(frm, type_):
    return lambda e: is_pres(e, frm, type_)


def push_pred(jid):
    return lambda e: is_roster_push(e, jid)


# ---------------------------------------------------------------- the basic handshake

def test_subscribe_and_approve_end_to_end(server):
    """RFC 6121 3.1: subscribe -> the user's push (none + ask) and the request at the
    contact (stamped with the user's bare JID); approval -> the contact's push ('from'),
    then at the user 'subscribed' BEFORE the push ('to'), then the contact's presence."""
    user, contact = new_users(server, "usr", "ctc")
    u = online(server, user, "u1")
    c = online(server, contact, "c1", payload="<show>chat</show><status>here</status>")
    late = []
    try:
        presence(u, contact, "subscribe", id="sub1")
        item = wait_push(u, contact)
        assert (item["subscription"], item["ask"]) == ("none", "subscribe"), item
        req = take(c, sub_pred(user, "subscribe"), what="the subscription request")
        assert req.get("from") == user, f"request not stamped with the bare JID: {rc.show(req)}"
        assert req.get("to") in (contact, c.jid), rc.show(req)
        # RFC 6121 3.1.3 security warning: no roster item for the user before approval
        assert user not in roster(c)
        quiet(c, 0.3, ignore=is_own_presence(c))

        presence(c, user, "subscribed", id="ok1")
        item = wait_push(c, user)
        assert (item["subscription"], item["ask"]) == ("from", None), item

        (sub, push, avail), order = take_all(
            u, [sub_pred(contact, "subscribed"), push_pred(contact),
                lambda e: is_pres(e, c.jid, "available")],
            what="subscribed, the roster push and the contact's presence")
        assert sub.get("from") == contact, rc.show(sub)
        in_order(late, order, 0, 1,
                 "the 'subscribed' must be delivered before the roster push (RFC 6121 3.1.6)")
        item = check_push(u, push)
        assert (item["subscription"], item["ask"]) == ("to", None), item
        assert avail.findtext(q_status()) == "here", rc.show(avail)
        assert roster(u)[contact]["subscription"] == "to"
        assert roster(c)[user]["subscription"] == "from"

        # presence now flows contact -> user only
        presence(c, payload="<show>away</show>")
        wait_pres(u, c.jid, show="away")
        presence(u, payload="<show>dnd</show>")
        u.sync()
        quiet(c, WINDOW, ignore=is_own_presence(c), what="presence from a user it has not subscribed to")
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def q_status():
    return rc.q(rc.NS_CLIENT, "status")


def q_show():
    return rc.q(rc.NS_CLIENT, "show")


def test_mutual_subscription_reaches_both(server):
    user, contact = new_users(server, "mu", "mc")
    u = online(server, user, "u1")
    c = online(server, contact, "c1")
    try:
        subscribe_flow(u, c)
        # now the contact subscribes back: state 'From' -> 'From + Pending Out' at c
        presence(c, user, "subscribe")
        item = wait_push(c, user)
        assert (item["subscription"], item["ask"]) == ("from", "subscribe"), item
        take(u, sub_pred(contact, "subscribe"))
        presence(u, contact, "subscribed")
        item = wait_push(u, contact)
        assert (item["subscription"], item["ask"]) == ("both", None), item
        take(c, sub_pred(user, "subscribed"))
        item = wait_push(c, user)
        assert (item["subscription"], item["ask"]) == ("both", None), item
        wait_pres(c, u.jid)           # 3.1.5: the approver's presence follows
        assert roster(u)[contact]["subscription"] == "both"
        assert roster(c)[user]["subscription"] == "both"
        # presence flows both ways
        presence(u, payload="<status>u-status</status>")
        wait_pres(c, u.jid, status="u-status")
        presence(c, payload="<status>c-status</status>")
        wait_pres(u, c.jid, status="c-status")
    finally:
        u.close()
        c.close()


def test_request_goes_to_every_available_resource_and_pushes_to_every_interested(server):
    """RFC 6121 3.1.3 rule 3 and 3.1.5: all available resources get the request; the
    approval from one resource is pushed to all interested ones; the user's pushes reach
    all the user's interested resources (3.1.2)."""
    user, contact = new_users(server, "mr", "mrc")
    u1 = online(server, user, "one")
    u2 = online(server, user, "two")
    c1 = online(server, contact, "desk")
    c2 = online(server, contact, "phone")
    try:
        presence(u1, contact, "subscribe")
        for u in (u1, u2):
            item = wait_push(u, contact)
            assert item["ask"] == "subscribe", item
        for c in (c1, c2):
            take(c, sub_pred(user, "subscribe"))
        presence(c2, user, "subscribed")
        for c in (c1, c2):
            assert wait_push(c, user)["subscription"] == "from"
        for u in (u1, u2):
            take(u, sub_pred(contact, "subscribed"))
            assert wait_push(u, contact)["subscription"] == "to"
            # each available resource of the contact, to each available resource of the user
            wait_pres(u, c1.jid)
            wait_pres(u, c2.jid)
    finally:
        for x in (u1, u2, c1, c2):
            x.close()


def test_subscribe_to_full_jid_is_treated_as_bare(server):
    """RFC 6121 3.1.2 rule 1: a request to contact@domain/resource is handled as to the
    bare JID (the roster item is the bare JID)."""
    user, contact = new_users(server, "fj", "fjc")
    u = online(server, user)
    c = online(server, contact, "res")
    try:
        presence(u, c.jid, "subscribe")
        item = wait_push(u, contact)
        assert item["jid"] == contact
        req = take(c, sub_pred(user, "subscribe"))
        assert req.get("from") == user
    finally:
        u.close()
        c.close()


# ---------------------------------------------------------------- denial and cancellation

def test_contact_denies_request(server):
    """RFC 6121 3.1.4 / 3.2: 'unsubscribed' to a pending request; the user gets it and a
    push without ask; no presence flows; the contact's roster stays without the user."""
    user, contact = new_users(server, "den", "denc")
    u = online(server, user)
    c = online(server, contact)
    late = []
    try:
        presence(u, contact, "subscribe")
        wait_push(u, contact)
        take(c, sub_pred(user, "subscribe"))
        presence(c, user, "unsubscribed")
        (uns, push), order = take_all(u, [sub_pred(contact, "unsubscribed"), push_pred(contact)])
        in_order(late, order, 0, 1, "unsubscribed must precede the roster push (RFC 6121 3.2.3)")
        item = check_push(u, push)
        assert (item["subscription"], item["ask"]) == ("none", None), item
        assert user not in roster(c)
        presence(c, payload="<status>after denial</status>")
        c.sync()
        quiet(u, WINDOW, ignore=is_own_presence(u), what="presence from a contact that denied")
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def test_contact_cancels_subscription_from_both(server):
    """RFC 6121 3.2.2: the contact cancels with 'unsubscribed': first unavailable from
    each of the contact's resources, then 'unsubscribed', then pushes ('to' at the
    contact, 'from' at the user); afterwards the contact's presence no longer flows."""
    user, contact = new_users(server, "cb", "cbc")
    befriend(server, user, contact)
    u = online(server, user, "u")
    c1 = online(server, contact, "c1")
    c2 = online(server, contact, "c2")
    late = []
    try:
        for cc in (c1, c2):
            wait_pres(u, cc.jid)
        wait_pres(c1, u.jid)
        for x in (u, c1, c2):      # e.g. the probe answers from the setup's logout
            collect(x, 0.3)
        presence(c1, user, "unsubscribed")
        for cc in (c1, c2):
            assert wait_push(cc, user)["subscription"] == "to"
        (un1, un2, uns, push), order = take_all(
            u, [lambda e: is_pres(e, c1.jid, "unavailable"),
                lambda e: is_pres(e, c2.jid, "unavailable"),
                sub_pred(contact, "unsubscribed"), push_pred(contact)])
        in_order(late, order, 2, 3, "unsubscribed before the push (RFC 6121 3.2.3)")
        for i in (0, 1):
            in_order(late, order, i, 2,
                     "unavailable presence must come before 'unsubscribed' (RFC 6121 3.2.2)")
        assert check_push(u, push)["subscription"] == "from"
        assert roster(u)[contact]["subscription"] == "from"
        # the user's presence still reaches the contact, not the other way round
        presence(u, payload="<status>still shared</status>")
        wait_pres(c1, u.jid, status="still shared")
        presence(c1, payload="<status>hidden</status>")
        c1.sync()
        quiet(u, WINDOW, ignore=lambda e: is_own_presence(u)(e) or is_pres(e, c2.jid, "unavailable")
              or is_pres(e, c1.jid, "unavailable"), what="presence after cancellation")
        assert not late, "\n".join(late)
    finally:
        for x in (u, c1, c2):
            x.close()


def test_user_unsubscribes_from_both(server):
    """RFC 6121 3.3: 'unsubscribe' -> the user's push ('from'); at the contact the
    unsubscribe BEFORE its push ('to'); unavailable from the contact's resources."""
    user, contact = new_users(server, "ub", "ubc")
    befriend(server, user, contact)
    u = online(server, user, "u")
    c = online(server, contact, "c")
    late = []
    try:
        wait_pres(u, c.jid)
        collect(u, 0.3)
        collect(c, 0.3)
        presence(u, contact, "unsubscribe")
        assert wait_push(u, contact)["subscription"] == "from"
        (uns, push), order = take_all(c, [sub_pred(user, "unsubscribe"), push_pred(user)])
        in_order(late, order, 0, 1, "unsubscribe before the push (RFC 6121 3.3.3)")
        assert check_push(c, push)["subscription"] == "to"
        wait_pres(u, c.jid, "unavailable")      # 3.3.3 rule 3
        presence(c, payload="<status>not for u</status>")
        c.sync()
        quiet(u, WINDOW, ignore=lambda e: is_own_presence(u)(e) or is_pres(e, contact, "unsubscribed"),
              what="presence after unsubscribing")
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def test_contact_cancels_one_way_subscription(server):
    """From 'To'/'From' (one way): the contact's 'unsubscribed' leaves both items at
    'none'; the user sees the contact go unavailable, then 'unsubscribed', then the push."""
    user, contact = new_users(server, "c1w", "c1wc")
    befriend(server, user, contact, mutual=False)
    u = online(server, user)
    c = online(server, contact, "c")
    late = []
    try:
        wait_pres(u, c.jid)
        presence(c, user, "unsubscribed")
        assert wait_push(c, user)["subscription"] == "none"
        (un, uns, push), order = take_all(
            u, [lambda e: is_pres(e, c.jid, "unavailable"), sub_pred(contact, "unsubscribed"),
                push_pred(contact)])
        in_order(late, order, 0, 1, "unavailable before 'unsubscribed' (RFC 6121 3.2.2)")
        in_order(late, order, 1, 2, "'unsubscribed' before the push (RFC 6121 3.2.3)")
        assert check_push(u, push)["subscription"] == "none"
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def test_user_unsubscribes_one_way(server):
    user, contact = new_users(server, "u1w", "u1wc")
    befriend(server, user, contact, mutual=False)
    u = online(server, user)
    c = online(server, contact, "c")
    late = []
    try:
        wait_pres(u, c.jid)
        collect(u, 0.3)
        collect(c, 0.3)
        presence(u, contact, "unsubscribe")
        assert wait_push(u, contact)["subscription"] == "none"
        (uns, push), order = take_all(c, [sub_pred(user, "unsubscribe"), push_pred(user)])
        in_order(late, order, 0, 1, "unsubscribe before the push (RFC 6121 3.3.3)")
        assert check_push(c, push)["subscription"] == "none"
        wait_pres(u, c.jid, "unavailable")
        presence(c, payload="<status>private again</status>")
        c.sync()
        quiet(u, WINDOW, ignore=lambda e: is_own_presence(u)(e) or is_pres(e, contact, "unsubscribed"),
              what="presence after unsubscribing")
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def test_user_withdraws_pending_request_while_contact_offline(server):
    """RFC 6121 3.3.3: an unsubscribe removes the stored inbound request; the contact
    never sees it."""
    user, contact = new_users(server, "wd", "wdc")
    u = online(server, user)
    try:
        presence(u, contact, "subscribe")
        assert wait_push(u, contact)["ask"] == "subscribe"
        presence(u, contact, "unsubscribe")
        item = wait_push(u, contact)
        assert (item["subscription"], item["ask"]) == ("none", None), item
        u.sync()
    finally:
        u.close()
    c = online(server, contact)
    try:
        quiet(c, 1.0, ignore=is_own_presence(c), what="a withdrawn subscription request")
    finally:
        c.close()


def test_roster_remove_cancels_both_directions(server):
    """RFC 6121 2.5.2: removing a 'both' contact sends unsubscribe and unsubscribed; the
    contact ends with subscription 'none' and both sides see the other go unavailable."""
    user, contact = new_users(server, "rr", "rrc")
    befriend(server, user, contact)
    u = online(server, user, "u")
    c = online(server, contact, "c")
    try:
        wait_pres(u, c.jid)
        wait_pres(c, u.jid)
        assert roster_remove(u, contact).get("type") == "result"
        assert wait_push(u, contact)["subscription"] == "remove"
        take_all(c, [sub_pred(user, "unsubscribe"), sub_pred(user, "unsubscribed"),
                     lambda e: is_pres(e, u.jid, "unavailable")])
        deadline = time.monotonic() + 3
        while roster(c)[user]["subscription"] != "none" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert roster(c)[user]["subscription"] == "none"
        wait_pres(u, c.jid, "unavailable")
        assert contact not in roster(u)
    finally:
        u.close()
        c.close()


def test_subscription_survives_roster_update(server):
    """Renaming or regrouping an item (roster set) keeps its subscription state."""
    user, contact = new_users(server, "keep", "keepc")
    befriend(server, user, contact)
    u = online(server, user)
    try:
        assert roster_set(u, contact, name="Renamed", groups=["Friends"]).get("type") == "result"
        item = wait_push(u, contact)
        assert (item["subscription"], item["name"], item["groups"]) == ("both", "Renamed", ["Friends"]), item
    finally:
        u.close()


# ---------------------------------------------------------------- offline contact

def test_request_to_offline_contact_is_delivered_once_at_next_presence(server):
    """RFC 6121 3.1.3 rule 4 (RFC 2779 3.2.2): stored while the contact is offline, with
    its extended content; of several requests only one is delivered, at the contact's
    next *available* presence (not at bind or roster get)."""
    user, contact = new_users(server, "off", "offc")
    u = online(server, user)
    try:
        ext = "<status>it is me</status><nick xmlns='http://jabber.org/protocol/nick'>Usr</nick>"
        presence(u, contact, "subscribe", payload=ext, id="first")
        assert wait_push(u, contact)["ask"] == "subscribe"
        presence(u, contact, "subscribe", payload=ext, id="second")
        u.sync()
        quiet(u, 0.4, ignore=is_own_presence(u))   # A.2.1: no state change, no push
    finally:
        u.close()
    c = login(server, contact)
    try:
        assert roster_get(c).get("type") == "result"
        quiet(c, 0.6, what="presence before the contact is available")
        c.send_presence()
        got = [e for e in collect(c, 1.5) if is_pres(e, user, "subscribe")]
        assert len(got) == 1, f"expected exactly one stored request, got {len(got)}: " + \
            " ".join(rc.show(e) for e in got)
        req = got[0]
        assert req.findtext(q_status()) == "it is me", rc.show(req)
        assert req.find("{http://jabber.org/protocol/nick}nick") is not None, (
            f"extended content lost (RFC 6121 3.1.3 rule 4): {rc.show(req)}")
    finally:
        c.close()


def test_unanswered_request_is_redelivered_at_each_login(server):
    """RFC 6121 3.1.3 rule 4: 'MUST continue to deliver the subscription request whenever
    the contact creates an available resource, until the contact either approves or
    denies the request.'"""
    user, contact = new_users(server, "redel", "redelc")
    u = online(server, user)
    presence(u, contact, "subscribe")
    wait_push(u, contact)
    u.close()
    for _ in range(2):
        c = online(server, contact)
        try:
            take(c, sub_pred(user, "subscribe"), what="the stored, unanswered request")
        finally:
            c.close()


def test_answered_request_is_not_redelivered(server):
    user, contact = new_users(server, "ans", "ansc")
    u = online(server, user)
    presence(u, contact, "subscribe")
    wait_push(u, contact)
    u.close()
    c = online(server, contact)
    take(c, sub_pred(user, "subscribe"))
    presence(c, user, "subscribed")
    assert wait_push(c, user)["subscription"] == "from"
    c.close()
    c = online(server, contact)
    try:
        quiet(c, 1.0, ignore=is_own_presence(c), what="an already answered request")
    finally:
        c.close()
    u = online(server, user)
    try:
        assert roster(u)[contact]["subscription"] == "to"
    finally:
        u.close()


def test_denied_offline_request_is_not_redelivered(server):
    user, contact = new_users(server, "dn", "dnc")
    u = online(server, user)
    presence(u, contact, "subscribe")
    wait_push(u, contact)
    u.close()
    c = online(server, contact)
    take(c, sub_pred(user, "subscribe"))
    presence(c, user, "unsubscribed")
    c.sync()
    c.close()
    c = online(server, contact)
    try:
        quiet(c, 1.0, ignore=is_own_presence(c), what="a denied request")
    finally:
        c.close()


def test_approval_while_user_offline_updates_roster_and_presence_at_login(server):
    user, contact = new_users(server, "apo", "apoc")
    u = online(server, user)
    presence(u, contact, "subscribe")
    wait_push(u, contact)
    u.close()
    c = online(server, contact, "here", payload="<status>online</status>")
    try:
        take(c, sub_pred(user, "subscribe"))
        presence(c, user, "subscribed")
        assert wait_push(c, user)["subscription"] == "from"
        u = online(server, user)
        try:
            assert roster(u)[contact]["subscription"] == "to"
            wait_pres(u, c.jid, status="online")     # the probe at login (RFC 6121 4.2.2)
        finally:
            u.close()
    finally:
        c.close()


# ---------------------------------------------------------------- pre-approval (3.4)

def test_pre_approval(server):
    """RFC 6121 3.4.2 rule 4: 'subscribed' to someone not in the roster creates an item
    (none, approved='true') and is NOT routed; the later request is auto-approved without
    reaching the user's clients."""
    user, contact = new_users(server, "pre", "prec")
    u = online(server, user, "u")
    c = online(server, contact, "c")
    late = []
    try:
        assert u.feature(NS_PREAPPROVAL, "sub") is not None, rc.show(u.features)
        presence(u, contact, "subscribed")
        item = wait_push(u, contact)
        assert (item["subscription"], item["approved"]) == ("none", True), item
        quiet(c, WINDOW, ignore=is_own_presence(c), what="a pre-approval (MUST NOT be routed)")

        presence(c, user, "subscribe")
        assert wait_push(c, user)["ask"] == "subscribe"
        (sub, push), order = take_all(c, [sub_pred(user, "subscribed"), push_pred(user)])
        in_order(late, order, 0, 1, "the auto-reply 'subscribed' before the push (RFC 6121 3.1.6)")
        assert check_push(c, push)["subscription"] == "to"
        wait_pres(c, u.jid)
        assert wait_push(u, contact)["subscription"] == "from"
        quiet(u, WINDOW, ignore=lambda e: is_own_presence(u)(e) or is_roster_push(e),
              what="the auto-approved request (MUST NOT be delivered, 3.4.2)")
        assert not late, "\n".join(late)
    finally:
        u.close()
        c.close()


def test_pre_approval_cancelled_with_unsubscribed(server):
    """RFC 6121 3.2.2 rule 2 and the 3.4 implementation note: 'unsubscribed' removes the
    pre-approval (push without approved), is not routed, and a later request is delivered
    for a decision."""
    user, contact = new_users(server, "prc", "prcc")
    u = online(server, user, "u")
    c = online(server, contact, "c")
    try:
        presence(u, contact, "subscribed")
        assert wait_push(u, contact)["approved"] is True
        presence(u, contact, "unsubscribed")
        item = wait_push(u, contact)
        assert item["approved"] is False, item
        quiet(c, WINDOW, ignore=is_own_presence(c), what="a pre-approval or its cancellation")
        presence(c, user, "subscribe")
        take(u, sub_pred(contact, "subscribe"), what="the request (no longer pre-approved)")
        quiet(c, 0.5, ignore=lambda e: is_own_presence(c)(e) or is_roster_push(e),
              what="an auto-approval after the pre-approval was cancelled")
    finally:
        u.close()
        c.close()


def test_pre_approval_of_pending_in_is_a_normal_approval(server):
    """RFC 6121 3.4.2 rule 2: 'subscribed' with a pending inbound request approves it."""
    user, contact = new_users(server, "pin", "pinc")
    u = online(server, user)
    c = online(server, contact)
    try:
        presence(c, user, "subscribe")
        wait_push(c, user)
        take(u, sub_pred(contact, "subscribe"))
        presence(u, contact, "subscribed")
        item = wait_push(u, contact)
        assert item["subscription"] == "from", item
        take(c, sub_pred(user, "subscribed"))
        assert wait_push(c, user)["subscription"] == "to"
    finally:
        u.close()
        c.close()


# ---------------------------------------------------------------- no state change, no stanza

def test_second_subscribed_is_not_forwarded(server):
    """RFC 6121 3.4.2 rule 1 / A.2.3: 'subscribed' when the other side is already
    subscribed (From/Both) is silently ignored: no routing, no push."""
    user, contact = new_users(server, "ss", "ssc")
    u = online(server, user)
    c = online(server, contact)
    try:
        subscribe_flow(u, c)
        u.sync()
        c.sync()
        collect(u, 0.4)
        collect(c, 0.4)
        presence(c, user, "subscribed", id="again")
        c.sync()
        quiet(u, WINDOW, ignore=is_own_presence(u), what="a second 'subscribed'")
        quiet(c, 0.2, ignore=is_own_presence(c), what="a roster push without a state change")
    finally:
        u.close()
        c.close()


def test_second_subscribe_while_subscribed_is_auto_answered_not_delivered(server):
    """RFC 6121 3.1.3 rule 2 and A.3.1: a request from an already subscribed user is not
    delivered to the contact (the server auto-replies 'subscribed', which in turn changes
    nothing at the user, A.3.3: SHOULD NOT deliver); no roster pushes (A.2.1)."""
    user, contact = new_users(server, "s2", "s2c")
    u = online(server, user)
    c = online(server, contact)
    try:
        subscribe_flow(u, c)
        collect(u, 0.4)
        collect(c, 0.4)
        presence(u, contact, "subscribe", id="again")
        u.sync()
        quiet(c, WINDOW, ignore=is_own_presence(c), what="a request from an already subscribed user")
        got = [e for e in collect(u, 0.5) if not is_own_presence(u)(e)]
        assert not [e for e in got if is_roster_push(e)], [rc.show(e) for e in got]
        assert not [e for e in got if is_pres(e, contact, "subscribed")], (
            "an auto-reply that changes no state SHOULD NOT be delivered (A.3.3): "
            + " ".join(rc.show(e) for e in got))
    finally:
        u.close()
        c.close()


def test_repeated_request_while_pending_is_not_redelivered(server):
    """A.3.1: 'None + Pending In' + subscribe -> SHOULD NOT deliver; A.2.1: no push."""
    user, contact = new_users(server, "rp", "rpc")
    u = online(server, user)
    c = online(server, contact)
    try:
        presence(u, contact, "subscribe")
        wait_push(u, contact)
        take(c, sub_pred(user, "subscribe"))
        presence(u, contact, "subscribe", id="spam")
        u.sync()
        quiet(c, WINDOW, ignore=is_own_presence(c), what="a repeated subscription request")
        quiet(u, 0.2, ignore=is_own_presence(u), what="a push without a state change")
    finally:
        u.close()
        c.close()


@pytest.mark.parametrize("type_", ["unsubscribed", "unsubscribe"])
def test_cancel_without_subscription_reaches_nobody(server, type_):
    """A.2.4 'None': unsubscribed SHOULD NOT be routed; A.3.2 'None': an inbound
    unsubscribe SHOULD NOT be delivered. Neither changes a roster."""
    user, contact = new_users(server, "nc", "ncc")
    u = online(server, user)
    c = online(server, contact)
    try:
        presence(u, contact, type_)
        u.sync()
        quiet(c, WINDOW, ignore=is_own_presence(c), what=f"'{type_}' without any subscription")
        assert roster(c) == {}
        assert contact not in roster(u) or roster(u)[contact]["subscription"] == "none"
    finally:
        u.close()
        c.close()


def test_subscribed_without_request_is_not_delivered(server):
    """A.3.3 'None': an unsolicited 'subscribed' is not delivered and changes nothing (the
    sender's server treats it as a pre-approval instead, 3.4)."""
    user, contact = new_users(server, "uns", "unsc")
    u = online(server, user)
    c = online(server, contact)
    try:
        presence(c, user, "subscribed")
        c.sync()
        quiet(u, WINDOW, ignore=is_own_presence(u), what="an unsolicited 'subscribed'")
        assert roster(u) == {}
    finally:
        u.close()
        c.close()


# ---------------------------------------------------------------- odd addressees

def test_subscription_request_to_unknown_local_user(server):
    """RFC 6121 8.5.1: a subscribe to a nonexistent local account is silently ignored
    (3.1.2 allows an error stanza back instead); never a 'subscribed' or presence."""
    user = new_user(server, "ghost")
    u = online(server, user)
    try:
        presence(u, "nobody-here@localhost", "subscribe", id="ghost1")
        u.sync()
        got = [e for e in collect(u, WINDOW)
               if not is_own_presence(u)(e) and not is_roster_push(e)]
        for e in got:
            assert is_pres(e, "nobody-here@localhost", "error"), (
                f"only silence or a presence error may come back: {rc.show(e)}")
            assert e.get("id") == "ghost1", rc.show(e)
        items = roster(u)
        assert items.get("nobody-here@localhost", {}).get("subscription", "none") == "none", items
    finally:
        u.close()


def test_no_stanzas_leak_to_a_third_party(server):
    """A third, unrelated user online through a whole handshake, presence changes and a
    cancellation receives nothing at all."""
    user, contact, third = new_users(server, "lk", "lkc", "lkt")
    t = online(server, third)
    u = online(server, user)
    c = online(server, contact)
    try:
        subscribe_flow(u, c)
        subscribe_flow(c, u)
        presence(u, payload="<show>away</show>")
        presence(c, payload="<show>xa</show>")
        presence(u, contact, "unsubscribe")
        u.sync()
        c.sync()
        quiet(t, 1.0, ignore=is_own_presence(t), what="stanzas of other users' subscriptions")
    finally:
        for x in (u, c, t):
            x.close()


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_three_clients_subscribe_and_see_presence(server):
    """Three slixmpp clients: A asks B (auto_authorize + auto_subscribe, slixmpp's
    defaults) and both end up 'both' and see each other online; C, who subscribed to
    nobody, sees nothing of A or B."""
    a_jid, b_jid, c_jid = new_users(server, "sa", "sb", "sc")

    async def scenario():
        a = sx.connect(a_jid, server.users[a_jid], server.port, "SCRAM-SHA-256", resource="a")
        b = sx.connect(b_jid, server.users[b_jid], server.port, "SCRAM-SHA-256", resource="b")
        c = sx.connect(c_jid, server.users[c_jid], server.port, "SCRAM-SHA-256", resource="c")
        for s in (a, b, c):
            assert await s.started == "session"
        c_seen = []
        c.client.add_event_handler("presence", lambda p: c_seen.append(str(p)))
        for s in (a, b, c):
            await s.client.get_roster(timeout=5)
            s.client.send_presence()
        for s in (a, b, c):
            await s.client["xep_0199"].ping(s.client.boundjid.domain, timeout=5)

        b.client.auto_authorize = True
        b.client.auto_subscribe = True
        a.client.auto_authorize = True
        a.client.auto_subscribe = False
        a.client.send_presence_subscription(pto=b_jid)

        async def until(cond, what, timeout=8):
            deadline = time.monotonic() + timeout
            while not cond():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                await asyncio.sleep(0.05)

        await until(lambda: a.client.client_roster[b_jid]["subscription"] == "both",
                    "A's roster item for B to become 'both'")
        await until(lambda: b.client.client_roster[a_jid]["subscription"] == "both",
                    "B's roster item for A to become 'both'")
        await until(lambda: bool(a.client.client_roster[b_jid].resources), "B online at A")
        await until(lambda: bool(b.client.client_roster[a_jid].resources), "A online at B")

        # status changes travel
        a.client.send_presence(pstatus="busy with tests", pshow="dnd")
        await until(lambda: b.client.client_roster[a_jid].resources.get("a", {}).get("status")
                    == "busy with tests", "A's new status at B")
        await asyncio.sleep(WINDOW)
        leaked = [p for p in c_seen if (a_jid in p or b_jid in p)]
        assert not leaked, f"C saw presence of users it has no subscription to: {leaked}"
    sx.run(scenario, timeout=40)
