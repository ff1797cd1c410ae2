"""Two sessions on different workers (workers = 2, connections handed out round-robin)
exchange messages. The log says where each session was bound:
'alice@localhost/res bound on worker N'."""
import re

from flows import login


def bound_worker(server, jid, since):
    m = server.wait_log(rf"{re.escape(jid)} bound on worker (\d+)", since=since)
    return int(m.group(1))


def test_sessions_on_different_workers_exchange_messages(server):
    assert server.config["workers"] == 2
    mark = server.log_size()
    a = login(server, "alice@localhost", resource="w-a")
    b = login(server, "bob@localhost", resource="w-b")
    wa = bound_worker(server, a.jid, mark)
    wb = bound_worker(server, b.jid, mark)
    assert {wa, wb} <= {0, 1}, (wa, wb)
    assert wa != wb, f"both sessions on worker {wa}: consecutive connections should alternate"

    for i in range(5):
        a.message(b.jid, f"a->b {i}")
        b.message(a.jid, f"b->a {i}")
    for i in range(5):
        assert b.wait_message(f"a->b {i}").get("from") == a.jid
        assert a.wait_message(f"b->a {i}").get("from") == b.jid
    # IQ round trip across workers
    a.send(f"<iq type='get' id='xw' to='{b.jid}'><query xmlns='urn:herald:test'/></iq>")
    got = b.wait_for(lambda e: e.get("id") == "xw")
    assert got.get("from") == a.jid
    b.send(f"<iq type='result' id='xw' to='{a.jid}'/>")
    assert a.wait_for(lambda e: e.get("id") == "xw").get("type") == "result"
    a.close()
    b.close()


def test_many_sessions_spread_over_workers(server):
    """Eight consecutive sessions of one user: both workers are used, and a message to
    each full JID reaches exactly that session."""
    mark = server.log_size()
    sessions = [login(server, "carol@localhost", resource=f"r{i}") for i in range(8)]
    workers = {bound_worker(server, s.jid, mark) for s in sessions}
    assert workers == {0, 1}, workers
    sender = login(server, "dave@localhost")
    for s in sessions:
        sender.message(s.jid, f"for {s.jid}")
    for s in sessions:
        assert s.wait_message(f"for {s.jid}").get("from") == sender.jid
        s.expect_nothing(0.1, ignore=lambda e: e.tag.endswith("presence"))
    for s in sessions + [sender]:
        s.close()


def test_consecutive_connections_alternate_across_listeners(server):
    """Round-robin is over connections, whichever listener accepted them: any two
    consecutive connections land on different workers."""
    mark = server.log_size()
    pattern = [False, True, False, False, True, True, False, True]   # direct TLS?
    sessions = [login(server, "dave@localhost", resource=f"alt{i}", direct_tls=d)
                for i, d in enumerate(pattern)]
    workers = [bound_worker(server, s.jid, mark) for s in sessions]
    for i in range(1, len(workers)):
        assert workers[i] != workers[i - 1], (
            f"connections {i - 1} and {i} both on worker {workers[i]}; "
            f"workers in order: {workers} (direct TLS: {pattern})")
    for s in sessions:
        s.close()
