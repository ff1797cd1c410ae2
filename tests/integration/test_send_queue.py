"""limits.send_queue_bytes: a client that does not read is disconnected with
<policy-violation/> once its queue is full; the sender is not affected."""
import rawclient as rc
from flows import assert_server_works, login

HERALD_CONFIG = {"limits": {"send_queue_bytes": 65536}}


def test_slow_reader_is_disconnected(server):
    slow = login(server, "bob@localhost", resource="slow", rcvbuf=4096)
    sender = login(server, "alice@localhost")
    chunk = "z" * 16000
    # far more than the kernel buffers plus the 64 KiB queue can hold
    for i in range(800):
        sender.message(slow.jid, chunk, type_="chat")
        if i % 16 == 0:
            sender.drain()
            assert not sender.eof, "the sender was disconnected:\n" + sender.dump()
    slow.timeout = 20
    slow.expect_stream_error("policy-violation", timeout=20)
    pong = sender.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost", timeout=10)
    assert pong.get("type") == "result", rc.show(pong)
    sender.close()
    assert_server_works(server)
