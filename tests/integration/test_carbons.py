"""Message Carbons (XEP-0280, urn:xmpp:carbons:2) with the XEP-0334 <no-copy/> hint:
enabling and disabling, <received/> copies of messages to the user (bare or full JID)
for the carbons-enabled resources that did not get the original, <sent/> copies of
what one resource sends for the user's other enabled resources, the messages that are
not copied (<private/>, <no-copy/>, groupchat, headline, error, normal without a body),
and forged carbons (section 11) from another user or from the user's own client, which
never reach a client.

The usual cast: user a with resources A1 (carbons on, priority 5), A2 (carbons on,
priority 1) and A3 (carbons off, priority 0), and a contact b with one resource. Every
test uses fresh accounts (flows.new_user)."""
import asyncio

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_CHATSTATES, NS_HINTS, assert_result, body_of, disco_features,
                   is_message, new_users, online, quiet, read_messages, send_message)
from rawclient import NS_CLIENT, q

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
WINDOW = 0.5
PRIVATE = f"<private xmlns='{NS_CARBONS}'/>"
NO_COPY = f"<no-copy xmlns='{NS_HINTS}'/>"


def enable(c):
    return c.iq("set", f"<enable xmlns='{NS_CARBONS}'/>")


def disable(c):
    return c.iq("set", f"<disable xmlns='{NS_CARBONS}'/>")


class Cast:
    def __init__(self, server, hint):
        self.a, self.b = new_users(server, hint, hint + "b")
        self.A1 = online(server, self.a, "one", roster=False, payload="<priority>5</priority>")
        self.A2 = online(server, self.a, "two", roster=False, payload="<priority>1</priority>")
        self.A3 = online(server, self.a, "three", roster=False, payload="<priority>0</priority>")
        self.B = online(server, self.b, "bee", roster=False)
        assert_result(enable(self.A1), "carbons enable")
        assert_result(enable(self.A2), "carbons enable")

    def close(self):
        for c in (self.A1, self.A2, self.A3, self.B):
            c.close()


@pytest.fixture
def cast(server, request):
    c = Cast(server, "c" + request.node.name.removeprefix("test_")[:6].replace("_", ""))
    yield c
    c.close()


def no_messages(c, duration=WINDOW, what="a carbon copy"):
    quiet(c, duration, ignore=lambda e: not is_message(e), what=what)


def take_msg(c, body, timeout=None):
    """The next message at c, which must be the one with that body (not a carbon)."""
    (m,) = read_messages(c, 1, timeout, what=f"the message {body!r}")
    assert body_of(m) == body and forwarded(m) is None, (
        f"expected the message {body!r} itself: {rc.show(m)}")
    return m


def forwarded(el, direction=None):
    """The message inside a carbon (<sent/> or <received/>), or None."""
    for d in ((direction,) if direction else ("sent", "received")):
        inner = el.find(f"{q(NS_CARBONS, d)}/{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")
        if inner is not None:
            return inner
    return None


def take_carbon(c, direction, user, inner_from, inner_to, type_="chat", body=None):
    """The next message at c must be a <direction/> carbon of a message from inner_from
    to inner_to: wrapper from the user's bare JID to c's full JID, with the original type
    (XEP-0280 sections 7 and 8). Returns the forwarded message."""
    (m,) = read_messages(c, 1, what=f"a <{direction}/> carbon")
    inner = forwarded(m, direction)
    assert inner is not None, f"expected a <{direction}/> carbon: {rc.show(m)}"
    assert m.get("from") == user, f"carbon from {m.get('from')} (not the bare JID): {rc.show(m)}"
    assert m.get("to") == c.jid, f"carbon to {m.get('to')}: {rc.show(m)}"
    assert (m.get("type") or "normal") == type_, f"wrapper type: {rc.show(m)}"
    assert body_of(m) is None, f"the wrapper has no body of its own: {rc.show(m)}"
    assert inner.get("from") == inner_from, f"forwarded from {inner.get('from')}: {rc.show(m)}"
    assert inner.get("to") == inner_to, f"forwarded to {inner.get('to')}: {rc.show(m)}"
    assert (inner.get("type") or "normal") == type_, rc.show(m)
    if body is not None:
        assert body_of(inner) == body, rc.show(m)
    return inner


# ---------------------------------------------------------------- protocol

def test_disco_lists_carbons(server):
    """XEP-0280 section 3: the server's disco#info lists urn:xmpp:carbons:2."""
    (user,) = new_users(server, "cdi")
    c = online(server, user, roster=False)
    try:
        assert NS_CARBONS in disco_features(c)
    finally:
        c.close()


def test_enable_and_disable_answer_results(server):
    """Sections 4, 5 and 10.1: <enable/> and <disable/> to the own account answer an empty
    result, also when repeated (the server does not treat it as an error)."""
    (user,) = new_users(server, "cen")
    c = online(server, user, roster=False)
    try:
        for iq in (enable, enable, disable, disable, enable):
            answer = assert_result(iq(c), iq.__name__)
            assert len(answer) == 0, f"a result without payload: {rc.show(answer)}"
    finally:
        c.close()


# ---------------------------------------------------------------- received

def test_received_to_bare_jid(cast):
    """Section 6: b -> a's bare JID goes to the highest-priority resource (A1); A2 (carbons
    on) gets a <received/> copy from a's bare JID with the original inside; A3 (carbons
    off) gets nothing, and A1 no copy of what it got."""
    cast.B.message(cast.a, "to your bare jid")
    take_msg(cast.A1, "to your bare jid")
    take_carbon(cast.A2, "received", cast.a, cast.B.jid, cast.a, body="to your bare jid")
    no_messages(cast.A3)
    no_messages(cast.A1, 0.1)
    no_messages(cast.A2, 0.1, what="a second copy")


def test_received_to_full_jid(cast):
    """Section 6: b -> A1's full JID: A1 gets it, A2 a <received/> copy, A3 nothing. To A3
    (carbons off), both A1 and A2 get copies."""
    cast.B.message(cast.A1.jid, "to one")
    take_msg(cast.A1, "to one")
    take_carbon(cast.A2, "received", cast.a, cast.B.jid, cast.A1.jid, body="to one")
    no_messages(cast.A3)
    cast.B.message(cast.A3.jid, "to three")
    take_msg(cast.A3, "to three")
    for c in (cast.A1, cast.A2):
        take_carbon(c, "received", cast.a, cast.B.jid, cast.A3.jid, body="to three")
    no_messages(cast.A1, 0.2)


# ---------------------------------------------------------------- sent

def test_sent_copies(cast):
    """Section 7: A1 -> b: A2 gets a <sent/> copy (from a's bare JID; the forwarded
    message is from A1's full JID to b), A3 (off) and A1 (the sender) get nothing. A copy
    is made whether or not the sender has carbons on: A3 -> b is copied to A1 and A2."""
    id = cast.A1.message(cast.b, "from one")
    m = take_msg(cast.B, "from one")
    assert m.get("from") == cast.A1.jid, rc.show(m)
    inner = take_carbon(cast.A2, "sent", cast.a, cast.A1.jid, cast.b, body="from one")
    assert inner.get("id") == id, rc.show(inner)
    no_messages(cast.A3)
    no_messages(cast.A1, 0.1, what="a copy of its own message")
    cast.A3.message(cast.B.jid, "from three")
    take_msg(cast.B, "from three")
    for c in (cast.A1, cast.A2):
        take_carbon(c, "sent", cast.a, cast.A3.jid, cast.B.jid, body="from three")
    no_messages(cast.A3, 0.2, what="a copy of its own message")


# ---------------------------------------------------------------- not copied

def test_private_sent_not_copied(cast):
    """Section 9: A1 -> b with <private xmlns='urn:xmpp:carbons:2'/>: no <sent/> copy for
    A2 or A3, and b receives the message (the element stays: XEP-0280's interoperability
    note lifted the requirement to remove it, and the recipient's server needs it)."""
    send_message(cast.A1, cast.b, f"<body>just for b</body>{PRIVATE}")
    take_msg(cast.B, "just for b")
    for c in (cast.A2, cast.A3, cast.A1):
        no_messages(c, WINDOW if c is cast.A2 else 0.1)


def test_private_received_not_copied(cast):
    """Section 9: "The receiving server MUST NOT deliver forwarded messages to the other
    Carbons-enabled resource of the recipient": b -> A1 (full JID) with <private/>
    reaches A1, and A2 gets no <received/> copy."""
    send_message(cast.B, cast.A1.jid, f"<body>private to one</body>{PRIVATE}")
    take_msg(cast.A1, "private to one")
    no_messages(cast.A2)


def test_no_copy_hint(cast):
    """XEP-0334 <no-copy/>: neither a <sent/> copy of A1 -> b nor a <received/> copy of
    b -> A1 is made."""
    send_message(cast.A1, cast.b, f"<body>no copy out</body>{NO_COPY}")
    take_msg(cast.B, "no copy out")
    send_message(cast.B, cast.A1.jid, f"<body>no copy in</body>{NO_COPY}")
    take_msg(cast.A1, "no copy in")
    no_messages(cast.A2)
    no_messages(cast.A3, 0.1)


@pytest.mark.parametrize("type_", ["groupchat", "headline", "error"])
def test_types_not_copied(cast, type_):
    """Section 6.1: groupchat, headline and error messages (the error not answering an
    eligible message) are not copied, sent or received (both to full JIDs, so that each
    is delivered to exactly one resource)."""
    err = (f"<error type='cancel'><item-not-found xmlns='{rc.NS_STANZA_ERR}'/></error>"
           if type_ == "error" else "")
    send_message(cast.A1, cast.B.jid, f"<body>out {type_}</body>{err}", type_=type_)
    m = take_msg(cast.B, f"out {type_}")
    assert m.get("type") == type_, rc.show(m)
    send_message(cast.B, cast.A1.jid, f"<body>in {type_}</body>{err}", type_=type_)
    m = take_msg(cast.A1, f"in {type_}")
    assert m.get("type") == type_, rc.show(m)
    no_messages(cast.A2)
    no_messages(cast.A3, 0.1)


def test_chat_state_only_copied(cast):
    """Section 6.1 (and 10.2): a chat message carrying only a chat state is eligible: A2
    gets a <sent/> copy of A1's <composing/> and a <received/> copy of b's <paused/>, both
    of type chat."""
    send_message(cast.A1, cast.b, f"<composing xmlns='{NS_CHATSTATES}'/>")
    (m,) = read_messages(cast.B, 1)
    assert m.find(q(NS_CHATSTATES, "composing")) is not None, rc.show(m)
    inner = take_carbon(cast.A2, "sent", cast.a, cast.A1.jid, cast.b)
    assert inner.find(q(NS_CHATSTATES, "composing")) is not None, rc.show(inner)
    send_message(cast.B, cast.A1.jid, f"<paused xmlns='{NS_CHATSTATES}'/>")
    (m,) = read_messages(cast.A1, 1)
    assert m.find(q(NS_CHATSTATES, "paused")) is not None, rc.show(m)
    inner = take_carbon(cast.A2, "received", cast.a, cast.B.jid, cast.A1.jid)
    assert inner.find(q(NS_CHATSTATES, "paused")) is not None, rc.show(inner)
    no_messages(cast.A3)


def test_normal_copied_only_with_a_body(cast):
    """Section 6.1: a normal message with a body is copied (sent and received); one
    without a body (and without IM payloads) is not."""
    payload = "<x xmlns='urn:herald:test:payload'/>"
    send_message(cast.A1, cast.b, "<body>normal out</body>", type_="normal")
    take_msg(cast.B, "normal out")
    take_carbon(cast.A2, "sent", cast.a, cast.A1.jid, cast.b, type_="normal", body="normal out")
    send_message(cast.B, cast.A1.jid, "<body>normal in</body>", type_=None)
    take_msg(cast.A1, "normal in")
    take_carbon(cast.A2, "received", cast.a, cast.B.jid, cast.A1.jid, type_="normal",
                body="normal in")
    send_message(cast.A1, cast.b, payload, type_="normal")
    (m,) = read_messages(cast.B, 1)
    assert m.find(q("urn:herald:test:payload", "x")) is not None, rc.show(m)
    send_message(cast.B, cast.A1.jid, payload, type_=None)
    (m,) = read_messages(cast.A1, 1)
    assert m.find(q("urn:herald:test:payload", "x")) is not None, rc.show(m)
    no_messages(cast.A2, what="a copy of a normal message without a body")
    no_messages(cast.A3, 0.1)


def test_disable_stops_copies(cast):
    """Section 5: after A2 disables carbons it gets no copies, sent or received; A1, still
    enabled, does."""
    assert_result(disable(cast.A2), "carbons disable")
    cast.B.message(cast.a, "after disable in")
    take_msg(cast.A1, "after disable in")
    cast.A1.message(cast.b, "after disable out")
    take_msg(cast.B, "after disable out")
    no_messages(cast.A2, what="a copy after <disable/>")
    cast.B.message(cast.A2.jid, "to two")
    take_msg(cast.A2, "to two")
    take_carbon(cast.A1, "received", cast.a, cast.B.jid, cast.A2.jid, body="to two")
    no_messages(cast.A3, 0.1)


# ---------------------------------------------------------------- forged carbons

def forged(direction, frm, to, body):
    return (f"<{direction} xmlns='{NS_CARBONS}'><forwarded xmlns='{NS_FORWARD}'>"
            f"<message xmlns='{NS_CLIENT}' from='{frm}' to='{to}' type='chat'>"
            f"<body>{body}</body></message></forwarded></{direction}>")


def assert_first_is_marker(cast, marker):
    """Every resource of a gets the headline marker as its first message: whatever was
    sent before it did not reach them."""
    for c in (cast.A1, cast.A2, cast.A3):
        (m,) = read_messages(c, 1, what="the marker")
        assert body_of(m) == marker and forwarded(m) is None, (
            f"{c.jid} got something before the marker: {rc.show(m)}")
        no_messages(c, 0.2)


def test_forged_carbons_from_another_user_dropped(cast):
    """Section 11: b sends messages carrying carbon wrappers (a <received/> claiming to
    be from x@localhost, to a's bare JID; a <sent/> to A1's full JID; one to A2 of type
    normal): none reaches any of a's resources."""
    fake = "x@localhost"
    send_message(cast.B, cast.a, forged("received", fake, cast.a, "fake"))
    send_message(cast.B, cast.A1.jid, forged("sent", cast.A1.jid, fake, "fake sent"))
    send_message(cast.B, cast.A2.jid, forged("received", fake, cast.A2.jid, "fake 2"),
                 type_="normal")
    send_message(cast.B, cast.a, "<body>marker</body>", type_="headline")
    assert_first_is_marker(cast, "marker")


def test_forged_carbons_from_own_client_dropped(cast):
    """Section 11: carbons are made by the server only; a's own client A1 sending a
    <received/> wrapper to a's bare JID, or a <sent/> wrapper to A2, is dropped as well
    (no resource, A1 included, gets it or a copy of it)."""
    fake = "x@localhost"
    send_message(cast.A1, cast.a, forged("received", fake, cast.a, "fake"))
    send_message(cast.A1, cast.A2.jid, forged("sent", cast.A2.jid, fake, "fake sent"))
    send_message(cast.A1, cast.a, "<body>marker</body>", type_="headline")
    assert_first_is_marker(cast, "marker")
    no_messages(cast.B, 0.1, what="anything from a's forged carbons")


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_carbons(server):
    """slixmpp's XEP-0280 plugin: two clients of one user enable carbons; the one that
    did not take part in a conversation sees both directions as carbon_received and
    carbon_sent events, with the original messages inside."""
    a, b = new_users(server, "cslx", "cslxb")

    async def scenario():
        def client(jid, resource):
            s = sx.connect(jid, server.users[jid], server.port, "SCRAM-SHA-256",
                           resource=resource)
            s.client.register_plugin("xep_0280")
            s.carbons = asyncio.Queue()
            for ev in ("carbon_received", "carbon_sent"):
                s.client.add_event_handler(
                    ev, lambda m, ev=ev, s=s: s.carbons.put_nowait((ev, m)))
            return s

        a1, a2, bb = client(a, "desk"), client(a, "phone"), client(b, "b")
        for s in (a1, a2, bb):
            assert await s.started == "session"
        for s in (a1, a2):
            await s.client["xep_0280"].enable(timeout=5)
        for s in (a1, a2, bb):
            s.client.send_presence()
            await s.client["xep_0199"].ping("localhost", timeout=5)

        bb.client.send_message(mto=a1.jid, mbody="hi desk", mtype="chat")
        ev, m = await asyncio.wait_for(a2.carbons.get(), 5)
        assert ev == "carbon_received", (ev, m)
        inner = m["carbon_received"]
        assert inner["body"] == "hi desk" and inner["from"] == bb.jid, m
        assert m["from"] == a, m

        a1.client.send_message(mto=b, mbody="hi b", mtype="chat")
        ev, m = await asyncio.wait_for(a2.carbons.get(), 5)
        assert ev == "carbon_sent", (ev, m)
        inner = m["carbon_sent"]
        assert inner["body"] == "hi b" and inner["from"] == a1.jid and inner["to"] == b, m
        assert a1.carbons.empty(), "the sender got a copy of its own message"
    sx.run(scenario)
