"""TLS: versions, SNI certificate selection, direct TLS (XEP-0368)."""
import socket
import ssl
import threading

import pytest

import rawclient as rc
from flows import assert_server_works, login
from rawclient import NS_BIND, NS_SASL, NS_TLS, q

OLD = [pytest.param(ssl.TLSVersion.TLSv1, id="TLSv1.0"),
       pytest.param(ssl.TLSVersion.TLSv1_1, id="TLSv1.1")]


def der_of(pem_path):
    return ssl.PEM_cert_to_DER_cert(open(pem_path).read())


def san_of(der, tmp_path):
    """subjectAltName of a DER certificate, via the ssl module's decoder."""
    pem = tmp_path / "peer.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(der))
    decoded = ssl._ssl._test_decode_cert(str(pem))
    return decoded.get("subjectAltName", ())


def client_can_speak(version, certs):
    """True when this machine's OpenSSL lets our client negotiate `version` at all (checked
    against a local server that allows it), so that a refusal really is Herald's."""
    crt, key = certs["localhost"]
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    sctx.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        try:
            sctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            ctx = rc.client_tls_context(min_version=version, max_version=version)
            with ctx.wrap_socket(s, server_hostname="localhost") as tls:
                return tls.version() is not None
    except (ssl.SSLError, OSError):
        return False
    finally:
        t.join(5)
        listener.close()


@pytest.mark.parametrize("version", OLD)
def test_old_tls_refused_on_direct_tls_port(server, certs, version):
    if not client_can_speak(version, certs):
        pytest.skip(f"this OpenSSL cannot offer {version.name} even with SECLEVEL=0")
    ctx = rc.client_tls_context(min_version=version, max_version=version)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        rc.Client(server.tls_port, direct_tls=True, tls_context=ctx)
    assert_server_works(server)


@pytest.mark.parametrize("version", OLD)
def test_old_tls_refused_after_starttls(server, certs, version):
    if not client_can_speak(version, certs):
        pytest.skip(f"this OpenSSL cannot offer {version.name} even with SECLEVEL=0")
    c = rc.Client(server.port)
    c.open_stream()
    c.send(f"<starttls xmlns='{NS_TLS}'/>")
    assert c.next().tag == q(NS_TLS, "proceed")
    ctx = rc.client_tls_context(min_version=version, max_version=version)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        c.wrap_tls("localhost", ctx)
    c.close()
    assert_server_works(server)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
@pytest.mark.parametrize("direct", [False, True], ids=["starttls", "direct"])
def test_modern_tls_accepted(server, version, direct):
    ctx = rc.client_tls_context(min_version=version, max_version=version)
    if direct:
        c = rc.Client(server.tls_port, direct_tls=True, tls_context=ctx)
        c.open_stream()
    else:
        c = rc.Client(server.port)
        c.open_stream()
        c.starttls("localhost", ctx)
    assert c.sock.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    assert "PLAIN" in c.mechanisms()
    c.close()


@pytest.mark.parametrize("domain", ["localhost", "example.test"])
def test_sni_selects_certificate_direct_tls(server, certs, tmp_path, domain):
    c = rc.Client(server.tls_port, direct_tls=True, server_hostname=domain)
    assert c.peer_cert == der_of(certs[domain][0]), (
        f"SNI {domain}: got the certificate with SAN {san_of(c.peer_cert, tmp_path)}")
    assert ("DNS", domain) in san_of(c.peer_cert, tmp_path)
    features = c.open_stream(to=domain)
    assert c.header.get("from") == domain
    assert c.mechanisms(), rc.show(features)
    c.close()


@pytest.mark.parametrize("domain", ["localhost", "example.test"])
def test_sni_selects_certificate_starttls(server, certs, tmp_path, domain):
    c = rc.Client(server.port)
    c.open_stream(to=domain)
    c.starttls(server_hostname=domain)
    assert c.peer_cert == der_of(certs[domain][0]), (
        f"SNI {domain}: got the certificate with SAN {san_of(c.peer_cert, tmp_path)}")
    assert ("DNS", domain) in san_of(c.peer_cert, tmp_path)
    c.close()


def test_direct_tls_offers_sasl_and_no_starttls(server):
    c = rc.Client(server.tls_port, direct_tls=True)
    c.open_stream()
    assert c.feature(NS_TLS, "starttls") is None, rc.show(c.features)
    assert "PLAIN" in c.mechanisms()
    c.close()


def test_direct_tls_full_login_on_second_host(server):
    c = login(server, "erin@example.test", direct_tls=True, resource="r1")
    assert c.jid == "erin@example.test/r1"
    c.close()


def test_direct_tls_garbage_instead_of_handshake(server):
    """A client speaking plain XML to the direct TLS port is dropped; others unaffected."""
    s = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
    s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
              b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
    s.settimeout(5)
    data, closed = b"", False
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                closed = True
                break
            data += chunk
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    assert b"<stream" not in data, "answered XMPP on the direct TLS port without TLS"
    assert closed, "the failed TLS handshake did not close the connection within 5 s"
    assert_server_works(server)


def test_bind_feature_only_after_auth(server):
    c = rc.connect_tls(server.port)
    assert c.feature(NS_BIND, "bind") is None, rc.show(c.features)
    assert c.feature(NS_SASL, "mechanisms") is not None
    c.close()
