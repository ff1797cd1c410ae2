"""Per-IP authentication throttle: after ip_failure_limit failed authentications from
one address within ip_failure_window seconds, further attempts from that address get
<temporary-auth-failure/> (RFC 6120 6.5.12), even with the right password; other
addresses are unaffected; after the window, logins work again."""
import time

import rawclient as rc
from flows import login
from harness import USERS
from rawclient import NS_SASL, q

LIMIT, WINDOW = 3, 4
HERALD_CONFIG = {"auth": {"ip_failure_limit": LIMIT, "ip_failure_window": WINDOW,
                          "max_attempts_per_connection": 3}}


def condition(el):
    assert el.tag == q(NS_SASL, "failure"), rc.show(el)
    return rc.sasl_condition(el)


def test_per_ip_throttle(server):
    right = USERS["alice@localhost"]
    # LIMIT failures from 127.0.0.1, spread over two connections
    c1 = rc.connect_tls(server.port)
    for _ in range(LIMIT - 1):
        assert condition(c1.auth_plain("alice", "wrong")) == "not-authorized"
    c1.close()
    c2 = rc.connect_tls(server.port)
    assert condition(c2.auth_plain("alice", "wrong")) == "not-authorized"

    # over the limit: refused even with the right password, on any connection
    assert condition(c2.auth_plain("alice", right)) == "temporary-auth-failure"
    c2.close()
    c3 = rc.connect_tls(server.port)
    assert condition(c3.auth_scram("SCRAM-SHA-256", "alice", right)) == "temporary-auth-failure"
    c3.close()
    last_attempt = time.monotonic()

    # another address is not throttled
    a = login(server, "alice@localhost", source_address=("127.0.0.2", 0))
    b = login(server, "bob@localhost", source_address=("127.0.0.2", 0))
    a.message(b.jid, "from another address")
    assert b.wait_message("from another address").get("from") == a.jid
    a.close()
    b.close()

    # once the window has passed, 127.0.0.1 may log in again
    time.sleep(max(0.0, last_attempt + WINDOW + 1 - time.monotonic()))
    c4 = login(server, "alice@localhost")
    c4.close()
