"""Federation with a real Prosody (Debian's package) serving p.test (issue 5): messages
and a presence subscription both ways between Herald's a.test and Prosody's p.test, over
verified TLS, in the same kind of private network as test_federation.py.

Prosody resolves through /etc/resolv.conf only, so it runs in a mount namespace of its own
where our resolv.conf (pointing at the test's dnsmasq) is bound over /etc/resolv.conf."""
import shutil
import subprocess
import time

import pytest

import fedenv
import harness
import rawclient as rc
from flows import is_pres

PROSODY = shutil.which("prosody")
pytestmark = pytest.mark.skipif(fedenv.available() is not None or not PROSODY,
                                reason=fedenv.available() or "prosody is not installed (tools/bootstrap)")

RECORDS = [
    ("srv", "_xmpp-server._tcp.a.test", "xmpp.a.test", 5269, 0, 5),
    ("a", "xmpp.a.test", "127.0.0.2"),
    ("srv", "_xmpp-server._tcp.p.test", "xmpp.p.test", 5269, 0, 5),
    ("a", "xmpp.p.test", "127.0.0.7"),
    ("srv", "_xmpp-server._tcp.e.test", "xmpp.e.test", 5269, 0, 5),
    ("a", "xmpp.e.test", "127.0.0.8"),
]

PROSODY_CONFIG = """
run_as_root = true
daemonize = false
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = "{dir}/prosody.log" }} }}
interfaces = {{ "127.0.0.7" }}
c2s_interfaces = {{ "127.0.0.7" }}
c2s_ports = {{ 5222 }}
c2s_direct_tls_ports = {{ }}
s2s_interfaces = {{ "127.0.0.7" }}
s2s_ports = {{ 5269 }}
s2s_direct_tls_ports = {{ }}
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = true
allow_registration = false
authentication = "internal_plain"
storage = "internal"
modules_enabled = {{ "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix"; "s2s_bidi"; }}
ssl = {{ cafile = "{ca}"; }}
VirtualHost "p.test"
  ssl = {{ certificate = "{crt}"; key = "{key}"; cafile = "{ca}"; }}
"""


class Prosody:
    def __init__(self, workdir, ca, crt, key, users):
        self.dir = workdir
        (workdir / "data" / "p%2etest" / "accounts").mkdir(parents=True)
        for user, password in users.items():
            (workdir / "data" / "p%2etest" / "accounts" / f"{user}.dat").write_text(
                f'return {{ ["password"] = "{password}"; }};\n')
        self.config = workdir / "prosody.cfg.lua"
        self.config.write_text(PROSODY_CONFIG.format(dir=workdir, ca=ca.crt, crt=crt, key=key))
        resolv = workdir / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        self.log = workdir / "prosody.log"
        self.out = open(workdir / "prosody.out", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--", "sh", "-c",
             f"mount --bind {resolv} /etc/resolv.conf && exec {PROSODY} -F --config {self.config}"],
            stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prosody exited: {(workdir / 'prosody.out').read_text()}")
            if harness.port_open(5222, "127.0.0.7") and harness.port_open(5269, "127.0.0.7"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"prosody did not start: {self.log_text()[-3000:]}")

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return (self.dir / "prosody.out").read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.out.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with fedenv.Network(tmp_path_factory.mktemp("prosody_fed"), RECORDS, "pfed") as env:
        ca = env.ca

        class Net:
            pass
        n = Net()
        n.herald = env.herald([("a.test", ca.issue("a.test"))], "127.0.0.2", {"alice@a.test": "alice-pw"})
        n.herald_e = env.herald([("e.test", ca.issue("e.test"))], "127.0.0.8", {"carol@e.test": "carol-pw"})
        pcert, pkey = ca.issue("p.test")
        n.prosody = Prosody(env.workdir / "prosody", ca, pcert, pkey, {"bob": "bob-pw"})
        try:
            yield n
        finally:
            n.prosody.stop()


def login_prosody(user, password):
    return rc.login(5222, user, password, domain="p.test", host="127.0.0.7", presence=True)


def test_messages_both_ways_with_prosody(net):
    a = rc.login(net.herald.port, "alice", "alice-pw", domain="a.test", presence=True)
    try:
        p = login_prosody("bob", "bob-pw")
    except Exception:
        a.close()
        raise
    try:
        a.message("bob@p.test", "hello prosody")
        m = p.wait_message("hello prosody", timeout=15)
        assert m.get("from") == a.jid, rc.show(m)
        p.message(a.jid, "hello herald")
        m = a.wait_message("hello herald", timeout=15)
        assert m.get("from") == p.jid, rc.show(m)
        # Herald authenticated to Prosody by certificate (SASL EXTERNAL, XEP-0178) and
        # enabled bidirectionality (XEP-0288): Prosody answered on the same stream.
        log = net.prosody.log_text()
        assert "Accepting SASL EXTERNAL identity from a.test" in log
        assert "Requested bidirectional stream" in log
    except Exception:
        print(net.prosody.log_text()[-4000:])
        raise
    finally:
        a.close()
        p.close()


def test_presence_subscription_with_prosody(net):
    a = rc.login(net.herald.port, "alice", "alice-pw", domain="a.test", presence=True)
    p = login_prosody("bob", "bob-pw")
    try:
        p.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
        a.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        a.send("<presence to='bob@p.test' type='subscribe'/>")
        req = p.wait_for(lambda e: is_pres(e, type_="subscribe"), timeout=15, what="the request at prosody")
        assert req.get("from") == "alice@a.test", rc.show(req)
        p.send("<presence to='alice@a.test' type='subscribed'/>")
        ok = a.wait_for(lambda e: is_pres(e, type_="subscribed"), timeout=15, what="prosody's approval")
        assert ok.get("from") == "bob@p.test", rc.show(ok)
        a.wait_for(lambda e: is_pres(e) and (e.get("from") or "").startswith("bob@p.test/") and e.get("type") is None,
                   timeout=15, what="bob's presence from prosody")
        # And the other way: bob subscribes to alice on Herald.
        p.send("<presence to='alice@a.test' type='subscribe'/>")
        req = a.wait_for(lambda e: is_pres(e, type_="subscribe"), timeout=15, what="the request at herald")
        assert req.get("from") == "bob@p.test", rc.show(req)
        a.send("<presence to='bob@p.test' type='subscribed'/>")
        p.wait_for(lambda e: is_pres(e) and e.get("from") == a.jid and e.get("type") is None, timeout=15,
                   what="alice's presence at prosody")
    except Exception:
        print(net.prosody.log_text()[-4000:])
        raise
    finally:
        a.close()
        p.close()


def test_prosody_opens_the_stream(net):
    """Prosody speaks first: its stream to Herald's e.test authenticates by certificate
    (Herald's S2sIn, SASL EXTERNAL) and Herald's answer returns over it (XEP-0288)."""
    e = rc.login(net.herald_e.port, "carol", "carol-pw", domain="e.test", presence=True)
    p = login_prosody("bob", "bob-pw")
    try:
        p.message("carol@e.test", "prosody first")
        m = e.wait_message("prosody first", timeout=15)
        assert m.get("from") == p.jid, rc.show(m)
        net.herald_e.wait_log(r"p\.test -> e\.test authenticated by certificate", timeout=5)
        e.message(p.jid, "herald answers")
        m = p.wait_message("herald answers", timeout=15)
        assert m.get("from") == e.jid, rc.show(m)
    except Exception:
        print(net.prosody.log_text()[-4000:])
        raise
    finally:
        e.close()
        p.close()
