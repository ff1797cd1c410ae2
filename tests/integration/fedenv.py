"""A private network for the federation tests (issue 5): a network namespace of our own
with only loopback, a real DNS server in it (Debian's dnsmasq on 127.0.0.1:53) serving SRV
and A records for test domains on 127.0.0.x, and a test CA that signs the peers'
certificates.

The pytest process itself enters the namespace (setns on its main thread) for the tests
that use it, so the clients it opens and every process it starts (Herald, Prosody,
dnsmasq) live there; it returns to its own namespace afterwards. Needs root (CAP_SYS_ADMIN)
and iproute2; tests skip otherwise."""
import ctypes
import itertools
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import harness

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_counter = itertools.count(1)
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def available():
    """Why the federation environment cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2 (ip)"
    if not os.path.exists(DNSMASQ):
        return "needs dnsmasq (tools/bootstrap installs dnsmasq-base)"
    return None


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class NetNS:
    """ip netns add; enter() moves this thread (and what it starts) into it."""

    def __init__(self):
        self.name = f"herald-t{os.getpid()}-{next(_counter)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self.fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def enter(self):
        _setns(self.fd)

    def leave(self):
        _setns(self.home)

    def delete(self):
        os.close(self.fd)
        os.close(self.home)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


class TestCA:
    """A CA and certificates it signs (SAN DNS names, serverAuth + clientAuth)."""

    def __init__(self, directory, name="Herald Test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.crt = self.dir / "ca.crt"
        self._openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec",
                      "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256", "-days", "30",
                      "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-keyout", self.key, "-out", self.crt)

    def _openssl(self, *args):
        r = harness.run(["openssl", *map(str, args)])
        if r.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {r.stderr}")

    def issue(self, domain, names=None, days=30):
        """Certificate and key for DOMAIN (SAN DNS: each of NAMES, default [DOMAIN])."""
        names = names or [domain]
        key, csr, crt = (self.dir / f"{domain}.key", self.dir / f"{domain}.csr", self.dir / f"{domain}.crt")
        ext = self.dir / f"{domain}.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n"
                       "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
        self._openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-subj", f"/CN={domain}", "-keyout", key, "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key, "-CAcreateserial",
                      "-days", str(days), "-sha256", "-extfile", ext, "-out", crt)
        return crt, key


class Dns:
    """dnsmasq on 127.0.0.1:53 inside the namespace, authoritative for .test.

    records: list of dnsmasq options such as
      ("srv", "_xmpp-server._tcp.a.test", "xmpp.a.test", 5269, priority, weight)
      ("a", "xmpp.a.test", "127.0.0.2")"""

    def __init__(self, workdir, records, ttl=5):
        self.workdir = Path(workdir)
        self.log = self.workdir / "dnsmasq.log"
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root",
                f"--local-ttl={ttl}", "--local=/test/", "--log-queries", f"--log-facility={self.log}"]
        for rec in records:
            kind = rec[0]
            if kind == "srv":
                _, name, target, port, prio, weight = rec
                args.append(f"--srv-host={name},{target},{port},{prio},{weight}")
            elif kind == "srv-none":
                args.append(f"--srv-host={rec[1]}")
            elif kind == "a":
                args.append(f"--host-record={rec[1]},{rec[2]}")
            else:
                raise ValueError(kind)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline:
            if harness.port_open(53):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        # UDP only would not show as a TCP port; dnsmasq also serves TCP, so this is fatal
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


class Network:
    """What a federation test module sets up, torn down in reverse order: a fresh
    namespace entered by this thread, a test CA (.ca), dnsmasq serving RECORDS (.dns) and a
    ServerFactory (.factory); silent_peer() and herald() add to it. A context manager."""

    def __init__(self, workdir, records, hint):
        self.workdir = Path(workdir)
        self._records = records
        self._hint = hint
        self._undo = []

    def __enter__(self):
        from conftest import ServerFactory
        ns = NetNS()
        ns.enter()
        self._undo.append(lambda: (ns.leave(), ns.delete()))
        try:
            self.ca = TestCA(self.workdir / "ca")
            self.dns = Dns(self.workdir, self._records)
            self._undo.append(self.dns.stop)
            self.factory = ServerFactory(self.workdir, {}, self._hint)
            self._undo.append(self.factory.finish)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def silent_peer(self, ip, port=5269):
        """A peer that accepts TCP on IP:PORT and then never says a word."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(16)
        self._undo.append(s.close)

    def herald(self, hosts, ip, users, federation=None, name=None):
        """Starts a Herald serving HOSTS ([(domain, (cert, key)), ...], the first one its
        main domain) that federates on IP:5269/5270."""
        domain, (cert, key) = hosts[0]
        overrides = peer_config(domain, ip, self.ca, cert, key, federation)
        overrides["host"] = [{"domain": d, "certificate": str(c), "key": str(k)} for d, (c, k) in hosts]
        srv = self.factory(overrides, users=users, start=False, name=name or domain)
        add_s2s_listeners(srv, ip)
        srv.start()
        return srv

    def __exit__(self, exc_type, exc, tb):
        errors = []
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as e:  # keep undoing; report the first problem
                errors.append(e)
        if errors and exc_type is None:
            raise errors[0]


def peer_config(domain, ip, ca, cert, key, federation=None, c2s_port=None):
    """Overrides for a Herald serving DOMAIN, federating on IP:5269 (STARTTLS) and
    IP:5270 (direct TLS), trusting CA, asking our dnsmasq."""
    fed = {"ca_file": str(ca.crt), "dns_servers": ["127.0.0.1:53"], "dns_timeout_ms": 1000,
           "dns_tries": 2, "connect_timeout": 5, "bounce_after": 10}
    fed.update(federation or {})
    return {
        "host": [{"domain": domain, "certificate": str(cert), "key": str(key)}],
        "federation": fed,
    }


def add_s2s_listeners(srv, ip):
    """Adds IP:5269 (STARTTLS) and IP:5270 (direct TLS) s2s listeners to a server that
    has not started yet."""
    srv.config["listener"] = list(srv.config["listener"]) + [
        {"address": ip, "port": 5269, "tls": "starttls", "type": "s2s"},
        {"address": ip, "port": 5270, "tls": "direct", "type": "s2s"},
    ]
    srv.write_config()
