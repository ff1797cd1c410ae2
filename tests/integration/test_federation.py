"""Federation (issue 5): Herald instances serving different domains find each other by
DNS SRV (a real dnsmasq), connect with TLS, authenticate with certificates (SASL EXTERNAL,
XEP-0178) or Server Dialback (XEP-0220), exchange messages, IQs and presence
subscriptions both ways, and bounce what cannot be delivered within the configured bound.

Everything runs in a network namespace this module creates (fedenv.py): only loopback,
dnsmasq on 127.0.0.1:53, the servers on 127.0.0.x.

  a.test       127.0.0.2  SRV _xmpp-server._tcp  -> xmpp.a.test:5269 (STARTTLS)
  b.test       127.0.0.3  SRV _xmpps-server._tcp -> xmpp.b.test:5270 (direct TLS, XEP-0368)
  c.test       127.0.0.4  no SRV, only an A record: port 5269
  u.test       127.0.0.5  certificate from a CA nobody trusts: dialback only
  strict.test  127.0.0.6  requires valid certificates (no dialback)
  dead.test    SRV -> 127.0.0.9:5269 where nothing listens
  silent.test  SRV -> 127.0.0.10:5269, accepts TCP and never says a word
  none.test    SRV target "." (no service)
  v6.test      ::1        SRV -> xmpp.v6.test, which has only an AAAA record
  d.test       127.0.0.8  used only by the XEP-0288 (bidirectional stream) test
  m1.test, m2.test  127.0.0.11  one Herald serving two domains (target piggybacking)
"""
import socket
import ssl
import time

import pytest

import fedenv
import rawclient as rc
from flows import collect, is_message, is_pres, split

pytestmark = pytest.mark.skipif(fedenv.available() is not None, reason=str(fedenv.available()))

RECORDS = [
    ("srv", "_xmpp-server._tcp.a.test", "xmpp.a.test", 5269, 0, 5),
    ("a", "xmpp.a.test", "127.0.0.2"),
    ("srv", "_xmpps-server._tcp.b.test", "xmpp.b.test", 5270, 0, 5),
    ("a", "xmpp.b.test", "127.0.0.3"),
    ("a", "c.test", "127.0.0.4"),
    ("srv", "_xmpp-server._tcp.u.test", "xmpp.u.test", 5269, 0, 5),
    ("a", "xmpp.u.test", "127.0.0.5"),
    ("srv", "_xmpp-server._tcp.strict.test", "xmpp.strict.test", 5269, 0, 5),
    ("a", "xmpp.strict.test", "127.0.0.6"),
    ("srv", "_xmpp-server._tcp.dead.test", "xmpp.dead.test", 5269, 0, 5),
    ("a", "xmpp.dead.test", "127.0.0.9"),
    ("srv", "_xmpp-server._tcp.silent.test", "xmpp.silent.test", 5269, 0, 5),
    ("a", "xmpp.silent.test", "127.0.0.10"),
    ("srv-none", "_xmpp-server._tcp.none.test"),
    ("srv", "_xmpp-server._tcp.v6.test", "xmpp.v6.test", 5269, 0, 5),
    ("a", "xmpp.v6.test", "::1"),
    ("srv", "_xmpp-server._tcp.d.test", "xmpp.d.test", 5269, 0, 5),
    ("a", "xmpp.d.test", "127.0.0.8"),
    ("srv", "_xmpp-server._tcp.m1.test", "xmpp.m.test", 5269, 0, 5),
    ("srv", "_xmpp-server._tcp.m2.test", "xmpp.m.test", 5269, 0, 5),
    ("a", "xmpp.m.test", "127.0.0.11"),
]
CONNECT_TIMEOUT = 3  # [federation] connect_timeout of every server here


class Peers:
    pass


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    with fedenv.Network(tmp_path_factory.mktemp("federation"), RECORDS, "fed") as net:
        ca = net.ca
        rogue = fedenv.TestCA(net.workdir / "rogue", name="Untrusted CA")
        net.silent_peer("127.0.0.10")
        p = Peers()
        p.ca = ca

        def peer(domain, ip, issuer=ca, federation=None):
            users = {f"alice@{domain}": "alice-pw", f"bob@{domain}": "bob-pw", f"carol@{domain}": "carol-pw"}
            return net.herald([(domain, issuer.issue(domain))], ip, users,
                              federation=dict({"connect_timeout": CONNECT_TIMEOUT}, **(federation or {})))

        p.a = peer("a.test", "127.0.0.2")
        p.b = peer("b.test", "127.0.0.3")
        # c.test closes its outgoing streams after 1 s of silence (test_idle_stream_closes)
        # and keeps at most 2 stanzas for 2 s per remote domain (test_queue_bounds).
        p.c = peer("c.test", "127.0.0.4", federation={"idle_timeout": 1, "queue_limit": 2, "bounce_after": 2})
        p.v6 = peer("v6.test", "::1")
        p.d = peer("d.test", "127.0.0.8")
        # One server, two domains.
        p.m = net.herald([("m1.test", ca.issue("m1.test")), ("m2.test", ca.issue("m2.test"))], "127.0.0.11",
                         {"alice@m1.test": "alice-pw", "bob@m2.test": "bob-pw"},
                         federation={"connect_timeout": CONNECT_TIMEOUT}, name="m.test")
        p.u = peer("u.test", "127.0.0.5", issuer=rogue)
        p.strict = peer("strict.test", "127.0.0.6", federation={"require_valid_certificates": True})
        yield p


def login(srv, jid, presence=True):
    local, domain = split(jid)
    return rc.login(srv.port, local, srv.users[jid], domain=domain, presence=presence)


def error_of(c, id, timeout=10):
    el = c.wait_for(lambda e: e.get("id") == id and e.get("type") == "error", timeout=timeout,
                    what=f"the error for {id}")
    return rc.stanza_error(el)


def test_message_both_ways_with_sasl_external(fed):
    a = login(fed.a, "alice@a.test")
    b = login(fed.b, "bob@b.test")
    try:
        a.message("bob@b.test", "hello from a.test")
        m = b.wait_message("hello from a.test", timeout=10)
        assert m.get("from") == a.jid, rc.show(m)
        b.message(a.jid, "hello back from b.test")
        m = a.wait_message("hello back from b.test", timeout=10)
        assert m.get("from") == b.jid, rc.show(m)
    finally:
        a.close()
        b.close()
    # a.test authenticated by certificate; the answer travelled back on the same stream
    # (XEP-0288), whose peer certificate a.test had verified.
    assert fed.b.wait_log(r"a\.test -> b\.test authenticated by certificate", timeout=5)
    assert fed.b.wait_log(r"b\.test -> a\.test: the peer's bidirectional stream", timeout=5)


def test_iq_to_remote_server_and_user(fed):
    a = login(fed.a, "alice@a.test")
    b = login(fed.b, "bob@b.test")
    try:
        # To the remote server itself (its ping module answers).
        a.send("<iq type='get' id='p1' to='b.test'><ping xmlns='urn:xmpp:ping'/></iq>")
        r = a.wait_for(lambda e: e.get("id") == "p1", timeout=10, what="the remote ping result")
        assert r.get("type") == "result" and r.get("from") == "b.test", rc.show(r)
        # To a remote user's resource, answered by that client.
        a.send(f"<iq type='get' id='v1' to='{b.jid}'><query xmlns='jabber:iq:version'/></iq>")
        q = b.wait_for(lambda e: e.get("id") == "v1", timeout=10, what="the iq at bob")
        assert q.get("from") == a.jid, rc.show(q)
        b.send(f"<iq type='result' id='v1' to='{a.jid}'><query xmlns='jabber:iq:version'>"
               f"<name>bob-client</name></query></iq>")
        r = a.wait_for(lambda e: e.get("id") == "v1", timeout=10, what="bob's answer")
        assert r.get("type") == "result" and "bob-client" in rc.show(r), rc.show(r)
    finally:
        a.close()
        b.close()


def test_presence_subscription_across_domains(fed):
    a = login(fed.a, "bob@a.test")
    b = login(fed.b, "alice@b.test")
    try:
        a.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        b.send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
        a.send("<presence to='alice@b.test' type='subscribe'/>")
        req = b.wait_for(lambda e: is_pres(e, type_="subscribe"), timeout=10, what="the subscription request")
        assert req.get("from") == "bob@a.test", rc.show(req)
        b.send("<presence to='bob@a.test' type='subscribed'/>")
        ok = a.wait_for(lambda e: is_pres(e, type_="subscribed"), timeout=10, what="the approval")
        assert ok.get("from") == "alice@b.test", rc.show(ok)
        # The approval brings alice's current presence to bob.
        a.wait_for(lambda e: is_pres(e) and e.get("from") == b.jid and e.get("type") is None, timeout=10,
                   what="alice's presence")
        # And a presence change reaches bob across the federation.
        b.send("<presence><status>busy here</status></presence>")
        upd = a.wait_for(lambda e: is_pres(e) and e.get("from") == b.jid and "busy here" in rc.show(e),
                         timeout=10, what="alice's presence update")
        assert upd is not None
    finally:
        a.close()
        b.close()


def test_unknown_remote_user_bounces(fed):
    a = login(fed.a, "alice@a.test")
    try:
        a.message("nobody@b.test", "anyone?", id="u1")
        err = error_of(a, "u1")
        assert err and err[1] == "service-unavailable", err
    finally:
        a.close()


def test_bidirectional_stream(fed):
    """XEP-0288: a.test opens a stream to d.test and enables bidirectionality; d.test's
    answer comes back over that same stream, d.test opens no stream of its own."""
    a = login(fed.a, "alice@a.test")
    d = login(fed.d, "bob@d.test")
    try:
        since = fed.d.log_size()
        a.message("bob@d.test", "one stream please")
        d.wait_message("one stream please", timeout=10)
        fed.d.wait_log(r"d\.test -> a\.test: the peer's bidirectional stream \(XEP-0288\) carries our stanzas",
                       since=since, timeout=5)
        d.message(a.jid, "same stream back")
        m = a.wait_message("same stream back", timeout=10)
        assert m.get("from") == d.jid, rc.show(m)
        assert "d.test -> a.test: resolving" not in fed.d.log_text(since), "d.test opened its own stream"
    finally:
        a.close()
        d.close()


def test_two_local_domains_share_one_stream(fed):
    """XEP-0220 target piggybacking: m1.test and m2.test (one server) both write to b.test;
    the second is authorized by dialback on the first one's stream, no second connection."""
    m1 = login(fed.m, "alice@m1.test")
    m2 = login(fed.m, "bob@m2.test")
    b = login(fed.b, "alice@b.test")
    try:
        since = fed.m.log_size()
        m1.message("alice@b.test", "from m1")
        b.wait_message("from m1", timeout=10)
        m2.message("alice@b.test", "from m2")
        m = b.wait_message("from m2", timeout=15)
        assert m.get("from") == m2.jid, rc.show(m)
        fed.m.wait_log(r"m1\.test -> b\.test: also carries m2\.test", since=since, timeout=5)
        assert "m2.test -> b.test: resolving" not in fed.m.log_text(since), "m2.test opened its own stream"
        fed.b.wait_log(r"m2\.test -> b\.test authenticated by dialback", timeout=5)
        # Answers reach both domains.
        b.message(m2.jid, "to m2")
        m2.wait_message("to m2", timeout=10)
        b.message(m1.jid, "to m1")
        m1.wait_message("to m1", timeout=10)
    finally:
        m1.close()
        m2.close()
        b.close()


def test_ipv6_only_peer(fed):
    a = login(fed.a, "alice@a.test")
    v = login(fed.v6, "bob@v6.test")
    try:
        a.message("bob@v6.test", "over IPv6")
        v.wait_message("over IPv6", timeout=10)
        v.message(a.jid, "and back")
        a.wait_message("and back", timeout=10)
    finally:
        a.close()
        v.close()
    fed.a.wait_log(r"a\.test -> v6\.test: stream up via xmpp\.v6\.test:5269", timeout=5)


def test_idle_stream_closes(fed):
    c = login(fed.c, "alice@c.test")
    a = login(fed.a, "bob@a.test")
    try:
        since = fed.c.log_size()
        c.message("bob@a.test", "then silence")
        a.wait_message("then silence", timeout=10)
        fed.c.wait_log(r"c\.test -> a\.test: idle for 1 s, closing", since=since, timeout=5)
        # The next stanza opens a new stream.
        c.message("bob@a.test", "awake again")
        a.wait_message("awake again", timeout=10)
    finally:
        c.close()
        a.close()


def test_queue_bounds(fed):
    """While a stream cannot come up: at most queue_limit stanzas wait (more bounce at once
    with resource-constraint) and none waits longer than bounce_after (remote-server-timeout),
    even though the connection attempt itself would take longer (connect_timeout 3 s)."""
    c = login(fed.c, "bob@c.test")
    try:
        start = time.monotonic()
        for i in range(3):
            c.message("x@silent.test", f"queued {i}", id=f"q{i}")
        err = error_of(c, "q2", timeout=2)
        assert err and err[1] == "resource-constraint", err
        assert time.monotonic() - start < 1.0
        for i in range(2):
            err = error_of(c, f"q{i}", timeout=6)
            assert err and err[1] == "remote-server-timeout", err
        elapsed = time.monotonic() - start
        assert 1.5 < elapsed < CONNECT_TIMEOUT, f"bounced after {elapsed:.1f} s"
    finally:
        c.close()


def test_probe_across_domains(fed):
    """After a cross-domain subscription, logging in again probes the remote contact and
    its presence comes back over the federation (RFC 6121 §4.2.2)."""
    a = login(fed.a, "carol@a.test")
    b = login(fed.b, "carol@b.test")
    try:
        a.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        a.send("<presence to='carol@b.test' type='subscribe'/>")
        b.wait_for(lambda e: is_pres(e, type_="subscribe"), timeout=10, what="the request")
        b.send("<presence to='carol@a.test' type='subscribed'/>")
        a.wait_for(lambda e: is_pres(e, type_="subscribed"), timeout=10, what="the approval")
        b.send("<presence><status>probe me</status></presence>")
        a.close()
        a = login(fed.a, "carol@a.test", presence=True)  # initial presence: probes carol@b.test
        got = a.wait_for(lambda e: is_pres(e) and e.get("from") == b.jid and "probe me" in rc.show(e),
                         timeout=10, what="carol@b.test's presence in answer to the probe")
        assert got is not None
    finally:
        a.close()
        b.close()


def test_a_record_only_domain(fed):
    a = login(fed.a, "alice@a.test")
    c = login(fed.c, "bob@c.test")
    try:
        a.message("bob@c.test", "via the A record")
        c.wait_message("via the A record", timeout=10)
    finally:
        a.close()
        c.close()


@pytest.mark.parametrize("domain,condition", [
    ("dead.test", "remote-server-timeout"),        # resolved, nothing listens
    ("silent.test", "remote-server-timeout"),      # resolved, accepts and never answers
    ("none.test", "remote-server-not-found"),      # SRV says "." (no service)
    ("nowhere.test", "remote-server-not-found"),   # NXDOMAIN, no A record
])
def test_unreachable_domains_bounce_within_the_bound(fed, domain, condition):
    a = login(fed.a, "alice@a.test")
    try:
        start = time.monotonic()
        a.message(f"x@{domain}", "lost?", id="d1")
        err = error_of(a, "d1", timeout=CONNECT_TIMEOUT + 8)
        elapsed = time.monotonic() - start
        assert err and err[1] == condition, err
        assert elapsed < CONNECT_TIMEOUT + 5, f"bounced after {elapsed:.1f} s"
        if domain != "silent.test":
            # Refused connections and DNS answers bounce at once, not after a timeout.
            assert elapsed < 2, f"bounced after {elapsed:.1f} s"
        # The next message tries again (no blanket back-off) and fails the same way.
        a.message(f"x@{domain}", "again?", id="d2")
        err = error_of(a, "d2", timeout=CONNECT_TIMEOUT + 8)
        assert err and err[1] == condition, err
    finally:
        a.close()


def test_dialback_with_untrusted_certificate(fed):
    u = login(fed.u, "alice@u.test")
    b = login(fed.b, "bob@b.test")
    try:
        u.message("bob@b.test", "dialback works")
        m = b.wait_message("dialback works", timeout=15)
        assert m.get("from") == u.jid
        # A dialback-authenticated stream takes full-size stanzas (not the 8 KB limit of
        # unauthenticated streams).
        big = "x" * 20000
        u.message("bob@b.test", big)
        m = b.wait_message(big, timeout=15)
        assert m.get("from") == u.jid
    finally:
        u.close()
        b.close()
    assert fed.b.wait_log(r"u\.test -> b\.test authenticated by dialback", timeout=5)


def test_require_valid_certificates_refuses_dialback(fed):
    u = login(fed.u, "bob@u.test")
    try:
        u.message("alice@strict.test", "let me in", id="s1")
        err = error_of(u, "s1", timeout=CONNECT_TIMEOUT + 12)
        assert err and err[1] in ("remote-server-timeout", "remote-server-not-found"), err
    finally:
        u.close()


def _tls_to(ip, port, server_name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((ip, port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_name)


def _read_until(sock, needle, timeout=5):
    sock.settimeout(timeout)
    data = b""
    end = time.time() + timeout
    while needle not in data and time.time() < end:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    return data


def test_raw_socket_cannot_inject_a_stanza(fed):
    """A peer that claims to be a.test but never authenticates gets <invalid-from/> (or
    is refused earlier) and its stanza reaches nobody."""
    b = login(fed.b, "bob@b.test")
    try:
        s = _tls_to("127.0.0.3", 5270, "b.test")
        s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                  b"from='a.test' to='b.test' version='1.0'>")
        _read_until(s, b"</stream:features>")
        # Unsolicited dialback answers are ignored: they authorize nothing.
        s.sendall(b"<db:result from='a.test' to='b.test' type='valid'/>"
                  b"<db:verify from='a.test' to='b.test' id='x' type='valid'/>")
        s.sendall(b"<message from='alice@a.test/x' to='bob@b.test' type='chat'><body>forged</body></message>")
        data = _read_until(s, b"</stream:stream>")
        assert b"invalid-from" in data or b"not-authorized" in data, data
        s.close()
        got = collect(b, 1.0)
        assert not any(is_message(e, "forged") for e in got), [rc.show(e) for e in got]
    finally:
        b.close()
