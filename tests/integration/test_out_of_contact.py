"""Clients that vanish without closing their stream: the server's XEP-0199 keepalive
([keepalive] ping_interval / ping_timeout) finds them, closes the stream with
<connection-timeout/> and broadcasts unavailable presence for them (RFC 6121 4.5.2: "If
the server detects that the user has gone offline ungracefully, then the server MUST
generate the unavailable presence broadcast on the user's behalf").

The bound: a client silent for ping_interval seconds is pinged; with no data within
ping_timeout seconds after that it is dropped. Measured from the client's last byte."""
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import rawclient as rc
from flows import (befriend, collect, is_pres, new_users, online,
                   presence, wait_pres)
from rawclient import NS_CLIENT, NS_PING, NS_STREAM, q

PING_INTERVAL = 2
PING_TIMEOUT = 2
BOUND = PING_INTERVAL + PING_TIMEOUT
SLACK = 1.5

HERALD_CONFIG = {"keepalive": {"ping_interval": PING_INTERVAL, "ping_timeout": PING_TIMEOUT}}


def is_ping(el):
    return (el.tag == q(NS_CLIENT, "iq") and el.get("type") == "get"
            and el.find(q(NS_PING, "ping")) is not None)


def answer_pings(c, duration, on_other=None):
    """Reads for duration seconds, answering every server ping at once. Returns the
    number of pings answered; other elements go to on_other (or are dropped)."""
    pings = 0
    deadline = time.monotonic() + duration
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return pings
        try:
            el = c.next(remaining)
        except rc.Timeout:
            return pings
        if is_ping(el):
            pings += 1
            c.send(f"<iq type='result' id='{el.get('id')}'"
                   + (f" to='{el.get('from')}'" if el.get("from") else "") + "/>")
        elif on_other:
            on_other(el)


def stream_error_condition(elements):
    for el in elements:
        if el.tag == q(NS_STREAM, "error"):
            names = [c.tag.split("}", 1)[1] for c in el
                     if not c.tag.endswith("}text")]
            return names[0] if names else None
    return None


def test_vanished_raw_client_is_dropped_within_the_bound(server):
    """A client that stops reading and writing (TCP stays open, no </stream:stream>):
    its contact receives unavailable presence between ping_interval and
    ping_interval + ping_timeout (+ slack) after the client's last byte; the client was
    sent a XEP-0199 ping and then <connection-timeout/>."""
    user, contact = new_users(server, "van", "vanc")
    befriend(server, user, contact)
    c = online(server, contact, "watch")
    gone = online(server, user, "gone")
    wait_pres(c, gone.jid)
    gone.sync()                                   # the vanishing client's last bytes
    last_byte = time.monotonic()
    # from now on nobody reads or writes on `gone`; the watcher answers pings
    seen = []
    deadline = last_byte + BOUND + SLACK + 3
    unavailable_at = None
    while time.monotonic() < deadline and unavailable_at is None:
        def note(el):
            nonlocal unavailable_at
            if is_pres(el, gone.jid, "unavailable") and unavailable_at is None:
                unavailable_at = time.monotonic()
            seen.append(el)
        answer_pings(c, 0.1, on_other=note)
    try:
        assert unavailable_at is not None, (
            f"no unavailable presence for the vanished client within {BOUND + SLACK + 3:.1f}s "
            f"(ping_interval {PING_INTERVAL}, ping_timeout {PING_TIMEOUT})")
        elapsed = unavailable_at - last_byte
        assert elapsed >= PING_INTERVAL, f"dropped after {elapsed:.2f}s: before ping_interval"
        assert elapsed <= BOUND + SLACK, (
            f"detected after {elapsed:.2f}s, bound {BOUND}s (+{SLACK}s slack)")
        # what the vanished client was sent meanwhile: a ping, then the stream error
        got = collect(gone, 1.0)
        assert any(is_ping(e) for e in got), (
            "no XEP-0199 ping before the disconnect: " + " ".join(rc.show(e) for e in got))
        ping = next(e for e in got if is_ping(e))
        assert ping.get("from") in (None, "localhost"), rc.show(ping)
        assert ping.get("to") in (None, gone.jid), rc.show(ping)
        assert stream_error_condition(got) == "connection-timeout", (
            "expected <connection-timeout/>: " + " ".join(rc.show(e) for e in got))
        assert gone.wait_closed(3), "the server did not close the TCP connection"
    finally:
        c.close()
        gone.close()


def test_directed_presence_recipient_also_learns_of_the_timeout(server):
    user, other = new_users(server, "vd", "vdo")
    o = online(server, other, "o")
    gone = online(server, user, "gone")
    presence(gone, to=other, payload="<status>directed</status>")
    wait_pres(o, gone.jid)
    gone.sync()
    start = time.monotonic()
    got_at = None
    while time.monotonic() < start + BOUND + SLACK + 3 and got_at is None:
        def note(el):
            nonlocal got_at
            if is_pres(el, gone.jid, "unavailable"):
                got_at = time.monotonic()
        answer_pings(o, 0.1, on_other=note)
    try:
        assert got_at is not None, "the directed-presence recipient never got unavailable"
        assert got_at - start <= BOUND + SLACK, f"after {got_at - start:.2f}s"
    finally:
        o.close()
        gone.close()


def test_client_answering_pings_stays_connected(server):
    """A silent client that answers every ping is pinged (about once per ping_interval)
    but never dropped, well past the bound; its contact sees no unavailable presence."""
    user, contact = new_users(server, "live", "livec")
    befriend(server, user, contact)
    c = online(server, contact, "watch")
    u = online(server, user, "alive")
    wait_pres(c, u.jid)
    try:
        watched = []
        total = 3 * BOUND
        end = time.monotonic() + total
        pings = 0
        while time.monotonic() < end:
            pings += answer_pings(u, 0.1)
            answer_pings(c, 0.05, on_other=watched.append)
        assert not u.eof and not u.stream_ended, f"dropped although it answered:\n{u.dump()}"
        assert pings >= 2, f"only {pings} pings in {total}s with ping_interval {PING_INTERVAL}"
        assert not [e for e in watched if is_pres(e, u.jid, "unavailable")], (
            "the contact was told the live client went offline")
        c.message(u.jid, "still there?")
        found = []
        answer_pings(u, 1.0, on_other=found.append)
        assert any(e.findtext(q(NS_CLIENT, "body")) == "still there?" for e in found), found
    finally:
        c.close()
        u.close()


def test_busy_client_is_not_pinged(server):
    """Pings go to clients silent for ping_interval; one that keeps sending (whitespace
    keepalives, RFC 6120 4.6.1) is never pinged or dropped."""
    user = new_users(server, "busy")[0]
    u = online(server, user)
    try:
        got = []
        end = time.monotonic() + 2.5 * PING_INTERVAL
        while time.monotonic() < end:
            u.send(" ")
            got += collect(u, 0.4)
        assert not [e for e in got if is_ping(e)], "pinged although it was sending"
        assert not u.eof and not u.stream_ended, u.dump()
    finally:
        u.close()


SLIX_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    import slixclient as sx

    async def main():
        s = sx.connect({jid!r}, {password!r}, {port}, "SCRAM-SHA-256", resource="slix")
        assert await s.started == "session", "no session"
        await s.client.get_roster(timeout=5)
        s.client.send_presence()
        await s.client["xep_0199"].ping("localhost", timeout=5)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    sx.run(main, timeout=3600)
""")


def start_slix(server, jid, tmp_path):
    script = Path(tmp_path) / f"slix_{jid.split('@')[0]}.py"
    script.write_text(SLIX_SCRIPT.format(tests=str(Path(__file__).parent), jid=jid,
                                         password=server.users[jid], port=server.port))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # slixmpp may print warnings first (e.g. about its pure-Python stringprep)
    deadline = time.monotonic() + 20
    output = ""
    while True:
        remaining = deadline - time.monotonic()
        ready = remaining > 0 and select.select([proc.stdout], [], [], remaining)[0]
        line = proc.stdout.readline() if ready else ""
        if line.strip() == "ready":
            return proc
        output += line
        if not line:
            proc.kill()
            output += proc.communicate(timeout=5)[0] or ""
            raise AssertionError(f"slixmpp client did not start:\n{output}")


def stop_proc(proc):
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        proc.kill()
    proc.wait(5)


def test_sigstopped_slixmpp_client_is_dropped_within_the_bound(server, tmp_path):
    """A real client frozen by SIGSTOP (its socket stays open): its contact is told it is
    unavailable within ping_interval + ping_timeout (+ slack)."""
    user, contact = new_users(server, "stp", "stpc")
    befriend(server, user, contact)
    c = online(server, contact, "watch")
    proc = start_slix(server, user, tmp_path)
    try:
        wait_pres(c, f"{user}/slix")
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        got_at = None
        while time.monotonic() < stopped + BOUND + SLACK + 3 and got_at is None:
            def note(el):
                nonlocal got_at
                if is_pres(el, f"{user}/slix", "unavailable"):
                    got_at = time.monotonic()
            answer_pings(c, 0.1, on_other=note)
        assert got_at is not None, "no unavailable presence for the frozen client"
        elapsed = got_at - stopped
        assert elapsed <= BOUND + SLACK, f"detected after {elapsed:.2f}s, bound {BOUND}s"
    finally:
        stop_proc(proc)
        c.close()


def test_idle_slixmpp_client_stays_connected(server, tmp_path):
    """slixmpp answers XEP-0199 pings (plugin loaded): idle for 3x the bound, it is still
    online for its contact."""
    user, contact = new_users(server, "idl", "idlc")
    befriend(server, user, contact)
    c = online(server, contact, "watch")
    proc = start_slix(server, user, tmp_path)
    try:
        wait_pres(c, f"{user}/slix")
        watched = []
        end = time.monotonic() + 3 * BOUND
        while time.monotonic() < end:
            answer_pings(c, 0.2, on_other=watched.append)
        assert proc.poll() is None, "the slixmpp process died"
        assert not [e for e in watched if is_pres(e, f"{user}/slix", "unavailable")], (
            "an idle client that answers pings was dropped")
    finally:
        stop_proc(proc)
        c.close()
