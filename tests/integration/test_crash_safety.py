"""Crash safety (docs/guarantees.md): under message load, `kill -9` of Herald and a restart
lose no message that the server had acknowledged to its sender.

Senders use XEP-0198 and ask for acknowledgements as they go; an acknowledged message is
one within the h of an <a/> the server sent. After the kill and a restart, every such
message must be delivered to its recipient, waiting in offline storage, or in the
recipient's archive. The test counts messages sent, acknowledged, delivered, stored,
archived and bounced, prints them, and fails if any acknowledged message is missing.
"""
import re
import threading
import time

import harness
import rawclient
from rawclient import NS_CLIENT, q

NS_SM = "urn:xmpp:sm:3"
SENDERS = 4
BODY = re.compile(r"<body>(crash-[0-9]+-[0-9]+)</body>")


def _sm_login(server, user, password, resource):
    c = rawclient.login(server.port, user, password, resource=resource, timeout=10)
    c.send(f"<enable xmlns='{NS_SM}'/>")
    el = c.wait_for(lambda e: e.tag == q(NS_SM, "enabled"), what="<enabled/>")
    assert el is not None
    return c


class Sender(threading.Thread):
    """Sends numbered messages in bursts of 10, each burst followed by <r/>; records the
    highest h the server acknowledged. Stops when the connection dies."""

    def __init__(self, server, index, user, password, recipients, stop):
        super().__init__(daemon=True)
        self.c = _sm_login(server, user, password, f"s{index}")
        self.index, self.recipients, self.stop = index, recipients, stop
        self.sent = []        # bodies, in the order sent (= stanza order after <enable/>)
        self.acked = 0        # the highest h received
        self.bounced = set()  # bodies that came back as errors

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                for _ in range(10):
                    body = f"crash-{self.index}-{n}"
                    to = self.recipients[n % len(self.recipients)]
                    self.c.send(f"<message to='{to}' type='chat' id='{body}'><body>{body}</body></message>")
                    self.sent.append(body)
                    n += 1
                self.c.send(f"<r xmlns='{NS_SM}'/>")
                while True:
                    el = self.c.next(5)
                    if el.tag == q(NS_SM, "a"):
                        self.acked = max(self.acked, int(el.get("h")))
                        break
                    if el.tag == q(NS_CLIENT, "message") and el.get("type") == "error":
                        self.bounced.add(el.get("id"))
        except (rawclient.StreamClosed, rawclient.Timeout, OSError, AssertionError):
            pass

    def acknowledged(self):
        return self.sent[:self.acked]


class Reader(threading.Thread):
    """An online recipient that reads and acknowledges everything it gets."""

    def __init__(self, server, user, password):
        super().__init__(daemon=True)
        self.c = _sm_login(server, user, password, "reader")
        self.c.send_presence()
        self.h = 0
        self.delivered = set()

    def run(self):
        try:
            while True:
                el = self.c.next(30)
                if el.tag in (q(NS_CLIENT, "message"), q(NS_CLIENT, "presence"), q(NS_CLIENT, "iq")):
                    self.h += 1
                    body = el.findtext(q(NS_CLIENT, "body"))
                    if body:
                        self.delivered.add(body)
                elif el.tag == q(NS_SM, "r"):
                    self.c.send(f"<a xmlns='{NS_SM}' h='{self.h}'/>")
        except (rawclient.StreamClosed, rawclient.Timeout, OSError, AssertionError):
            pass


def _bodies(dbname, table, username):
    return set(BODY.findall(harness.psql(dbname, f"SELECT stanza FROM {table} WHERE username = '{username}'")))


def test_kill_9_loses_no_acknowledged_message(make_server):
    users = {f"cs{i}@localhost": f"cs{i}-pw" for i in range(SENDERS)}
    users.update({"online@localhost": "online-pw", "offline@localhost": "offline-pw"})
    srv = make_server({"workers": 2}, users=users)

    reader = Reader(srv, "online", "online-pw")
    reader.start()
    stop = threading.Event()
    senders = [Sender(srv, i, f"cs{i}", f"cs{i}-pw", ["online@localhost", "offline@localhost"], stop)
               for i in range(SENDERS)]
    for s in senders:
        s.start()
    time.sleep(2.5)
    srv.kill()  # SIGKILL: no shutdown code runs
    stop.set()
    for s in senders:
        s.join(10)
    reader.join(10)

    sent = [b for s in senders for b in s.sent]
    acked = [b for s in senders for b in s.acknowledged()]
    bounced = set().union(*(s.bounced for s in senders))
    assert len(acked) >= 100, f"too little load to mean anything: {len(acked)} acknowledged of {len(sent)}"

    srv.start()
    # What the recipients can still get: delivered before the crash, offline storage,
    # and their archives (read straight from the database the server committed to).
    offline_online = _bodies(srv.dbname, "offline_messages", "online")
    offline_offline = _bodies(srv.dbname, "offline_messages", "offline")
    archived_online = _bodies(srv.dbname, "archive_messages", "online")
    archived_offline = _bodies(srv.dbname, "archive_messages", "offline")
    kept = reader.delivered | offline_online | offline_offline | archived_online | archived_offline
    missing = [b for b in acked if b not in kept]

    # And offline storage is really delivered after the restart.
    late = rawclient.login(srv.port, "offline", "offline-pw", timeout=10)
    late.send("<presence/>")
    got = set()
    deadline = time.monotonic() + 15
    while len(got) < len(offline_offline) and time.monotonic() < deadline:
        try:
            el = late.next(2)
        except rawclient.Timeout:
            break
        if el.tag == q(NS_CLIENT, "message") and el.findtext(q(NS_CLIENT, "body")):
            got.add(el.findtext(q(NS_CLIENT, "body")))
    late.close()

    print(f"\ncrash test: sent {len(sent)}, acknowledged {len(acked)}, delivered {len(reader.delivered)}, "
          f"offline {len(offline_online) + len(offline_offline)}, archived "
          f"{len(archived_online) + len(archived_offline)}, bounced {len(bounced)}, "
          f"missing {len(missing)}")
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:10]}"
    assert got == offline_offline, (
        f"offline storage not delivered after the restart: {len(offline_offline - got)} missing")
