"""Client State Indication (XEP-0352): the <csi xmlns='urn:xmpp:csi:0'/> stream feature
once authenticated; while a client is inactive, presence (available and unavailable) and
messages with nothing but a chat state are held, a newer one from the same sender
replacing the older; anything else (a message with a body, an IQ, a subscription request)
goes out at once, after everything that was held; <active/> flushes what was held and
delivery is immediate again.

Setup: the watcher w has mutual subscriptions with two contacts c1 and c2 (fresh
accounts per test, flows.befriend). While w is inactive nothing may make the server send
w anything "urgent" by itself (a ping answer flushes), so held-checks only listen."""
import asyncio

import pytest

import rawclient as rc
import slixclient as sx
from flows import (NS_CHATSTATES, befriend, body_of, collect, is_message, is_pres,
                   new_users, online, pres_status, presence, send_iq, send_message, take,
                   take_all)
from rawclient import NS_CLIENT, q

NS_CSI = "urn:xmpp:csi:0"
WINDOW = 0.7
SOON = 2.0      # "at once": well within this, while held stanzas never come on their own


class Cast:
    def __init__(self, server, hint, contacts=2):
        self.server = server
        self.w, *self.contacts = new_users(server, hint, *[f"{hint}c{i}" for i in range(contacts)])
        for c in self.contacts:
            befriend(server, self.w, c)
        self.W = online(server, self.w, "w")
        self.C = [online(server, c, "c") for c in self.contacts]
        for s in self.C:
            s.sync()
        # w sees the contacts come online; none of that belongs to the test proper
        collect(self.W, 0.4)
        for s in self.C:
            collect(s, 0.1)

    def inactive(self):
        self.W.send(f"<inactive xmlns='{NS_CSI}'/>")
        self.W.sync()   # processed before anything the test sends next; nothing held yet

    def active(self):
        """<active/>, then a ping: what was held is flushed before the pong (XEP-0352
        section 6); returns every stanza that arrived, in order."""
        self.W.send(f"<active xmlns='{NS_CSI}'/>")
        self.W.sync()
        return collect(self.W, 0.3)

    def close(self):
        for s in (self.W, *self.C):
            s.close()


@pytest.fixture
def cast(server, request):
    c = Cast(server, "s" + request.node.name.removeprefix("test_")[:6].replace("_", ""))
    yield c
    c.close()


def status(c, text):
    presence(c, payload=f"<status>{text}</status>")
    c.sync()


def chat_state(c, to, state):
    send_message(c, to, f"<{state} xmlns='{NS_CHATSTATES}'/>")
    c.sync()


def held(cast):
    """Nothing reaches w while it is inactive."""
    cast.W.expect_nothing(WINDOW)


def from_(els, jid, pred=lambda e: True):
    return [e for e in els if e.get("from") == jid and pred(e)]


def state_of(el):
    names = [ch.tag.split("}", 1)[1] for ch in el if ch.tag.startswith("{" + NS_CHATSTATES)]
    return names[0] if len(names) == 1 else None


def is_state(el):
    return is_message(el) and state_of(el) is not None


# ---------------------------------------------------------------- stream feature

def test_feature_offered_once_authenticated(server):
    """Section 4: the server advertises <csi xmlns='urn:xmpp:csi:0'/> in the stream
    features after authentication (with <bind/>), not before."""
    c = rc.connect_tls(server.port)
    try:
        assert c.feature(NS_CSI, "csi") is None, f"CSI before authentication: {rc.show(c.features)}"
        res = c.auth_plain("alice", server.users["alice@localhost"])
        assert res.tag == q(rc.NS_SASL, "success"), rc.show(res)
        c.open_stream()
        assert c.feature(rc.NS_BIND, "bind") is not None, rc.show(c.features)
        assert c.feature(NS_CSI, "csi") is not None, f"no CSI feature: {rc.show(c.features)}"
    finally:
        c.close()


# ---------------------------------------------------------------- presence

def test_presence_updates_collapsed(cast):
    """Inactive: three presence updates from c1 are held; after <active/> w gets exactly
    one presence from c1, the last one."""
    c1 = cast.C[0]
    cast.inactive()
    for s in ("first", "second", "third"):
        status(c1, s)
    held(cast)
    got = from_(cast.active(), c1.jid, is_pres)
    assert [pres_status(p) for p in got] == ["third"], [rc.show(p) for p in got]


def test_presence_of_two_contacts(cast):
    """Held presence is collapsed per sender: updates from c1 and c2, interleaved, come
    out as the last one of each after <active/>."""
    c1, c2 = cast.C
    cast.inactive()
    status(c1, "c1 one")
    status(c2, "c2 one")
    status(c1, "c1 two")
    status(c2, "c2 two")
    held(cast)
    got = cast.active()
    assert [pres_status(p) for p in from_(got, c1.jid, is_pres)] == ["c1 two"], got
    assert [pres_status(p) for p in from_(got, c2.jid, is_pres)] == ["c2 two"], got


def test_unavailable_replaces_held_presence(cast):
    """Unavailable presence is held too, and replaces the held available presence of the
    same resource: a contact that changed status and then left shows up once, as gone."""
    c1 = cast.C[0]
    jid = c1.jid
    cast.inactive()
    status(c1, "about to leave")
    c1.close()
    held(cast)
    got = from_(cast.active(), jid, is_pres)
    assert [p.get("type") for p in got] == ["unavailable"], [rc.show(p) for p in got]


# ---------------------------------------------------------------- chat states

def test_chat_states_held_and_collapsed(cast):
    """Messages with only a chat state (XEP-0085) are held and collapsed per sender:
    c1's composing, active, paused and c2's composing come out as c1's paused and c2's
    composing after <active/>."""
    c1, c2 = cast.C
    cast.inactive()
    for state in ("composing", "active", "paused"):
        chat_state(c1, cast.W.jid, state)
    chat_state(c2, cast.w, "composing")
    held(cast)
    got = cast.active()
    assert [state_of(m) for m in from_(got, c1.jid, is_state)] == ["paused"], got
    assert [state_of(m) for m in from_(got, c2.jid, is_state)] == ["composing"], got


# ---------------------------------------------------------------- urgent stanzas

def test_message_with_body_flushes_held_first(cast):
    """While inactive, a message with a body goes out at once, and what was held (c1's
    presence and chat state) arrives before it; afterwards w is still inactive (c1's next
    presence is held again)."""
    c1, c2 = cast.C
    cast.inactive()
    status(c1, "held one")
    chat_state(c1, cast.W.jid, "composing")
    held(cast)
    c2.message(cast.W.jid, "important")
    (pres, state, msg), order = take_all(
        cast.W, [lambda e: is_pres(e, c1.jid), is_state, lambda e: is_message(e, "important")],
        timeout=SOON, what="the held stanzas and the message")
    assert pres_status(pres) == "held one", rc.show(pres)
    assert state.get("from") == c1.jid and state_of(state) == "composing", rc.show(state)
    assert order[-1] == 2, f"the message overtook held stanzas (arrival order {order})"
    status(c1, "held two")
    held(cast)
    got = from_(cast.active(), c1.jid, is_pres)
    assert [pres_status(p) for p in got] == ["held two"], [rc.show(p) for p in got]


def test_iq_goes_out_at_once(cast):
    """While inactive, an IQ to w arrives at once (after the held presence) and can be
    answered."""
    c1 = cast.C[0]
    cast.inactive()
    status(c1, "before the iq")
    held(cast)
    id = send_iq(c1, "get", cast.W.jid, "<query xmlns='jabber:iq:version'/>")
    (pres, iq), order = take_all(
        cast.W, [lambda e: is_pres(e, c1.jid), lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == id],
        timeout=SOON, what="the held presence and the iq")
    assert order == [0, 1], f"the iq overtook the held presence (arrival order {order})"
    assert pres_status(pres) == "before the iq", rc.show(pres)
    cast.W.send(f"<iq type='result' id='{id}' to='{c1.jid}'>"
                "<query xmlns='jabber:iq:version'><name>w</name><version>1</version></query></iq>")
    answer = take(c1, lambda e: e.get("id") == id, what="w's answer")
    assert answer.get("type") == "result", rc.show(answer)


def test_subscription_request_not_held(cast):
    """A subscription request (presence type subscribe) is not a state update: it reaches
    an inactive client at once."""
    cast.inactive()
    (stranger,) = new_users(cast.server, "sstr")
    s = online(cast.server, stranger, roster=False)
    try:
        presence(s, cast.w, "subscribe")
        p = take(cast.W, lambda e: is_pres(e, stranger, "subscribe", bare_from=True),
                 timeout=SOON, what="the subscription request")
        assert p.get("type") == "subscribe", rc.show(p)
    finally:
        s.close()


def test_active_makes_delivery_immediate(cast):
    """After <active/>, presence and chat states are delivered at once again."""
    c1 = cast.C[0]
    cast.inactive()
    status(c1, "while inactive")
    held(cast)
    got = from_(cast.active(), c1.jid, is_pres)
    assert [pres_status(p) for p in got] == ["while inactive"], got
    status(c1, "while active")
    p = take(cast.W, lambda e: is_pres(e, c1.jid), timeout=SOON, what="presence while active")
    assert pres_status(p) == "while active", rc.show(p)
    chat_state(c1, cast.W.jid, "composing")
    m = take(cast.W, is_state, timeout=SOON, what="a chat state while active")
    assert state_of(m) == "composing" and body_of(m) is None, rc.show(m)


# ---------------------------------------------------------------- slixmpp

def test_slixmpp_csi(server):
    """slixmpp's XEP-0352 plugin sees the feature and sends <inactive/>: a contact's
    presence updates do not reach it until it sends <active/>, then only the last one."""
    w, contact = new_users(server, "sslx", "sslxc")
    befriend(server, w, contact)

    async def scenario():
        s = sx.connect(w, server.users[w], server.port, "SCRAM-SHA-256", resource="slix")
        s.client.register_plugin("xep_0352")
        seen = asyncio.Queue()
        s.client.add_event_handler(
            "presence_available",
            lambda p: seen.put_nowait(p["status"]) if p["from"].bare == contact else None)
        assert await s.started == "session"
        s.client.send_presence()
        await s.client["xep_0199"].ping("localhost", timeout=5)
        assert s.client["xep_0352"].enabled, "slixmpp did not find the CSI feature"
        s.client["xep_0352"].send_inactive()
        await s.client["xep_0199"].ping("localhost", timeout=5)

        c = await asyncio.get_running_loop().run_in_executor(
            None, lambda: online(server, contact, "c"))
        try:
            for text in ("one", "two", "three"):
                await asyncio.get_running_loop().run_in_executor(None, status, c, text)
            await asyncio.sleep(WINDOW)
            assert seen.empty(), f"presence reached an inactive client: {seen.get_nowait()!r}"
            s.client["xep_0352"].send_active()
            await s.client["xep_0199"].ping("localhost", timeout=5)
            await asyncio.sleep(0.2)
            got = []
            while not seen.empty():
                got.append(seen.get_nowait())
            assert got == ["three"], got
        finally:
            c.close()
    sx.run(scenario)
