"""slixmpp 1.8.3, a real third-party client, logs in and chats.

slixmpp's -PLUS mechanisms use 'tls-unique' (util/sasl/mechanisms.py), which Herald
accepts on TLS 1.3 without advertising it; the raw client (test_sasl.py) covers
tls-server-end-point. See slixclient.py for how non-PLUS SCRAM is run.
"""
import asyncio

import pytest

import slixclient as sx
from harness import USERS


@pytest.mark.parametrize("jid,mechanism,direct_tls", [
    ("alice@localhost", "SCRAM-SHA-1", False),
    ("alice@localhost", "SCRAM-SHA-256", False),
    ("alice@localhost", "PLAIN", False),
    ("alice@localhost", "SCRAM-SHA-256", True),
    ("alice@localhost", "PLAIN", True),
    ("carol@localhost", "SCRAM-SHA-256", False),    # non-ASCII password
    ("carol@localhost", "PLAIN", True),
    ("erin@example.test", "SCRAM-SHA-1", False),    # second virtual host
    ("erin@example.test", "SCRAM-SHA-256", True),
    ("alice@localhost", "SCRAM-SHA-256-PLUS", False),
    ("alice@localhost", "SCRAM-SHA-1-PLUS", True),
    ("alice@localhost", None, False),               # slixmpp's own choice
    ("bob@localhost", None, True),
])
def test_slixmpp_logs_in(server, jid, mechanism, direct_tls):
    port = server.tls_port if direct_tls else server.port

    async def scenario():
        s = sx.connect(jid, USERS[jid], port, mechanism, direct_tls=direct_tls,
                       resource="slix")
        assert await s.started == "session"
        if mechanism:
            assert s.mechanism == mechanism
        else:   # its best: SCRAM-SHA-512-PLUS with tls-unique
            assert s.mechanism.startswith("SCRAM-") and s.mechanism.endswith("-PLUS"), s.mechanism
        assert str(s.jid) == f"{jid}/slix"
    sx.run(scenario)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_slixmpp_wrong_password_is_not_authorized(server, mechanism):
    async def scenario():
        s = sx.connect("alice@localhost", "not-the-password", server.port, mechanism)
        result = await s.started
        assert result.startswith("failed_auth"), result
        assert s.auth_failure == "not-authorized"
    sx.run(scenario)


def test_slixmpp_two_users_exchange_messages(server):
    async def scenario():
        alice = sx.connect("alice@localhost", USERS["alice@localhost"], server.port,
                           "SCRAM-SHA-256", resource="desk")
        bob = sx.connect("bob@localhost", USERS["bob@localhost"], server.tls_port,
                         "SCRAM-SHA-1", direct_tls=True, resource="phone")
        assert await alice.started == "session"
        assert await bob.started == "session"

        async def receive(session, body):
            while True:
                m = await asyncio.wait_for(session.messages.get(), 5)
                if m["body"] == body:
                    return m

        # full JIDs, both ways
        alice.client.send_message(mto=bob.jid, mbody="hello bob", mtype="chat")
        m = await receive(bob, "hello bob")
        assert m["from"] == alice.jid
        assert m["type"] == "chat"
        bob.client.send_message(mto=alice.jid, mbody="hello alice", mtype="chat")
        m = await receive(alice, "hello alice")
        assert m["from"] == bob.jid

        # bare JIDs, once both are available
        alice.client.send_presence()
        bob.client.send_presence()
        # a ping answered after the presence: the server has processed it
        await alice.client["xep_0199"].ping("localhost", timeout=5)
        await bob.client["xep_0199"].ping("localhost", timeout=5)
        alice.client.send_message(mto="bob@localhost", mbody="to your bare jid", mtype="chat")
        m = await receive(bob, "to your bare jid")
        assert m["from"] == alice.jid
        bob.client.send_message(mto="alice@localhost", mbody="and to yours", mtype="chat")
        m = await receive(alice, "and to yours")
        assert m["from"] == bob.jid
    sx.run(scenario)
