"""Conversation-level helpers shared by the test modules."""
import rawclient as rc
from rawclient import NS_CLIENT, q


def split(jid):
    local, domain = jid.split("@", 1)
    return local, domain


def login(server, jid, resource=None, mechanism="PLAIN", direct_tls=False, presence=False,
          password=None, **kw):
    """A bound raw session for one of server.users."""
    local, domain = split(jid)
    port = server.tls_port if direct_tls else server.port
    return rc.login(port, local, password if password is not None else server.users[jid],
                    domain=domain, resource=resource, mechanism=mechanism,
                    direct_tls=direct_tls, presence=presence, **kw)


def assert_server_works(server):
    """Two fresh clients log in and exchange a message both ways: run after every
    negative test to show the misbehaving client hurt nobody else."""
    a = login(server, "alice@localhost")
    b = login(server, "bob@localhost")
    try:
        a.message(b.jid, "still alive?")
        m = b.wait_message("still alive?")
        assert m.get("from") == a.jid, rc.show(m)
        b.message(a.jid, "yes")
        m = a.wait_message("yes")
        assert m.get("from") == b.jid, rc.show(m)
    finally:
        a.close()
        b.close()


def is_iq(el, id=None):
    return el.tag == q(NS_CLIENT, "iq") and (id is None or el.get("id") == id)


def is_message(el, body=None):
    return el.tag == q(NS_CLIENT, "message") and (
        body is None or el.findtext(q(NS_CLIENT, "body")) == body)


def is_presence(el):
    return el.tag == q(NS_CLIENT, "presence")
