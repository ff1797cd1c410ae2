"""Routing between local sessions: RFC 6120 section 8 (addressing, stamping, errors)
and RFC 6121 section 8 (server rules for messages and IQs to bare and full JIDs)."""
import pytest

import rawclient as rc
from flows import is_iq, is_message, is_presence, login
from rawclient import NS_CLIENT, q

UNKNOWN_NS = "<query xmlns='urn:herald:test:nobody-handles-this'/>"


@pytest.fixture
def alice(server):
    c = login(server, "alice@localhost", presence=True)
    yield c
    c.close()


@pytest.fixture
def bob(server):
    c = login(server, "bob@localhost", presence=True)
    yield c
    c.close()


def error_reply(client, id, sent_to, timeout=None):
    """The error answer to stanza `id`; checks the RFC 6120 8.3.1 addressing."""
    el = client.wait_for(lambda e: e.get("id") == id and e.get("type") == "error", timeout,
                         what=f"an error reply to {id}")
    own_account = client.jid.split("/")[0]
    # RFC 6120 8.1.2.1: on behalf of the user's own account, 'from' may be omitted
    allowed = (sent_to, None) if sent_to == own_account else (sent_to,)
    assert el.get("from") in allowed, f"error from {el.get('from')!r}: {rc.show(el)}"
    assert el.get("to") in (client.jid, None), rc.show(el)
    return rc.stanza_error(el)


def no_errors_since(client, duration=0.7):
    """Nothing but presence arrives for a while."""
    client.expect_nothing(duration, ignore=is_presence)


# ---------------------------------------------------------------- delivery

def test_full_jid_message_both_ways(server):
    a = login(server, "alice@localhost")
    b = login(server, "bob@localhost")
    a.message(b.jid, "hi bob", id="m-ab")
    m = b.wait_message("hi bob")
    assert (m.get("from"), m.get("to"), m.get("type"), m.get("id")) == (a.jid, b.jid, "chat", "m-ab")
    b.message(a.jid, "hi alice")
    assert a.wait_message("hi alice").get("from") == b.jid
    a.close()
    b.close()


def test_bare_jid_message_reaches_available_resource(server, alice, bob):
    alice.message("bob@localhost", "to the bare jid")
    m = bob.wait_message("to the bare jid")
    assert m.get("from") == alice.jid
    no_errors_since(alice, 0.3)


def test_bare_jid_message_goes_to_highest_priority(server, alice):
    low = login(server, "bob@localhost", resource="low")
    high = login(server, "bob@localhost", resource="high")
    low.send_presence("<priority>1</priority>")
    high.send_presence("<priority>10</priority>")
    alice.message("bob@localhost", "to the most available")
    high.wait_message("to the most available")
    low.close()
    high.close()


def test_message_between_virtual_hosts(server, alice):
    erin = login(server, "erin@example.test", presence=True)
    alice.message(erin.jid, "across hosts, full")
    assert erin.wait_message("across hosts, full").get("from") == alice.jid
    alice.message("erin@example.test", "across hosts, bare")
    assert erin.wait_message("across hosts, bare").get("from") == alice.jid
    erin.message(alice.jid, "and back")
    assert alice.wait_message("and back").get("from") == erin.jid
    erin.close()


def test_full_jid_without_such_resource_chat_goes_to_bare(server, alice, bob):
    """RFC 6121 8.5.3.2.1: chat to an unconnected full JID is handled as to the bare JID."""
    alice.message("bob@localhost/no-such-resource", "to a missing resource")
    assert bob.wait_message("to a missing resource").get("from") == alice.jid


def test_full_jid_without_such_resource_groupchat_is_service_unavailable(server, alice, bob):
    """RFC 6121 8.5.3.2.1: groupchat to an unconnected full JID -> service-unavailable."""
    alice.message("bob@localhost/no-such-resource", "groupchat", type_="groupchat", id="gc1")
    assert error_reply(alice, "gc1", "bob@localhost/no-such-resource") == (
        "cancel", "service-unavailable")
    bob.expect_nothing(0.3, ignore=is_presence)


# ---------------------------------------------------------------- unknown users / resources

def test_message_to_unknown_user_is_ignored_or_service_unavailable(server, alice):
    """RFC 6121 8.5.1: silently ignore, or <service-unavailable/>; nothing else."""
    alice.message("nobody@localhost", "anyone there?", id="unk1")
    try:
        el = alice.wait_for(lambda e: e.get("id") == "unk1", timeout=1.0)
    except rc.Timeout:
        return
    assert el.get("type") == "error", rc.show(el)
    assert el.get("from") == "nobody@localhost", rc.show(el)
    assert rc.stanza_error(el) == ("cancel", "service-unavailable"), rc.show(el)


@pytest.mark.parametrize("to", ["nobody@localhost", "nobody@localhost/res",
                                "bob@localhost/no-such-resource"])
def test_iq_to_unknown_user_or_resource_is_service_unavailable(server, alice, bob, to):
    """RFC 6121 8.5.1 and 8.5.3.2.1: IQ -> service-unavailable."""
    alice.send(f"<iq type='get' id='iq-unk' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert error_reply(alice, "iq-unk", to) == ("cancel", "service-unavailable")


@pytest.mark.parametrize("to", ["localhost", "alice@localhost", "bob@localhost"])
def test_iq_nobody_handles_is_service_unavailable(server, alice, to):
    """RFC 6120 8.4: an IQ get/set with a payload nobody understands -> service-unavailable
    (the server answers for the domain and, RFC 6121 8.5.2.1.3, for bare JIDs)."""
    for type_ in ("get", "set"):
        id = f"nobody-{type_}"
        alice.send(f"<iq type='{type_}' id='{id}' to='{to}'>{UNKNOWN_NS}</iq>")
        assert error_reply(alice, id, to) == ("cancel", "service-unavailable")


def test_iq_to_full_jid_is_delivered_and_answered(server, alice, bob):
    alice.send(f"<iq type='get' id='c2c' to='{bob.jid}'>{UNKNOWN_NS}</iq>")
    got = bob.wait_for(lambda e: is_iq(e, "c2c"), what="alice's iq")
    assert got.get("from") == alice.jid and got.get("type") == "get", rc.show(got)
    bob.send(f"<iq type='result' id='c2c' to='{alice.jid}'/>")
    answer = alice.wait_for(lambda e: is_iq(e, "c2c"), what="bob's answer")
    assert answer.get("type") == "result" and answer.get("from") == bob.jid, rc.show(answer)


# ---------------------------------------------------------------- addressing

@pytest.mark.parametrize("claimed", ["mallory@localhost/evil", "bob@localhost",
                                     "alice@localhost", "localhost", "alice@localhost/other"])
def test_from_is_stamped_with_full_jid(server, alice, bob, claimed):
    """RFC 6120 8.1.2.1: the server sets 'from' to the sender's full JID whatever the
    client wrote."""
    alice.message(bob.jid, f"claimed {claimed}", from_=claimed)
    m = bob.wait_message(f"claimed {claimed}")
    assert m.get("from") == alice.jid, rc.show(m)


def test_iq_from_is_stamped(server, alice, bob):
    alice.send(f"<iq type='get' id='spoof-iq' to='{bob.jid}' from='mallory@localhost/x'>"
               f"{UNKNOWN_NS}</iq>")
    got = bob.wait_for(lambda e: is_iq(e, "spoof-iq"), what="the iq")
    assert got.get("from") == alice.jid, rc.show(got)


def test_malformed_to_is_jid_malformed(server, alice):
    """RFC 6120 8.3.3.8: an invalid 'to' -> <jid-malformed/> (type modify)."""
    alice.send("<message to='@@@@' id='bad-to' type='chat'><body>x</body></message>")
    el = alice.wait_for(lambda e: e.get("id") == "bad-to", what="an error for a bad 'to'")
    assert el.get("type") == "error", rc.show(el)
    assert rc.stanza_error(el) == ("modify", "jid-malformed"), rc.show(el)


def test_iq_without_payload_is_bad_request(server, alice):
    """RFC 6120 8.2.3: an IQ get/set contains exactly one payload element."""
    alice.send("<iq type='get' id='empty-iq' to='localhost'/>")
    el = alice.wait_for(lambda e: is_iq(e, "empty-iq"), what="an answer")
    assert el.get("type") == "error", rc.show(el)
    assert rc.stanza_error(el) == ("modify", "bad-request"), rc.show(el)


# ---------------------------------------------------------------- errors are not answered

def test_errors_are_never_answered_with_errors(server, alice, bob):
    """RFC 6120 8.3.1: an entity MUST NOT respond to a stanza of type 'error' (and an
    unsolicited IQ result is ignored as well)."""
    err = "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
    alice.send(
        f"<message type='error' id='e1' to='nobody@localhost'>{err}</message>"
        f"<message type='error' id='e2' to='bob@localhost/no-such-resource'>{err}</message>"
        f"<message type='error' id='e3' to='localhost'>{err}</message>"
        f"<iq type='error' id='e4' to='localhost'>{UNKNOWN_NS}{err}</iq>"
        f"<iq type='error' id='e5' to='nobody@localhost'>{err}</iq>"
        f"<iq type='error' id='e6' to='bob@localhost'>{err}</iq>"
        f"<iq type='result' id='e7' to='localhost'/>"
        f"<iq type='result' id='e8' to='nobody@localhost'/>"
        f"<presence type='error' id='e9' to='nobody@localhost'>{err}</presence>")
    pong = alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    assert pong.get("type") == "result", rc.show(pong)
    no_errors_since(alice)
    leaked = [e for e in alice.skipped if (e.get("id") or "").startswith("e")
              and not is_presence(e)]
    assert not leaked, "answered: " + " ".join(rc.show(e) for e in leaked)
    # bob (who got e2 and e6, if anything) must not answer on the server's behalf either
    no_errors_since(bob, 0.2)


def test_error_reply_keeps_id_and_swaps_addresses(server, alice):
    alice.send("<iq type='get' id='swap-1' to='localhost'>" + UNKNOWN_NS + "</iq>")
    el = alice.wait_for(lambda e: is_iq(e, "swap-1"))
    assert el.get("type") == "error"
    assert el.get("from") == "localhost", rc.show(el)
    assert el.get("to") == alice.jid, rc.show(el)


def test_message_to_self_full_jid(server, alice):
    alice.message(alice.jid, "note to self")
    m = alice.wait_message("note to self")
    assert m.get("from") == alice.jid and is_message(m)


def test_default_namespace_is_jabber_client(server, alice):
    """Stanzas reach the recipient in the jabber:client namespace."""
    b = login(server, "bob@localhost")
    alice.message(b.jid, "ns check")
    m = b.wait_message("ns check")
    assert m.tag == q(NS_CLIENT, "message")
    b.close()
