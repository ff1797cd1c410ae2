"""Stream-level errors (RFC 6120 4.9): each misbehaving client gets the exact
<stream:error/>, then </stream:stream>, then the TCP connection is closed; afterwards
two other clients still log in and chat.

Limits use the defaults: 8192 bytes before authentication, max_stanza_size after it
(262144), max_depth 32, max_attributes 64."""
import base64

import pytest

import rawclient as rc
from flows import assert_server_works, is_iq, is_message, login
from rawclient import NS_SASL, NS_STREAM, NS_TLS, q


@pytest.fixture
def plain(server):
    """A TCP connection to the STARTTLS port, stream header not yet sent."""
    c = rc.Client(server.port)
    yield c
    c.close()


@pytest.fixture
def secured(server):
    """STARTTLS done, stream restarted, not authenticated."""
    c = rc.connect_tls(server.port)
    yield c
    c.close()


# ---------------------------------------------------------------- header

def test_bad_stream_namespace_is_invalid_namespace(server, plain):
    plain.open_stream(stream_ns="http://etherx.jabber.org/streams-wrong", wait_features=False)
    plain.expect_stream_error("invalid-namespace")
    assert_server_works(server)


def test_bad_content_namespace_is_invalid_namespace(server, plain):
    plain.open_stream(xmlns="jabber:server-not-client", wait_features=False)
    plain.expect_stream_error("invalid-namespace")
    assert_server_works(server)


def test_unknown_to_is_host_unknown(server, plain):
    plain.open_stream(to="unknown.example", wait_features=False)
    plain.expect_stream_error("host-unknown")
    assert_server_works(server)


def test_header_answer_and_features_before_tls(server, plain):
    """RFC 6120 4.7 / 5.3.1: the answer comes from the requested domain with an id;
    STARTTLS is offered and required; nothing else (no SASL, so no PLAIN) before TLS."""
    features = plain.open_stream(to="localhost")
    assert plain.header_tag == q(NS_STREAM, "stream")
    assert plain.header.get("from") == "localhost"
    assert plain.header.get("id"), "stream header without an id"
    assert plain.header.get("version") == "1.0"
    starttls = plain.feature(NS_TLS, "starttls")
    assert starttls is not None, rc.show(features)
    assert starttls.find(q(NS_TLS, "required")) is not None, rc.show(features)
    assert plain.feature(NS_SASL, "mechanisms") is None, (
        "SASL offered before TLS: " + rc.show(features))


# ---------------------------------------------------------------- restricted XML

@pytest.mark.parametrize("what,data", [
    ("comment", "<!-- a comment -->"),
    ("processing instruction", "<?herald-test please?>"),
])
def test_restricted_xml_after_header(server, plain, what, data):
    """RFC 6120 11.1: comments and processing instructions -> <restricted-xml/>."""
    plain.open_stream()
    plain.send(data)
    plain.expect_stream_error("restricted-xml")
    assert_server_works(server)


def test_doctype_is_restricted_xml(server, plain):
    """RFC 6120 11.1: a DTD (here with an internal subset declaring an entity), sent
    before the stream header. The server still opens its stream first (4.9.1.2)."""
    plain.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>"
               "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams'>")
    plain.expect_stream_error("restricted-xml")
    assert_server_works(server)


# ---------------------------------------------------------------- well-formedness

@pytest.mark.parametrize("what,data", [
    ("invalid UTF-8", b"<message><body>caf\xc3\x28 \xff\xfe</body></message>"),
    ("overlong UTF-8", b"<message><body>\xc0\xaf</body></message>"),
    ("mismatched tags", b"<message><body>hi</message></body>"),
    ("unquoted attribute", b"<message to=bob@localhost><body>hi</body></message>"),
])
def test_not_well_formed(server, plain, what, data):
    plain.open_stream()
    plain.send(data)
    plain.expect_stream_error("not-well-formed")
    assert_server_works(server)


def test_not_well_formed_after_authentication(server):
    c = login(server, "alice@localhost")
    c.send(b"<message to='bob@localhost'><body>\xff</body></message>")
    c.expect_stream_error("not-well-formed")
    assert_server_works(server)


# ---------------------------------------------------------------- size, depth, attributes

def test_stanza_over_unauthenticated_limit_is_policy_violation(server, secured):
    """9000 bytes in one element before authentication (limit 8192)."""
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>" + "A" * 9000 + "</auth>")
    secured.expect_stream_error("policy-violation")
    assert_server_works(server)


def test_stanza_under_unauthenticated_limit_is_processed(server, secured):
    """About 7 KB before authentication is within the limit: the server answers the
    (wrong) credentials instead of closing the stream."""
    payload = base64.b64encode(b"\0alice\0" + b"x" * 5000).decode()
    res = secured.auth_plain("alice", "", raw=payload)
    assert res.tag == q(NS_SASL, "failure"), rc.show(res)
    assert rc.sasl_condition(res) == "not-authorized", rc.show(res)


def test_stanza_over_max_stanza_size_after_auth_is_policy_violation(server):
    c = login(server, "alice@localhost")
    c.message(c.jid, "x" * 300_000)
    c.expect_stream_error("policy-violation")
    assert_server_works(server)


def test_stanza_over_8k_after_auth_is_delivered(server):
    """The unauthenticated limit no longer applies once authenticated."""
    c = login(server, "alice@localhost")
    body = "y" * 20_000
    c.message(c.jid, body)
    m = c.wait_message(body)
    assert m.get("from") == c.jid
    c.close()


def nested(depth):
    return "<a>" * depth + "</a>" * depth


def test_too_deep_nesting_is_policy_violation(server, secured):
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{nested(40)}</auth>")
    secured.expect_stream_error("policy-violation")
    assert_server_works(server)


def test_too_many_attributes_is_policy_violation(server, secured):
    attrs = " ".join(f"a{i}='{i}'" for i in range(80))
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN' {attrs}>AAAA</auth>")
    secured.expect_stream_error("policy-violation")
    assert_server_works(server)


def test_moderate_depth_and_attributes_are_delivered_intact(server):
    """20 levels and 30 attributes are within the limits and reach the recipient."""
    a = login(server, "alice@localhost")
    b = login(server, "bob@localhost")
    attrs = " ".join(f"a{i}='{i}'" for i in range(30))
    a.message(b.jid, "deep", extra=f"<x xmlns='urn:herald:test' {attrs}>{nested(20)}</x>")
    m = b.wait_message("deep")
    x = m.find("{urn:herald:test}x")
    assert x is not None, rc.show(m)
    assert len(x.attrib) == 30, rc.show(x)
    depth, el = 0, x
    while len(el):
        el = el[0]
        depth += 1
    assert depth == 20, rc.show(x)
    a.close()
    b.close()


# ---------------------------------------------------------------- STARTTLS

def test_sasl_without_starttls_is_refused(server, plain):
    """TLS is required on the STARTTLS port (RFC 6120 5.3.1): authenticating in the clear
    gets <encryption-required/> or a stream error, never success."""
    plain.open_stream()
    assert plain.mechanisms() == []
    creds = base64.b64encode(b"\0alice\0alice-secret").decode()
    plain.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>")
    el = plain.wait_for(lambda e: e.tag in (q(NS_SASL, "failure"), q(NS_SASL, "success"),
                                            q(NS_STREAM, "error")), what="an answer to <auth/>")
    assert el.tag != q(NS_SASL, "success"), "authenticated without TLS"
    if el.tag == q(NS_SASL, "failure"):
        assert rc.sasl_condition(el) == "encryption-required", rc.show(el)
    else:
        plain.pending.appendleft(el)
        cond = plain.expect_stream_error({"policy-violation", "not-authorized",
                                          "unsupported-stanza-type", "undefined-condition"})
        print("stream error:", cond)
    assert_server_works(server)


def test_stanza_before_authentication_is_not_authorized(server, secured):
    """RFC 6120 4.9.3.12: data before authentication -> <not-authorized/>, and the
    offending stanza is not processed."""
    bob = login(server, "bob@localhost")
    secured.send("<message to='bob@localhost' type='chat'><body>sneaky</body></message>")
    secured.expect_stream_error("not-authorized")
    bob.expect_nothing(0.5)
    bob.close()


def test_bytes_pipelined_after_starttls_are_discarded(server, plain):
    """RFC 6120 5.4.3.3: data sent after <starttls/> in the same write must be dropped,
    not processed after the handshake."""
    plain.open_stream()
    plain.send(f"<starttls xmlns='{NS_TLS}'/>"
               "<iq type='get' id='pipelined-1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
               "<message to='bob@localhost' id='pipelined-2'><body>pipelined</body></message>")
    el = plain.next()
    assert el.tag == q(NS_TLS, "proceed"), rc.show(el)
    plain.wrap_tls("localhost")
    plain.open_stream()
    assert plain.mechanisms(), rc.show(plain.features)
    plain.expect_nothing(0.7)
    res = plain.auth_plain("alice", "alice-secret")
    assert res.tag == q(NS_SASL, "success"), rc.show(res)
    plain.open_stream()
    plain.bind()
    plain.expect_nothing(0.5, ignore=lambda e: False)
    assert not [e for e in plain.skipped if e.get("id", "").startswith("pipelined")]
    assert_server_works(server)


def test_starttls_not_offered_again_after_tls(server, secured):
    assert secured.feature(NS_TLS, "starttls") is None, rc.show(secured.features)


# ---------------------------------------------------------------- misc

def test_errors_are_scoped_to_one_stream(server):
    """A stream error on one connection does not touch another session of the user."""
    a = login(server, "alice@localhost")
    other = login(server, "alice@localhost")
    other.send(b"<message><body>\xff")
    other.expect_stream_error("not-well-formed")
    a.message(a.jid, "me still")
    assert is_message(a.wait_message("me still"))
    a.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    assert not any(is_iq(e) and e.get("type") == "error" for e in a.skipped)
    a.close()
