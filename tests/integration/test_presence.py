"""Presence: RFC 6121 section 4 (initial presence broadcast, probes, subsequent and
unavailable presence, directed presence, priorities) and RFC 2779 3.2.1 (an offline
contact's last unavailable presence, with a XEP-0203 delay stamp, answers a probe).

Subscriptions are set up through the protocol (flows.befriend) on fresh accounts."""
import datetime
import time

import rawclient as rc
import slixclient as sx
from flows import (NS_DELAY, bare, befriend, collect, is_own_presence, is_pres, login,
                   new_users, online, pres_show, pres_status, presence, quiet, take,
                   take_all, wait_pres)
from rawclient import q

WINDOW = 0.8


def others(c):
    """Ignore predicate: the session's own presence echoes."""
    return is_own_presence(c)


def parse_stamp(stamp):
    """XEP-0082 DateTime -> aware datetime."""
    s = stamp.replace("Z", "+00:00")
    if "." in s:   # fractions of a second: drop them, keep the offset
        head, tail = s.split(".", 1)
        i = min([k for k in (tail.find("+"), tail.find("-")) if k >= 0], default=len(tail))
        s = head + tail[i:]
    return datetime.datetime.fromisoformat(s)


# ---------------------------------------------------------------- initial presence

def test_initial_presence_reaches_subscribers_and_own_resources(server):
    """RFC 6121 4.2.2: from the full JID to every contact with 'from'/'both', and to all
    the user's available resources including the sender; not to a contact the user only
    subscribed to ('to'), nor to anyone else."""
    user, both, sub_from, sub_to, stranger = new_users(server, "ip", "both", "from", "to", "str")
    befriend(server, user, both)                       # both
    befriend(server, sub_from, user, mutual=False)     # sub_from is subscribed to user
    befriend(server, user, sub_to, mutual=False)       # user is subscribed to sub_to
    watchers = {j: online(server, j, "w") for j in (both, sub_from, sub_to, stranger)}
    other = online(server, user, "other")
    u = online(server, user, "new", presence=False)
    try:
        presence(u, payload="<show>chat</show><status>hello all</status>", id="init1")
        u.sync()
        for j in (both, sub_from):
            p = wait_pres(watchers[j], u.jid, status="hello all", show="chat")
            assert p.get("id") == "init1", f"the full XML is broadcast: {rc.show(p)}"
        for c in (other, u):
            wait_pres(c, u.jid, status="hello all")
        for j in (sub_to, stranger):
            quiet(watchers[j], WINDOW, ignore=others(watchers[j]),
                  what=f"presence of {user}, to whom it is not subscribed")
    finally:
        for c in (*watchers.values(), other, u):
            c.close()


def test_probe_at_login_returns_each_resources_last_presence(server):
    """RFC 6121 4.2.2 / 4.3.2 rule 4: when a logs in after b, a gets at once the full XML
    of the last broadcast presence of each of b's available resources (ids preserved,
    4.3.2.1)."""
    user, contact = new_users(server, "pr", "prc")
    befriend(server, user, contact, mutual=False)   # user subscribed to contact
    c1 = online(server, contact, "desk", presence=False)
    c2 = online(server, contact, "phone", presence=False)
    presence(c1, payload="<show>dnd</show><status>busy!</status>", id="pres1")
    presence(c2, payload="<show>away</show><status>stepped away</status><priority>5</priority>",
             id="pres2")
    c1.sync()
    c2.sync()
    u = online(server, user, "late")
    try:
        (p1, p2), _ = take_all(u, [lambda e: is_pres(e, c1.jid, "available"),
                                  lambda e: is_pres(e, c2.jid, "available")],
                               timeout=3, what="the contact's presence answering the probe")
        assert (pres_show(p1), pres_status(p1), p1.get("id")) == ("dnd", "busy!", "pres1"), rc.show(p1)
        assert (pres_show(p2), pres_status(p2), p2.get("id")) == ("away", "stepped away", "pres2"), rc.show(p2)
        assert p2.findtext(q(rc.NS_CLIENT, "priority")) == "5", rc.show(p2)
        # the contact is not subscribed to the user: it sees nothing of the login
        for c in (c1, c2):
            quiet(c, 0.5, ignore=others(c), what="presence of a user it is not subscribed to")
    finally:
        for c in (u, c1, c2):
            c.close()


def test_probe_for_offline_contact_returns_last_unavailable_with_delay(server):
    """RFC 6121 4.3.2 rule 3 / RFC 2779 3.2.1: an offline contact's last unavailable
    presence (with its status) answers the probe, from the bare JID, with a XEP-0203
    <delay/> stamped when the contact went offline."""
    user, contact = new_users(server, "lu", "luc")
    befriend(server, user, contact, mutual=False)
    c = online(server, contact, "gone")
    presence(c, type_="unavailable", payload="<status>gone fishing</status>")
    c.sync()
    left = datetime.datetime.now(datetime.timezone.utc)
    c.close()
    time.sleep(1.5)
    u = online(server, user)
    try:
        p = take(u, lambda e: is_pres(e, contact, "unavailable", bare_from=True), timeout=3,
                 what="the contact's last unavailable presence")
        assert p.get("from") == contact, f"from the bare JID (4.3.2 rule 3): {rc.show(p)}"
        assert pres_status(p) == "gone fishing", rc.show(p)
        delay = p.find(q(NS_DELAY, "delay"))
        assert delay is not None, f"no XEP-0203 <delay/>: {rc.show(p)}"
        stamp = parse_stamp(delay.get("stamp"))
        assert abs((stamp - left).total_seconds()) < 3, (delay.get("stamp"), left.isoformat())
        quiet(u, 0.5, ignore=lambda e: others(u)(e) or is_pres(e, contact, "unavailable"),
              what="anything else about the offline contact")
    finally:
        u.close()


def test_contact_that_never_logged_in_is_not_reported_available(server):
    user, contact = new_users(server, "nl", "nlc")
    befriend(server, user, contact, mutual=False)
    u = online(server, user)
    try:
        got = [e for e in collect(u, WINDOW) if is_pres(e) and bare(e.get("from")) == contact]
        assert all(e.get("type") == "unavailable" for e in got), [rc.show(e) for e in got]
    finally:
        u.close()


# ---------------------------------------------------------------- subsequent, unavailable

def test_presence_changes_reach_subscribers_and_own_resources(server):
    user, contact = new_users(server, "ch", "chc")
    befriend(server, user, contact)
    u1 = online(server, user, "one")
    u2 = online(server, user, "two")
    c = online(server, contact)
    try:
        collect(c, 0.3)
        collect(u1, 0.3)
        presence(u1, payload="<show>xa</show><status>lunch</status>")
        for x in (c, u2, u1):
            wait_pres(x, u1.jid, status="lunch", show="xa")
    finally:
        for x in (u1, u2, c):
            x.close()


def test_unavailable_broadcast_with_status_and_at_stream_end(server):
    """RFC 6121 4.5.2: graceful unavailable presence is broadcast in full (status kept);
    a stream closed without it still produces unavailable presence for the contacts
    and the user's other resources."""
    user, contact = new_users(server, "ua", "uac")
    befriend(server, user, contact)
    c = online(server, contact)
    u1 = online(server, user, "graceful")
    u2 = online(server, user, "closer")
    try:
        wait_pres(c, u1.jid)
        wait_pres(c, u2.jid)
        presence(u1, type_="unavailable", payload="<status>going on vacation</status>")
        for x in (c, u2):
            p = wait_pres(x, u1.jid, "unavailable")
            assert pres_status(p) == "going on vacation", rc.show(p)
        u2.close()       # </stream:stream> without unavailable presence
        p = wait_pres(c, u2.jid, "unavailable")
        assert p.get("from") == u2.jid
        # a new initial presence after unavailable starts a new presence session (4.5.2)
        presence(u1, payload="<status>back</status>")
        wait_pres(c, u1.jid, status="back")
    finally:
        for x in (c, u1, u2):
            x.close()


def test_connected_but_unavailable_resource_gets_no_presence(server):
    """Presence goes to *available* resources (RFC 6121 8.5.2.1.2); a resource that never
    sent initial presence is not sent any, and is not announced to contacts."""
    user, contact = new_users(server, "cu", "cuc")
    befriend(server, user, contact)
    c = online(server, contact)
    shy = online(server, user, "shy", presence=False)
    try:
        collect(c, 0.3)            # the answer to c's login probe
        presence(c, payload="<status>visible</status>")
        c.sync()
        quiet(shy, WINDOW, what="presence at a resource that is not available")
        quiet(c, 0.2, ignore=others(c), what="presence of a resource that never became available")
    finally:
        c.close()
        shy.close()


# ---------------------------------------------------------------- directed presence

def test_directed_presence_to_non_contact_then_unavailable_at_logout(server):
    """RFC 6121 4.6.3 rule 2: directed presence is delivered in full; later broadcasts do
    not go to that entity; when the sending resource goes offline it gets unavailable."""
    user, other = new_users(server, "dp", "dpo")
    o = online(server, other, "o")
    u = online(server, user, "u")
    try:
        presence(u, to=other, payload="<status>just for you</status>", id="dir1")
        p = wait_pres(o, u.jid)
        assert (pres_status(p), p.get("id")) == ("just for you", "dir1"), rc.show(p)
        presence(u, payload="<status>broadcast</status>")
        u.sync()
        quiet(o, WINDOW, ignore=others(o), what="a broadcast after directed presence (MUST NOT)")
        u.close()
        p = wait_pres(o, u.jid, "unavailable")
        quiet(o, 0.4, ignore=others(o))
    finally:
        o.close()
        u.close()


def test_directed_unavailable_clears_the_entry(server):
    """RFC 6121 4.6.1: directed unavailable removes the entity from the list; the later
    end of session sends it nothing."""
    user, other = new_users(server, "du", "duo")
    o = online(server, other)
    u = online(server, user)
    try:
        presence(u, to=other)
        wait_pres(o, u.jid)
        presence(u, to=other, type_="unavailable")
        wait_pres(o, u.jid, "unavailable")
        u.close()
        quiet(o, WINDOW, ignore=others(o), what="a second unavailable after directed unavailable")
    finally:
        o.close()
        u.close()


def test_directed_presence_from_unavailable_resource(server):
    """RFC 6121 4.6.3 rule 3: a connected (not available) resource's directed presence is
    tracked the same way: unavailable follows when the resource goes away."""
    user, other = new_users(server, "dn", "dno")
    o = online(server, other)
    u = online(server, user, presence=False)
    try:
        presence(u, to=other, payload="<status>hi</status>")
        wait_pres(o, u.jid)
        u.close()
        wait_pres(o, u.jid, "unavailable")
    finally:
        o.close()
        u.close()


def test_directed_presence_to_one_of_two_resources_only(server):
    """Directed presence to a full JID reaches that resource only."""
    user, other = new_users(server, "df", "dfo")
    o1 = online(server, other, "one")
    o2 = online(server, other, "two")
    u = online(server, user)
    try:
        presence(u, to=o1.jid, payload="<status>only one</status>")
        wait_pres(o1, u.jid)
        quiet(o2, WINDOW, ignore=others(o2), what="directed presence to another resource")
    finally:
        for x in (o1, o2, u):
            x.close()


# ---------------------------------------------------------------- leaks

def test_presence_never_leaks_to_non_subscribers(server):
    """A third user with no subscription sees nothing of a's and b's logins, changes,
    logouts; its own probe of a gets no available presence (4.3.2 rule 1: at most
    'unsubscribed' from the bare JID)."""
    a_jid, b_jid, t_jid = new_users(server, "la", "lb", "lt")
    befriend(server, a_jid, b_jid)
    t = online(server, t_jid)
    a = online(server, a_jid, "a")
    b = online(server, b_jid, "b")
    try:
        presence(a, payload="<show>away</show>")
        presence(b, payload="<status>hi a</status>")
        a.close()
        b.sync()
        quiet(t, WINDOW, ignore=others(t), what="presence of users it is not subscribed to")
        presence(t, to=b_jid, type_="probe", id="pr1")
        t.sync()
        for e in collect(t, WINDOW):
            if others(t)(e):
                continue
            assert is_pres(e, b_jid, "unsubscribed") or is_pres(e, b_jid, "error"), (
                f"a probe by a non-subscriber revealed something: {rc.show(e)}")
    finally:
        for x in (t, a, b):
            x.close()


# ---------------------------------------------------------------- priorities

def test_negative_priority_resource_gets_no_bare_jid_messages(server):
    """RFC 6121 8.5.2.1.1: never deliver to a resource with negative priority; if that is
    the only one, handle as if no resource were available (offline storage or an error),
    but still deliver presence to it (it is available)."""
    user, contact, sender = new_users(server, "neg", "negc", "negs")
    befriend(server, user, contact)
    low = online(server, user, "low", payload="<priority>-1</priority>")
    s = online(server, sender)
    c = online(server, contact)
    try:
        s.message(user, "to the bare jid, only negative", id="m-neg")
        try:
            el = s.wait_for(lambda e: e.get("id") == "m-neg", timeout=1.0)
            assert el.get("type") == "error", rc.show(el)
            assert rc.stanza_error(el)[1] == "service-unavailable", rc.show(el)
        except rc.Timeout:
            pass   # stored offline or dropped
        quiet(low, WINDOW, ignore=lambda e: is_pres(e), what="a message at a negative-priority resource")

        normal = online(server, user, "normal", payload="<priority>0</priority>")
        try:
            s.message(user, "to the bare jid, one non-negative", id="m-pos")
            normal.wait_message("to the bare jid, one non-negative")
            quiet(low, WINDOW, ignore=lambda e: is_pres(e), what="a message at a negative-priority resource")
            # presence still reaches the negative-priority resource
            presence(c, payload="<status>seen by all</status>")
            wait_pres(low, c.jid, status="seen by all")
            # a full-JID message still reaches it
            s.message(low.jid, "direct", id="m-dir")
            low.wait_message("direct")
        finally:
            normal.close()
    finally:
        for x in (low, s, c):
            x.close()


def test_priority_change_by_subsequent_presence(server):
    """The priority of the last presence counts: lowering one resource below another's
    moves bare-JID messages to the other."""
    user, sender = new_users(server, "pc", "pcs")
    r1 = online(server, user, "r1", payload="<priority>10</priority>")
    r2 = online(server, user, "r2", payload="<priority>5</priority>")
    s = login(server, sender, presence=True)
    try:
        s.message(user, "first")
        r1.wait_message("first")
        presence(r1, payload="<priority>-5</priority>")
        r1.sync()
        s.message(user, "second")
        r2.wait_message("second")
        quiet(r1, 0.5, ignore=lambda e: is_pres(e), what="a message after dropping to negative priority")
    finally:
        for x in (r1, r2, s):
            x.close()


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_sees_contact_come_and_go(server):
    """slixmpp's roster tracks a 'both' contact's resources: online at login (probe),
    status change, offline at logout."""
    import asyncio
    a_jid, b_jid = new_users(server, "xa", "xb")
    befriend(server, a_jid, b_jid)
    b_raw = online(server, b_jid, "raw", payload="<status>raw here</status>")

    async def scenario():
        a = sx.connect(a_jid, server.users[a_jid], server.port, "SCRAM-SHA-256", resource="slix")
        assert await a.started == "session"
        await a.client.get_roster(timeout=5)
        a.client.send_presence()

        async def until(cond, what, timeout=6):
            deadline = time.monotonic() + timeout
            while not cond():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                await asyncio.sleep(0.05)

        item = a.client.client_roster[b_jid]
        assert item["subscription"] == "both"
        await until(lambda: "raw" in item.resources, "b's resource from the probe")
        assert item.resources["raw"]["status"] == "raw here"
        presence(b_raw, payload="<status>changed</status>")
        await until(lambda: item.resources.get("raw", {}).get("status") == "changed",
                    "b's status change")
        b_raw.close()
        await until(lambda: "raw" not in item.resources, "b's unavailable presence")
    try:
        sx.run(scenario, timeout=30)
    finally:
        b_raw.close()


def test_replaced_session_does_not_announce_its_resource_gone(server):
    """A second login with the same resource replaces the first (RFC 6120 7.7.2.2). The
    resource lives on, so contacts must not get an unavailable for it that could overtake
    the new session's presence; they get the new session's presence instead."""
    a_jid, b_jid = new_users(server, "rpa", "rpb")
    befriend(server, a_jid, b_jid)
    a = online(server, a_jid, "watch")
    b1 = online(server, b_jid, "same", payload="<status>first</status>")
    try:
        wait_pres(a, f"{b_jid}/same", status="first")
        b2 = online(server, b_jid, "same", payload="<status>second</status>")
        try:
            b1.expect_stream_error("conflict")
            seen = [el for el in collect(a, 1.5) if is_pres(el, frm=f"{b_jid}/same")]
            types = [el.get("type", "available") for el in seen]
            assert "unavailable" not in types, [rc.show(e) for e in seen]
            assert any(pres_status(el) == "second" for el in seen), [rc.show(e) for e in seen]
        finally:
            b2.close()
    finally:
        a.close()
        b1.close()
