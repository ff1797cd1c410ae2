"""limits.unauthenticated_timeout: a connection that does not authenticate in time is
closed with <connection-timeout/>; an authenticated one is not."""
import socket
import time

import rawclient as rc
from flows import assert_server_works, login

TIMEOUT = 2
HERALD_CONFIG = {"limits": {"unauthenticated_timeout": TIMEOUT}}


def test_idle_after_header_gets_connection_timeout(server):
    c = rc.Client(server.port, timeout=TIMEOUT + 5)
    started = time.monotonic()
    c.open_stream()
    c.expect_stream_error("connection-timeout", timeout=TIMEOUT + 5)
    assert time.monotonic() - started >= TIMEOUT - 0.5, "closed before the timeout"


def test_tls_but_no_auth_gets_connection_timeout(server):
    c = rc.connect_tls(server.port, timeout=TIMEOUT + 5)
    c.expect_stream_error("connection-timeout", timeout=TIMEOUT + 5)


def test_silent_tcp_connection_is_closed(server):
    """Nothing at all is sent: the server still closes the connection in time."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + 5)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        raise AssertionError("a silent connection was not closed") from None
    except ConnectionResetError:
        pass
    finally:
        s.close()


def test_authenticated_session_outlives_the_timeout(server):
    a = login(server, "alice@localhost")
    time.sleep(TIMEOUT + 1)
    pong = a.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    assert pong.get("type") == "result", rc.show(pong)
    a.close()
    assert_server_works(server)
