"""SASL (RFC 6120 section 6, RFC 4616 PLAIN, RFC 5802 SCRAM, RFC 5929 channel binding),
with the raw client so that every byte is ours."""
import base64

import pytest

import rawclient as rc
from flows import assert_server_works, login
from harness import ALL_MECHANISMS, USERS
from rawclient import NS_BIND, NS_SASL, NS_STREAM, NS_TLS, q

SCRAMS = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PLUS = [m + "-PLUS" for m in SCRAMS]


def is_success(el):
    return el.tag == q(NS_SASL, "success")


def failure_condition(el):
    assert el.tag == q(NS_SASL, "failure"), f"expected <failure/>, got {rc.show(el)}"
    return rc.sasl_condition(el)


@pytest.fixture
def secured(server):
    c = rc.connect_tls(server.port)
    yield c
    c.close()


def test_mechanisms_offered_after_tls(server, secured):
    """Every configured mechanism, PLAIN included, once TLS is up (the -PLUS ones too:
    channel binding is available); XEP-0440 lists tls-server-end-point if present."""
    assert set(secured.mechanisms()) == set(ALL_MECHANISMS), rc.show(secured.features)
    cb = secured.feature("urn:xmpp:sasl-cb:0", "sasl-channel-binding")
    if cb is not None:
        types = {c.get("type") for c in cb}
        assert "tls-server-end-point" in types, rc.show(cb)


@pytest.mark.parametrize("mechanism", SCRAMS + PLUS + ["PLAIN"])
def test_login_each_mechanism(server, mechanism):
    """Authentication succeeds, the server proves it knows the password (SCRAM v=),
    and binding works."""
    c = login(server, "alice@localhost", mechanism=mechanism, resource=f"m-{mechanism}")
    assert c.jid == f"alice@localhost/m-{mechanism}"
    c.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN"])
def test_non_ascii_password(server, mechanism):
    c = login(server, "carol@localhost", mechanism=mechanism)
    c.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512-PLUS", "SCRAM-SHA-256"])
def test_login_direct_tls(server, mechanism):
    c = login(server, "bob@localhost", mechanism=mechanism, direct_tls=True)
    c.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"])
def test_wrong_password_not_authorized(server, secured, mechanism):
    if mechanism == "PLAIN":
        res = secured.auth_plain("alice", "wrong")
    else:
        res = secured.auth_scram(mechanism, "alice", "wrong")
    assert failure_condition(res) == "not-authorized", rc.show(res)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_unknown_user_not_authorized(server, secured, mechanism):
    if mechanism == "PLAIN":
        res = secured.auth_plain("nobody", "whatever")
    else:
        res = secured.auth_scram(mechanism, "nobody", "whatever")
    assert failure_condition(res) == "not-authorized", rc.show(res)


def test_failure_then_success_on_same_stream(server, secured):
    """RFC 6120 6.4.5: the client may retry after a failure."""
    assert failure_condition(secured.auth_plain("alice", "wrong")) == "not-authorized"
    assert is_success(secured.auth_scram("SCRAM-SHA-256", "alice", USERS["alice@localhost"]))


def test_channel_binding_mismatch_fails(server, secured):
    """-PLUS with channel-binding data that is not this connection's (a MITM would
    present its own certificate): authentication must fail."""
    res = secured.auth_scram("SCRAM-SHA-256-PLUS", "alice", USERS["alice@localhost"],
                             cb_data=b"\0" * 32)
    assert not is_success(res), "accepted a wrong tls-server-end-point"
    failure_condition(res)


def test_gs2_y_flag_while_plus_offered_fails(server, secured):
    """RFC 5802 section 6: 'y' (client supports channel binding but thinks the server
    does not) while the server offers -PLUS means a downgrade: MUST fail."""
    res = secured.auth_scram("SCRAM-SHA-256", "alice", USERS["alice@localhost"], gs2="y,,")
    assert not is_success(res), "accepted gs2 flag 'y' although -PLUS was offered"
    failure_condition(res)


def test_unsupported_channel_binding_type_fails(server, secured):
    res = secured.auth_scram("SCRAM-SHA-256-PLUS", "alice", USERS["alice@localhost"],
                             gs2="p=tls-herald-nonsense,,", cb_data=b"\1" * 12)
    assert not is_success(res), "accepted an unknown channel-binding type"
    failure_condition(res)


def test_tls_unique_with_wrong_data_fails(server, secured):
    """tls-unique (accepted for clients like slixmpp) still has to match the connection."""
    res = secured.auth_scram("SCRAM-SHA-256-PLUS", "alice", USERS["alice@localhost"],
                             gs2="p=tls-unique,,", cb_data=b"\1" * 12)
    assert not is_success(res), "accepted tls-unique data of another connection"
    failure_condition(res)


def test_plus_mechanism_with_n_flag_fails(server, secured):
    """A -PLUS mechanism requires channel binding: a 'n' GS2 flag is malformed."""
    res = secured.auth_scram("SCRAM-SHA-256-PLUS", "alice", USERS["alice@localhost"],
                             gs2="n,,")
    assert not is_success(res), "accepted SCRAM-SHA-256-PLUS without channel binding"
    failure_condition(res)


@pytest.mark.parametrize("mechanism", ["X-HERALD-NOPE", "DIGEST-MD5"])
def test_invalid_mechanism(server, secured, mechanism):
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>AAAA</auth>")
    assert failure_condition(secured.sasl_result()) == "invalid-mechanism"
    # the stream stays usable
    assert is_success(secured.auth_plain("alice", USERS["alice@localhost"]))


def test_bad_base64_is_incorrect_encoding(server, secured):
    """RFC 6120 6.5.2: data that is not valid base64 -> <incorrect-encoding/>."""
    res = secured.auth_plain("", "", raw="!!!not*base64!!!")
    assert failure_condition(res) == "incorrect-encoding", rc.show(res)


def test_plain_syntax_violation_is_malformed_request(server, secured):
    """RFC 6120 6.5.7: valid base64 whose content violates PLAIN's syntax (no NULs)."""
    res = secured.auth_plain("", "", raw=base64.b64encode(b"alice alice-secret").decode())
    assert failure_condition(res) == "malformed-request", rc.show(res)


def test_scram_garbage_is_malformed_request(server, secured):
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
                 f"{base64.b64encode(b'this is not scram').decode()}</auth>")
    assert failure_condition(secured.sasl_result()) == "malformed-request"


def test_plain_authzid_of_other_user_is_invalid_authzid(server, secured):
    """RFC 6120 6.5.6: alice may not act as bob."""
    res = secured.auth_plain("alice", USERS["alice@localhost"], authzid="bob@localhost")
    assert failure_condition(res) == "invalid-authzid", rc.show(res)


def test_plain_authzid_of_self_is_accepted(server, secured):
    res = secured.auth_plain("alice", USERS["alice@localhost"], authzid="alice@localhost")
    assert is_success(res), rc.show(res)


def test_abort(server, secured):
    """RFC 6120 6.4.4: <abort/> during an exchange -> <failure><aborted/></failure>."""
    s = rc.Scram("SCRAM-SHA-256", "alice", USERS["alice@localhost"])
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
                 f"{base64.b64encode(s.first()).decode()}</auth>")
    assert secured.sasl_result().tag == q(NS_SASL, "challenge")
    secured.send(f"<abort xmlns='{NS_SASL}'/>")
    assert failure_condition(secured.sasl_result()) == "aborted"


def test_retry_cap_closes_stream(server, secured):
    """After max_attempts_per_connection (3) failures the stream is closed, and the
    right password sent after the third failure is not accepted."""
    for _ in range(3):
        assert failure_condition(secured.auth_plain("alice", "wrong")) == "not-authorized"
    try:
        secured.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>" + base64.b64encode(
            f"\0alice\0{USERS['alice@localhost']}".encode()).decode() + "</auth>")
    except OSError:
        pass
    secured.wait_closed()
    assert not any(is_success(e) for e in secured.skipped + list(secured.pending)), (
        "authenticated after the retry cap:\n" + secured.dump())
    errors = [e for e in secured.skipped if e.tag == q(NS_STREAM, "error")]
    assert errors, "stream closed without a stream error:\n" + secured.dump()
    assert errors[0].find(q(rc.NS_STREAM_ERR, "policy-violation")) is not None, rc.show(errors[0])
    secured.expect_closed()
    assert_server_works(server)


def test_restart_after_sasl_cannot_change_domain(server, secured):
    """Authenticated as alice@localhost, the restarted stream asks for example.test:
    the server must not let the session continue under another domain."""
    assert is_success(secured.auth_plain("alice", USERS["alice@localhost"]))
    secured.open_stream(to="example.test", wait_features=False)
    cond = secured.expect_stream_error({"host-unknown", "not-authorized", "policy-violation",
                                        "improper-addressing", "invalid-from"})
    print("stream error:", cond)
    assert not any(e.tag == q(NS_STREAM, "features") and e.find(q(NS_BIND, "bind")) is not None
                   for e in secured.skipped), "offered binding on the other domain"
    assert_server_works(server)


def test_features_after_sasl(server, secured):
    """After SASL: bind offered; no SASL and no STARTTLS again (RFC 6120 6.4.6)."""
    assert is_success(secured.auth_plain("alice", USERS["alice@localhost"]))
    features = secured.open_stream()
    assert secured.feature(NS_BIND, "bind") is not None, rc.show(features)
    assert secured.feature(NS_SASL, "mechanisms") is None, rc.show(features)
    assert secured.feature(NS_TLS, "starttls") is None, rc.show(features)


def test_scram_server_first_message_shape(server, secured):
    """RFC 5802 5.1: r= extends the client nonce, s= base64 salt, i= iteration count
    (scram_iterations, 4096)."""
    s = rc.Scram("SCRAM-SHA-1", "alice", USERS["alice@localhost"])
    secured.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>"
                 f"{base64.b64encode(s.first()).decode()}</auth>")
    ch = secured.sasl_result()
    assert ch.tag == q(NS_SASL, "challenge"), rc.show(ch)
    msg = base64.b64decode(ch.text).decode()
    attrs = dict(p.split("=", 1) for p in msg.split(","))
    assert attrs["r"].startswith(s.nonce) and len(attrs["r"]) > len(s.nonce), msg
    assert len(base64.b64decode(attrs["s"])) >= 8, msg
    assert int(attrs["i"]) == 4096, msg
