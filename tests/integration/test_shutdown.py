"""SIGTERM: every stream, whatever its state, gets <system-shutdown/> and
</stream:stream>; the server exits 0."""
import signal

import rawclient as rc
from flows import login
from harness import port_open


def test_sigterm_sends_system_shutdown_to_every_stream(make_server):
    srv = make_server()
    plain = rc.Client(srv.port)                      # header sent, before TLS
    plain.open_stream()
    secured = rc.connect_tls(srv.port)               # TLS, not authenticated
    direct = rc.Client(srv.tls_port, direct_tls=True)  # direct TLS, header sent
    direct.open_stream()
    a = login(srv, "alice@localhost")                # bound, STARTTLS port
    b = login(srv, "bob@localhost", direct_tls=True)  # bound, direct TLS port
    a.message(b.jid, "before shutdown")
    b.wait_message("before shutdown")

    srv.signal(signal.SIGTERM)
    for name, c in [("plain", plain), ("secured", secured), ("direct", direct),
                    ("alice", a), ("bob", b)]:
        try:
            c.expect_stream_error("system-shutdown", timeout=10)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    assert srv.wait(15) == 0, f"exit status {srv.returncode}"
    assert not port_open(srv.port) and not port_open(srv.tls_port)


def test_sigint_also_shuts_down_cleanly(make_server):
    srv = make_server()
    a = login(srv, "alice@localhost")
    srv.signal(signal.SIGINT)
    a.expect_stream_error("system-shutdown", timeout=10)
    assert srv.wait(15) == 0, f"exit status {srv.returncode}"


def test_sigterm_with_no_connections(make_server):
    srv = make_server(users={})
    srv.signal(signal.SIGTERM)
    assert srv.wait(15) == 0
