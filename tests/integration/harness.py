"""Runs Herald for the integration tests: certificates, a database per module, the
configuration file, the server process and heraldctl.

Environment (set by tools/test):
  HERALD_TEST_PGHOST  unix socket directory of a PostgreSQL cluster where the user
                      'herald' may create databases (required; tests skip without it)
  HERALD_BUILD        build directory (default: <repo>/build)
"""
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("HERALD_BUILD") or REPO / "build")
HERALD = BUILD / "server" / "herald"
HERALDCTL = BUILD / "tools" / "heraldctl" / "heraldctl"
PGHOST = os.environ.get("HERALD_TEST_PGHOST", "")

# Every server started in this session, so a failing test can show the log lines that
# were written while it ran (see conftest.py).
ALL_SERVERS = []

# Accounts created on every module server. carol's password is not ASCII.
USERS = {
    "alice@localhost": "alice-secret",
    "bob@localhost": "bob-secret",
    "carol@localhost": "p\u00e4ssw\u00f6rd-carol",
    "dave@localhost": "dave-secret",
    "erin@example.test": "erin-secret",
}

# Exit codes of herald and heraldctl.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3


# ---------------------------------------------------------------- processes

def _die_with_parent():
    """Child side of Popen: get SIGTERM when pytest dies, so no server outlives a run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd, input=None, timeout=60, env=None):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([str(c) for c in cmd], input=input, capture_output=True,
                          text=True, timeout=timeout, env=env)


# ---------------------------------------------------------------- certificates

def make_cert(domain, directory):
    """Self-signed (CA-less) certificate for DOMAIN with SAN DNS:DOMAIN, P-256 key."""
    directory = Path(directory)
    crt, key = directory / f"{domain}.crt", directory / f"{domain}.key"
    r = run(["openssl", "req", "-x509", "-new", "-nodes",
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-sha256", "-days", "30", "-subj", f"/CN={domain}",
             "-addext", f"subjectAltName=DNS:{domain}",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "extendedKeyUsage=serverAuth",
             "-keyout", key, "-out", crt])
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed for {domain}: {r.stderr}")
    return crt, key


# ---------------------------------------------------------------- PostgreSQL

def _pg_tool(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found (install postgresql-client)")
    return path


def conninfo(dbname):
    return f"host={PGHOST} dbname={dbname} user=herald"


def createdb(name):
    r = run([_pg_tool("createdb"), "-h", PGHOST, "-U", "herald", "-O", "herald", name])
    if r.returncode != 0:
        raise RuntimeError(f"createdb {name} failed: {r.stderr}")


def dropdb(name):
    run([_pg_tool("dropdb"), "-h", PGHOST, "-U", "herald", "--if-exists", "--force", name])


def psql(dbname, sql):
    r = run([_pg_tool("psql"), "-h", PGHOST, "-U", "herald", "-d", dbname, "-Atqc", sql])
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr}")
    return r.stdout


_db_counter = 0


def unique_dbname(hint):
    global _db_counter
    _db_counter += 1
    hint = re.sub(r"[^a-z0-9_]", "_", hint.lower())[:30]
    return f"it_{hint}_{os.getpid()}_{_db_counter}"


# ---------------------------------------------------------------- configuration

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (str, Path)):
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(cfg):
    """Serializes a dict: scalars, tables (dict) and arrays of tables (list of dict)."""
    lines = []
    for k, v in cfg.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict)):
            lines.append(f"{k} = {toml_value(v)}")
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def merge(base, override):
    """Deep-merges override into a copy of base; a value of None deletes the key."""
    out = dict(base)
    for k, v in override.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


ALL_MECHANISMS = ["SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
                  "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]


def base_config(dbname, certs, starttls_port, direct_port):
    """A complete configuration (every key written) for a test server."""
    return {
        "log_level": "debug",
        "workers": 2,
        "database": {"conninfo": conninfo(dbname), "pool_size": 2, "connect_timeout": 5},
        "host": [{"domain": d, "certificate": str(c), "key": str(k)}
                 for d, (c, k) in certs.items()],
        "listener": [
            {"address": "127.0.0.1", "port": starttls_port, "tls": "starttls"},
            {"address": "127.0.0.1", "port": direct_port, "tls": "direct"},
        ],
        "limits": {
            "max_stanza_size": 262144,
            "max_stanza_size_unauthenticated": 8192,
            "max_depth": 32,
            "max_attributes": 64,
            "send_queue_bytes": 4194304,
            "unauthenticated_timeout": 60,
        },
        # No test outside test_federation*.py may reach another server: DNS goes to a
        # closed local port, so a remote domain fails at once (remote-server-not-found).
        "federation": {"dns_servers": ["127.0.0.1:9"], "dns_timeout_ms": 500, "dns_tries": 1},
        "auth": {
            "scram_iterations": 4096,
            "mechanisms": list(ALL_MECHANISMS),
            "max_attempts_per_connection": 3,
            # high, so that the many deliberate failures of a module from 127.0.0.1 do
            # not throttle its later tests; test_sasl_throttle.py sets it low
            "ip_failure_limit": 1000,
            "ip_failure_window": 60,
        },
    }


# ---------------------------------------------------------------- server

class Herald:
    """One herald process with its own configuration file and log."""

    def __init__(self, workdir, dbname, certs, overrides=None, name="herald"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dbname = dbname
        self.name = name
        self.port = free_port()          # STARTTLS
        self.tls_port = free_port()      # direct TLS
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.config = merge(base_config(dbname, certs, self.port, self.tls_port),
                            overrides or {})
        self.config_path = self.workdir / f"{name}.toml"
        self.log_path = self.workdir / f"{name}.log"
        self.write_config()
        self.proc = None
        self.returncode = None

    def write_config(self, text=None):
        self.config_path.write_text(text if text is not None else to_toml(self.config))

    # -- heraldctl against this server's configuration
    def ctl(self, *args, input=None, timeout=60):
        return run([HERALDCTL, "--config", self.config_path, *args], input=input,
                   timeout=timeout)

    def migrate(self):
        r = self.ctl("migrate")
        if r.returncode != 0:
            raise RuntimeError(f"heraldctl migrate failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def add_user(self, jid, password):
        r = self.ctl("user", "add", jid, input=password + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"heraldctl user add {jid} failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")

    # -- process
    def start(self, wait=True, timeout=30):
        self.logfile = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(HERALD), "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        ALL_SERVERS.append(self)
        if wait:
            self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout=30):
        deadline = time.monotonic() + timeout
        pending = {self.port, self.tls_port}
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"herald exited with status {self.proc.returncode} "
                                   f"before listening:\n{self.log_text()[-4000:]}")
            pending = {p for p in pending if not port_open(p)}
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"herald is not listening on {sorted(pending)} after "
                                   f"{timeout}s:\n{self.log_text()[-4000:]}")
            if pending:
                time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError(f"herald did not exit within {timeout}s (killed)")
        finally:
            self.logfile.close()
        return self.returncode

    def stop(self, timeout=15):
        """SIGTERM, wait, return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- log
    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, since=0, timeout=5):
        """Waits until the log (from byte offset since) matches regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(since))
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {pattern!r} within {timeout}s")
            time.sleep(0.05)
