"""XEP-0198 stream management: acknowledgements, resumption after an abrupt disconnect,
what happens to unacknowledged stanzas when a session is not resumed, and the edge cases
(h too high, unknown or foreign SM-IDs, two resumptions racing for one session).

Raw sockets throughout: the tests decide exactly which stanzas the client has "handled"
(counted in h) before its connection breaks.
"""
import socket
import threading
import time

import pytest

import flows
import rawclient
from rawclient import NS_CLIENT, NS_SASL, q, show, stanza_error

NS_SM = "urn:xmpp:sm:3"
NS_DELAY = "urn:xmpp:delay"

RESUME_TIMEOUT = 3
HERALD_CONFIG = {"stream_management": {"resume_timeout": RESUME_TIMEOUT, "max_unacked": 50}}

STANZAS = {q(NS_CLIENT, n) for n in ("message", "presence", "iq")}


class Sm:
    """A raw client with stream management: counts every stanza the test has taken off
    the stream (that is the client's 'h'), answers nothing by itself."""

    def __init__(self, client):
        self.c = client
        self.h = 0
        original = client.next

        def counting_next(timeout=None):
            el = original(timeout)
            if el.tag in STANZAS:
                self.h += 1
            return el
        client.next = counting_next

    def enable(self, resume=True):
        self.c.send(f"<enable xmlns='{NS_SM}'" + (" resume='true'" if resume else "") + "/>")
        el = self.c.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")),
                             what="<enabled/>")
        assert el.tag == q(NS_SM, "enabled"), show(el)
        self.id = el.get("id")
        return el

    def ack_request(self):
        """Sends <r/>; returns the server's h."""
        self.c.send(f"<r xmlns='{NS_SM}'/>")
        a = self.c.wait_for(lambda e: e.tag == q(NS_SM, "a"), what="<a/>")
        return int(a.get("h"))

    def ack(self):
        self.c.send(f"<a xmlns='{NS_SM}' h='{self.h}'/>")

    def messages(self, duration=1.0):
        """Bodies of the messages that arrive within duration (in order)."""
        out = []
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                el = self.c.next(remaining)
            except rawclient.Timeout:
                return out
            if el.tag == q(NS_CLIENT, "message") and el.findtext(q(NS_CLIENT, "body")) is not None:
                out.append(el)


def cut(client):
    """The connection breaks without </stream:stream> (a phone losing its network)."""
    try:
        client.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    client.sock.close()


def authenticated(server, user, password):
    """TLS + SASL + restarted stream, not bound: ready for <resume/> or <bind/>."""
    c = rawclient.connect_tls(server.port)
    res = c.auth_plain(user.split("@")[0], password)
    assert res.tag == q(NS_SASL, "success"), show(res)
    c.open_stream(to="localhost")
    return c


def resume(c, previd, h):
    c.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='{h}'/>")
    return c.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")), what="<resumed/>|<failed/>")


def failed_condition(el):
    assert el.tag == q(NS_SM, "failed"), show(el)
    return [c.tag.split("}", 1)[1] for c in el][0]


def stored_messages(port, user, password, count, timeout=5):
    """Logs in as user, sends initial presence and returns the first `count` messages that
    arrive (offline storage), then closes."""
    c = rawclient.login(port, user.split("@")[0], password)
    c.send("<presence/>")
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.append(c.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=timeout,
                              what=f"stored message {len(got) + 1} of {count} for {user}"))
    c.close()
    return got


def bodies(messages):
    return [e.findtext(q(NS_CLIENT, "body")) for e in messages]


@pytest.fixture(scope="module")
def users(server):
    made = {}

    def make(name):
        jid = f"{name}@localhost"
        if jid not in made:
            server.add_user(jid, f"{name}-pw")
            server.users[jid] = f"{name}-pw"
            made[jid] = f"{name}-pw"
        return jid, made[jid]
    return make


def login(server, users, name, **kw):
    jid, pw = users(name)
    return rawclient.login(server.port, name, pw, **kw)


def test_feature_enable_and_counters(server, users):
    """<sm/> is offered after SASL; <enable resume='true'/> gives an SM-ID and the resume
    timeout; the server's h counts exactly the stanzas the client sent, and after sending
    stanzas the server asks for an acknowledgement."""
    jid, pw = users("sm1")
    c = authenticated(server, jid, pw)
    assert c.feature(NS_SM, "sm") is not None, show(c.features)
    answer = c.bind("r1")
    assert answer.get("type") == "result"
    sm = Sm(c)
    el = sm.enable()
    assert el.get("resume") in ("true", "1")
    assert len(el.get("id", "")) >= 16
    assert el.get("max") == str(RESUME_TIMEOUT)
    assert sm.ack_request() == 0
    for _ in range(3):
        c.sync()
    assert sm.ack_request() == 3
    # The server sent pongs: it asked us to acknowledge them (one <r/> outstanding at a time).
    assert [e for e in c.skipped if e.tag == q(NS_SM, "r")], "no <r/> from the server"
    c.close()


def test_enable_before_bind_is_refused(server, users):
    """XEP-0198 §3: enabling before resource binding fails with unexpected-request."""
    jid, pw = users("sm2")
    c = authenticated(server, jid, pw)
    c.send(f"<enable xmlns='{NS_SM}'/>")
    el = c.wait_for(lambda e: e.tag in (q(NS_SM, "failed"), q(NS_SM, "enabled")))
    assert failed_condition(el) == "unexpected-request"
    assert c.bind().get("type") == "result"
    c.close()


def test_enable_twice_is_refused(server, users):
    c = login(server, users, "sm3")
    sm = Sm(c)
    sm.enable()
    c.send(f"<enable xmlns='{NS_SM}'/>")
    el = c.wait_for(lambda e: e.tag in (q(NS_SM, "failed"), q(NS_SM, "enabled")))
    assert failed_condition(el) == "unexpected-request"
    c.close()


def test_handled_count_too_high(server, users):
    """An <a/> acknowledging more than was sent: undefined-condition stream error with
    <handled-count-too-high h=... send-count=.../>."""
    c = login(server, users, "sm4")
    sm = Sm(c)
    sm.enable()
    c.sync()  # one pong sent
    c.send(f"<a xmlns='{NS_SM}' h='5'/>")
    err = c.wait_for(lambda e: e.tag == q(rawclient.NS_STREAM, "error"), what="stream error")
    too_high = err.find(q(NS_SM, "handled-count-too-high"))
    assert err.find(q(rawclient.NS_STREAM_ERR, "undefined-condition")) is not None, show(err)
    assert too_high is not None, show(err)
    assert too_high.get("h") == "5" and too_high.get("send-count") == "1", show(err)
    c.expect_closed()


def test_resume_delivers_unacknowledged_exactly_once(server, users):
    """A resumable session whose connection breaks keeps its place: messages sent to it
    meanwhile, and those it received but did not count as handled, arrive exactly once
    after <resume/>; what it had handled is not sent again; its contact never saw it go
    offline; <resumed h=...> tells the client what the server had handled."""
    a = login(server, users, "sm5a", resource="phone")
    b = login(server, users, "sm5b")
    a_jid, b_jid = a.jid.split("/")[0], b.jid.split("/")[0]
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    b.send_presence()
    b.message(a_jid, "m1")
    b.message(a_jid, "m2")
    got = [el.findtext(q(NS_CLIENT, "body")) for el in sm.messages(1.0)]
    assert got == ["m1", "m2"]
    # The client handled m1 but the network died before it could process m2: it counts
    # nothing after m1 (the pong below included).
    handled = sm.h - 1
    a.message(b_jid, "from-a")  # the server handles this before the cut
    a.sync()
    sm.h = handled
    sent_by_a = 4  # presence and its sync ping, the message, a ping
    cut(a)
    time.sleep(0.3)
    b.message(a_jid, "m3")
    b.message(a_jid, "m4")
    b.sync()

    a2 = authenticated(server, *users("sm5a"))
    assert a2.feature(NS_SM, "sm") is not None
    el = resume(a2, sm.id, sm.h)
    assert el.tag == q(NS_SM, "resumed"), show(el)
    assert el.get("previd") == sm.id
    assert el.get("h") == str(sent_by_a), show(el)
    sm2 = Sm(a2)
    sm2.h = sm.h
    bodies = [e.findtext(q(NS_CLIENT, "body")) for e in sm2.messages(1.5)]
    assert bodies == ["m2", "m3", "m4"], bodies
    for e in sm2.messages(0.1):
        pass
    # Still the same full JID, still reachable, and the contact never saw it leave.
    b.message(a.jid, "m5")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm2.messages(1.0)] == ["m5"]
    assert not [e for e in b.skipped + list(b.pending)
                if e.tag == q(NS_CLIENT, "presence") and e.get("type") == "unavailable"
                and (e.get("from") or "").startswith(a_jid)]
    b.expect_nothing(0.5, ignore=lambda e: not (e.tag == q(NS_CLIENT, "presence")
                                                and e.get("type") == "unavailable"))
    a2.close()
    b.close()


def test_resume_timeout_sends_unacknowledged_to_offline_storage(server, users):
    """Not resumed within resume_timeout: the session ends (contacts see unavailable), and
    every message the client had not acknowledged (sent before and during the outage) goes
    where a message to an unavailable user goes: offline storage, delivered at the next
    login with a <delay/> stamp."""
    a_jid, _ = users("sm6a")
    b_jid, _ = users("sm6b")
    flows.befriend(server, a_jid, b_jid)  # b sees a's presence
    a = login(server, users, "sm6a")
    b = login(server, users, "sm6b")
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    b.send_presence()
    b.message(a_jid, "before-cut")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm.messages(1.0)] == ["before-cut"]
    cut(a)  # never acknowledged
    time.sleep(0.3)
    b.message(a_jid, "during-outage")
    b.sync()
    unavailable = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("type") == "unavailable"
                             and (e.get("from") or "").startswith(a_jid), timeout=RESUME_TIMEOUT + 5,
                             what="unavailable presence of the expired session")
    assert unavailable is not None
    got = stored_messages(server.port, *users("sm6a"), 2, timeout=3)
    assert bodies(got) == ["before-cut", "during-outage"]
    for e in got:
        delay = e.find(q(NS_DELAY, "delay"))
        assert delay is not None and delay.get("stamp"), show(e)
    # And the old SM-ID is gone.
    a3 = authenticated(server, *users("sm6a"))
    assert failed_condition(resume(a3, sm.id, sm.h)) == "item-not-found"
    a3.close()
    b.close()


def test_unacknowledged_iq_is_bounced_on_timeout(server, users):
    """An IQ request delivered to a session that then dies unresumed is answered with an
    error for the requester (it would otherwise wait forever)."""
    a = login(server, users, "sm7a", resource="r")
    b = login(server, users, "sm7b")
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    cut(a)
    time.sleep(0.3)
    b.send(f"<iq type='get' id='q1' to='{a.jid}'><query xmlns='jabber:iq:version'/></iq>")
    answer = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == "q1",
                        timeout=RESUME_TIMEOUT + 5, what="the bounced iq")
    assert answer.get("type") == "error", show(answer)
    assert stanza_error(answer)[1] == "service-unavailable"
    b.close()


def test_resume_unknown_or_foreign_id(server, users):
    """An unknown SM-ID, or another account's SM-ID, fails with item-not-found and the
    stream goes on: the client can still bind normally."""
    a = login(server, users, "sm8a")
    sm = Sm(a)
    sm.enable()
    cut(a)
    other = authenticated(server, *users("sm8b"))
    assert failed_condition(resume(other, sm.id, 0)) == "item-not-found"
    assert failed_condition(resume(other, "no-such-id", 0)) == "item-not-found"
    assert other.bind().get("type") == "result"
    other.close()
    # The owner can still resume it (the foreign attempt did not consume it).
    mine = authenticated(server, *users("sm8a"))
    assert resume(mine, sm.id, 0).tag == q(NS_SM, "resumed")
    mine.close()


def test_resume_with_h_too_high(server, users):
    """<resume h=...> acknowledging more than the old session sent: the stream closes with
    handled-count-too-high; the session itself stays resumable."""
    a = login(server, users, "sm9")
    sm = Sm(a)
    sm.enable()
    cut(a)
    bad = authenticated(server, *users("sm9"))
    resume_el = f"<resume xmlns='{NS_SM}' previd='{sm.id}' h='1000'/>"
    bad.send(resume_el)
    err = bad.wait_for(lambda e: e.tag == q(rawclient.NS_STREAM, "error"), what="stream error")
    assert err.find(q(NS_SM, "handled-count-too-high")) is not None, show(err)
    good = authenticated(server, *users("sm9"))
    assert resume(good, sm.id, 0).tag == q(NS_SM, "resumed")
    good.close()


def test_resume_takes_over_a_connection_not_yet_noticed_dead(server, users):
    """The client reconnects before the server noticed the old connection died: resuming
    closes the old connection and moves the session, unacknowledged stanzas included."""
    a = login(server, users, "sm10a", resource="r")
    b = login(server, users, "sm10b")
    a_jid = a.jid.split("/")[0]
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    b.message(a_jid, "x1")
    b.sync()
    time.sleep(0.3)  # x1 is on the wire to the old connection, never read
    a2 = authenticated(server, *users("sm10a"))
    el = resume(a2, sm.id, sm.h)
    assert el.tag == q(NS_SM, "resumed"), show(el)
    sm2 = Sm(a2)
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm2.messages(1.0)] == ["x1"]
    assert a.wait_closed(5), "the old connection was not closed"
    a2.close()
    b.close()


def test_two_resumptions_race_one_session(server, users):
    """Two connections resume the same session at once: the session ends up on exactly one
    of them, which then receives what is sent to the session; a loser gets <failed/>
    (item-not-found) or, if it had won first, is disconnected. Nothing crashes."""
    a = login(server, users, "sm11a", resource="r")
    b = login(server, users, "sm11b")
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    cut(a)
    time.sleep(0.2)
    c1 = authenticated(server, *users("sm11a"))
    c2 = authenticated(server, *users("sm11a"))
    barrier = threading.Barrier(2)
    results = {}

    def go(name, c):
        barrier.wait()
        c.send(f"<resume xmlns='{NS_SM}' previd='{sm.id}' h='{sm.h}'/>")
    threads = [threading.Thread(target=go, args=(n, c)) for n, c in (("c1", c1), ("c2", c2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, c in (("c1", c1), ("c2", c2)):
        try:
            results[name] = c.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
        except rawclient.StreamClosed:
            # It won first and was taken over by the other at once (XEP-0198 §5: a newer
            # resumption replaces the connection); its socket was closed.
            results[name] = None
    conns = {"c1": c1, "c2": c2}
    won = [n for n, el in results.items() if el is not None and el.tag == q(NS_SM, "resumed")]
    lost = [n for n, el in results.items() if el is not None and el.tag == q(NS_SM, "failed")]
    closed = [n for n, el in results.items() if el is None]
    assert won, {n: show(el) for n, el in results.items()}
    if lost:
        assert len(won) == 1 and failed_condition(results[lost[0]]) == "item-not-found"
        assert conns[lost[0]].bind().get("type") == "result"  # the loser's stream goes on
        holder = conns[won[0]]
    else:
        # One after the other: the first holder's connection was closed by the second.
        if not closed:
            closed = [n for n, c in conns.items() if c.wait_closed(3)]
        assert len(closed) == 1, results
        holder = conns["c2" if closed[0] == "c1" else "c1"]
    b.message(a.jid, "after-race")
    assert holder.wait_message("after-race").findtext(q(NS_CLIENT, "body")) == "after-race"
    for c in (c1, c2, b):
        c.close()


def test_non_resumable_session_ends_at_once(server, users):
    """SM without resume: a broken connection ends the session immediately; unacknowledged
    messages go to offline storage."""
    a = login(server, users, "sm12a")
    b = login(server, users, "sm12b")
    a_jid = a.jid.split("/")[0]
    sm = Sm(a)
    sm.enable(resume=False)
    a.send_presence()
    b.message(a_jid, "n1")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm.messages(1.0)] == ["n1"]
    cut(a)
    time.sleep(1.0)
    assert bodies(stored_messages(server.port, *users("sm12a"), 1)) == ["n1"]
    b.close()


def test_clean_close_sends_unacknowledged_to_offline_storage(server, users):
    """A client that closes its stream cleanly ends the session (no resumption), and what
    it never acknowledged is stored offline rather than lost."""
    a = login(server, users, "sm13a")
    b = login(server, users, "sm13b")
    a_jid = a.jid.split("/")[0]
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    b.message(a_jid, "c1")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm.messages(1.0)] == ["c1"]
    a.close()
    time.sleep(1.0)
    again = authenticated(server, *users("sm13a"))
    assert failed_condition(resume(again, sm.id, 0)) == "item-not-found"
    again.close()
    assert bodies(stored_messages(server.port, *users("sm13a"), 1)) == ["c1"]
    b.close()


def test_too_many_unacknowledged_stanzas_end_the_session(server, users):
    """A client that never acknowledges is bounded by max_unacked (50 here): the stream is
    closed with policy-violation and the messages are kept offline, not dropped."""
    a = login(server, users, "sm14a")
    b = login(server, users, "sm14b")
    a_jid = a.jid.split("/")[0]
    sm = Sm(a)
    sm.enable()
    a.send_presence()
    for i in range(60):
        b.message(a_jid, f"flood{i}")
    b.sync()
    a.expect_stream_error("policy-violation", timeout=5)
    time.sleep(0.5)
    assert bodies(stored_messages(server.port, *users("sm14a"), 60)) == [f"flood{i}" for i in range(60)]
    b.close()


def test_slixmpp_resumes_after_losing_its_connection(server, users):
    """A real client (slixmpp's XEP-0198 plugin): it enables resumable stream management by
    itself, loses its TCP connection, reconnects and resumes; the message sent to it while
    it was away arrives once, and it is still the same full JID."""
    import asyncio
    import slixclient as sx
    jid, pw = users("sm15a")
    b = login(server, users, "sm15b")

    async def scenario():
        s = sx.connect(jid, pw, server.port, "SCRAM-SHA-256", resource="phone")
        s.client.register_plugin("xep_0198")
        enabled, resumed = asyncio.Event(), asyncio.Event()
        s.client.add_event_handler("sm_enabled", lambda _: enabled.set())
        s.client.add_event_handler("session_resumed", lambda _: resumed.set())
        assert await s.started == "session"
        await asyncio.wait_for(enabled.wait(), 5)
        s.client.send_presence()
        await s.client["xep_0199"].ping("localhost", timeout=5)
        full = str(s.jid)
        b.message(full, "before")
        m = await asyncio.wait_for(s.messages.get(), 5)
        assert m["body"] == "before"

        s.client.transport.abort()  # the network goes away: no </stream:stream>
        await asyncio.sleep(0.5)
        b.message(full, "while-away")
        b.sync()
        s.client.connect(address=("127.0.0.1", server.port), force_starttls=True)
        await asyncio.wait_for(resumed.wait(), 10)
        m = await asyncio.wait_for(s.messages.get(), 5)
        assert m["body"] == "while-away", m
        assert str(s.jid) == full
        await asyncio.sleep(1.0)
        assert s.messages.empty(), f"delivered twice: {s.messages.get_nowait()['body']}"
    sx.run(scenario, timeout=30)
    b.close()


def test_shutdown_stores_what_waiting_sessions_never_acknowledged(make_server):
    """SIGTERM while a session waits for resumption, and while another is connected with
    unacknowledged messages: both sessions end, their messages go to offline storage
    before the process exits (status 0), and are delivered after the restart."""
    users = {"shut1@localhost": "shut1-pw", "shut2@localhost": "shut2-pw", "shutb@localhost": "shutb-pw"}
    srv = make_server({"stream_management": {"resume_timeout": 300}}, users=users)
    waiting = rawclient.login(srv.port, "shut1", "shut1-pw")
    connected = rawclient.login(srv.port, "shut2", "shut2-pw")
    b = rawclient.login(srv.port, "shutb", "shutb-pw")
    sms = [Sm(waiting), Sm(connected)]
    for sm in sms:
        sm.enable()
        sm.c.send_presence()
    b.message("shut1@localhost", "to-waiting")
    b.message("shut2@localhost", "to-connected")
    for sm, body in zip(sms, ("to-waiting", "to-connected")):
        assert [e.findtext(q(NS_CLIENT, "body")) for e in sm.messages(1.0)] == [body]
    cut(waiting)
    time.sleep(0.5)  # the server notices: the session hibernates
    b.close()
    assert srv.stop() == 0
    srv.start()
    assert bodies(stored_messages(srv.port, "shut1@localhost", "shut1-pw", 1)) == ["to-waiting"]
    assert bodies(stored_messages(srv.port, "shut2@localhost", "shut2-pw", 1)) == ["to-connected"]


def test_resume_timeout_hands_unacknowledged_to_another_resource(server, users):
    """The user has a second available resource: when the first session expires
    unresumed, what it never acknowledged goes to that resource (with a <delay/>), not to
    offline storage."""
    jid, pw = users("sm16a")
    phone = login(server, users, "sm16a", resource="phone")
    desk = login(server, users, "sm16a", resource="desk")
    b = login(server, users, "sm16b")
    sm = Sm(phone)
    sm.enable()
    phone.send("<presence><priority>5</priority></presence>")
    phone.sync()
    desk.send_presence()  # priority 0: bare-JID messages go to the phone
    b.message(jid, "to-phone")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in sm.messages(1.0)] == ["to-phone"]
    cut(phone)
    el = desk.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.findtext(q(NS_CLIENT, "body")) == "to-phone",
                       timeout=RESUME_TIMEOUT + 5, what="the phone's unacknowledged message")
    assert el.find(q(NS_DELAY, "delay")) is not None, show(el)
    desk.close()
    b.close()
