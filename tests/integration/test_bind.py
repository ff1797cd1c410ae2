"""Resource binding (RFC 6120 section 7)."""
import rawclient as rc
from flows import assert_server_works, login
from harness import USERS
from rawclient import NS_BIND, NS_SASL, q


def test_client_chosen_resource(server):
    c = login(server, "alice@localhost", resource="laptop")
    assert c.jid == "alice@localhost/laptop"
    c.close()


def test_server_generated_resource(server):
    """RFC 6120 7.6: an empty <bind/> gets a server-generated, unique resource."""
    c1 = login(server, "alice@localhost")
    c2 = login(server, "alice@localhost")
    for c in (c1, c2):
        assert c.jid.startswith("alice@localhost/"), c.jid
        assert len(c.jid) > len("alice@localhost/"), c.jid
    assert c1.jid != c2.jid
    c1.close()
    c2.close()


def test_resource_conflict_replaces_old_session(server):
    """RFC 6120 7.7.2.2: the new session takes the resource; the old one is closed with
    a <conflict/> stream error; stanzas to the full JID reach the new session."""
    old = login(server, "alice@localhost", resource="phone")
    new = login(server, "alice@localhost", resource="phone")
    assert new.jid == "alice@localhost/phone"
    old.expect_stream_error("conflict")
    bob = login(server, "bob@localhost")
    bob.message("alice@localhost/phone", "which one?")
    m = new.wait_message("which one?")
    assert m.get("from") == bob.jid
    new.close()
    bob.close()


def test_same_resource_for_different_users_is_no_conflict(server):
    a = login(server, "alice@localhost", resource="same")
    b = login(server, "bob@localhost", resource="same")
    a.message(b.jid, "no conflict")
    assert b.wait_message("no conflict").get("from") == "alice@localhost/same"
    a.expect_nothing(0.3)
    a.close()
    b.close()


def test_bind_before_authentication_is_not_authorized(server):
    c = rc.connect_tls(server.port)
    c.send(f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'><resource>r</resource></bind></iq>")
    c.expect_stream_error("not-authorized")
    assert_server_works(server)


def authenticated(server, user="alice"):
    c = rc.connect_tls(server.port)
    res = c.auth_plain(user, USERS[f"{user}@localhost"])
    assert res.tag == q(NS_SASL, "success"), rc.show(res)
    c.open_stream()
    return c


def test_overlong_resource_is_bad_request(server):
    """RFC 7622 3.4: a resourcepart is at most 1023 octets; RFC 6120 7.7.2.1: a resource
    that cannot be processed -> <bad-request/> (type modify)."""
    c = authenticated(server)
    answer = c.bind("r" * 1100)
    assert answer.get("type") == "error", rc.show(answer)
    assert rc.stanza_error(answer) == ("modify", "bad-request"), rc.show(answer)
    # the stream survives and binding can be retried
    answer = c.bind("fine")
    assert answer.get("type") == "result", rc.show(answer)
    c.close()


def test_bind_result_is_addressed_to_the_session(server):
    c = authenticated(server, "bob")
    answer = c.bind("desk")
    assert answer.get("type") == "result"
    jid = answer.findtext(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}")
    assert jid == "bob@localhost/desk", rc.show(answer)
    assert answer.get("from") in (None, "localhost", "bob@localhost"), rc.show(answer)
    c.close()
