"""Configuration errors stop the server before any port opens, with a message naming
the key or file and exit status 3 (config error); --check validates; the server refuses
a database whose schema is not migrated and names the command that fixes it."""
import subprocess
import time

import pytest

import harness
from harness import EXIT_CONFIG, EXIT_USAGE, Herald, port_open


def run_herald(h, *extra, timeout=15):
    """Runs herald on h's configuration until it exits, watching h's ports meanwhile.
    Returns (exit status, output, whether a port was ever open)."""
    proc = subprocess.Popen([str(harness.HERALD), "--config", str(h.config_path), *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    opened = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if port_open(h.port) or port_open(h.tls_port):
            opened = True
        if time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode("utf-8", "replace")
            raise AssertionError(f"herald still running after {timeout}s:\n{out[-3000:]}")
        time.sleep(0.01)
    out = proc.communicate()[0].decode("utf-8", "replace")
    return proc.returncode, out, opened


@pytest.fixture(scope="module")
def dbname(server):
    """The module server's (migrated) database; the server itself is not used."""
    return server.dbname


def herald_with(tmp_path, dbname, certs, overrides=None, name="bad"):
    return Herald(tmp_path / name, dbname, certs, overrides, name=name)


BAD = [
    # id, overrides, words that must appear in the output (any one of each tuple)
    ("unknown top-level key", {"bogus_key": 1}, [("bogus_key",)]),
    ("unknown key in [limits]", {"limits": {"max_stanza_sise": 1000}}, [("max_stanza_sise",)]),
    ("unknown key in [auth]", {"auth": {"mechanism": ["PLAIN"]}}, [("mechanism",)]),
    ("unknown table", {"databse": {"conninfo": "x"}}, [("databse",)]),
    ("wrong type", {"workers": "two"}, [("workers",)]),
    ("bad log_level", {"log_level": "loud"}, [("log_level",)]),
    ("negative size", {"limits": {"max_stanza_size": -5}}, [("max_stanza_size",)]),
    ("zero depth", {"limits": {"max_depth": 0}}, [("max_depth",)]),
    ("bad timeout type", {"limits": {"unauthenticated_timeout": "soon"}},
     [("unauthenticated_timeout",)]),
    ("unknown mechanism", {"auth": {"mechanisms": ["SCRAM-SHA-3", "PLAIN"]}},
     [("SCRAM-SHA-3", "mechanisms")]),
    ("mechanisms not a list", {"auth": {"mechanisms": "PLAIN"}}, [("mechanisms",)]),
    ("pool_size zero", {"database": {"pool_size": 0}}, [("pool_size",)]),
    ("no conninfo", {"database": {"conninfo": None}}, [("conninfo",)]),
]


@pytest.mark.parametrize("overrides,words", [pytest.param(o, w, id=i) for i, o, w in BAD])
def test_config_error_named_before_ports_open(server, certs, tmp_path, dbname, overrides, words):
    h = herald_with(tmp_path, dbname, certs, overrides)
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}, expected {EXIT_CONFIG}:\n{out}"
    for alternatives in words:
        assert any(w in out for w in alternatives), f"{alternatives} not named in:\n{out}"
    assert not opened, "a port was opened before the configuration error"


@pytest.mark.parametrize("field,value", [("tls", "sometimes"), ("port", 70000),
                                         ("port", "5222"), ("address", "not-an-address"),
                                         ("color", "blue")])
def test_bad_listener(server, certs, tmp_path, dbname, field, value):
    h = herald_with(tmp_path, dbname, certs)
    h.config["listener"][0][field] = value
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert field in out, f"{field!r} not named in:\n{out}"
    assert not opened


def test_unknown_key_in_host(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][0]["certfile"] = "x.pem"
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, out
    assert "certfile" in out, out
    assert not opened


def test_no_host(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs, {"host": None})
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, out
    assert "host" in out, out
    assert not opened


def test_duplicate_domain(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"].append(dict(h.config["host"][0]))
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, out
    assert "localhost" in out or "domain" in out, out
    assert not opened


def test_toml_syntax_error(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs)
    h.write_config(harness.to_toml(h.config) + "\nthis is = = not toml [\n")
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, out
    assert str(h.config_path) in out or "line" in out, out
    assert not opened


def test_missing_config_file(env_ready, tmp_path):
    missing = tmp_path / "nope.toml"
    r = harness.run([harness.HERALD, "--config", missing], timeout=15)
    assert r.returncode == EXIT_CONFIG, r.stdout + r.stderr
    assert str(missing) in r.stdout + r.stderr


def test_unknown_command_line_option_is_usage_error(env_ready, tmp_path):
    r = harness.run([harness.HERALD, "--frobnicate"], timeout=15)
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr


# ---------------------------------------------------------------- certificates

def test_missing_certificate(server, certs, tmp_path, dbname):
    missing = tmp_path / "no-such.crt"
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][1]["certificate"] = str(missing)
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert str(missing) in out, out
    assert not opened


def test_missing_key(server, certs, tmp_path, dbname):
    missing = tmp_path / "no-such.key"
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][0]["key"] = str(missing)
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert str(missing) in out, out
    assert not opened


def test_certificate_that_is_not_pem(server, certs, tmp_path, dbname):
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("this is not a certificate\n")
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][0]["certificate"] = str(garbage)
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert str(garbage) in out, out
    assert not opened


def test_unreadable_certificate_directory(server, certs, tmp_path, dbname):
    """A directory where a certificate file should be."""
    d = tmp_path / "a-directory.crt"
    d.mkdir()
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][0]["certificate"] = str(d)
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert str(d) in out, out
    assert not opened


def test_key_not_matching_certificate(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs)
    h.config["host"][0]["key"] = str(certs["example.test"][1])
    h.write_config()
    rc, out, opened = run_herald(h)
    assert rc == EXIT_CONFIG, f"exit status {rc}:\n{out}"
    assert (str(certs["example.test"][1]) in out or str(certs["localhost"][0]) in out), out
    assert not opened


def test_relative_certificate_paths(server, certs, tmp_path, dbname):
    """Relative paths are relative to the configuration file's directory: --check passes."""
    h = herald_with(tmp_path, dbname, certs)
    tls = h.workdir / "tls"
    tls.mkdir()
    for domain, (crt, key) in certs.items():
        (tls / crt.name).write_bytes(crt.read_bytes())
        (tls / key.name).write_bytes(key.read_bytes())
    for host in h.config["host"]:
        host["certificate"] = "tls/" + certs[host["domain"]][0].name
        host["key"] = "tls/" + certs[host["domain"]][1].name
    h.write_config()
    r = harness.run([harness.HERALD, "--config", h.config_path, "--check"], timeout=15)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- --check

def test_check_valid_config(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs)
    rc, out, opened = run_herald(h, "--check")
    assert rc == 0, out
    assert not opened, "--check opened a port"


def test_check_invalid_config(server, certs, tmp_path, dbname):
    h = herald_with(tmp_path, dbname, certs, {"limits": {"max_depth": "deep"}})
    rc, out, opened = run_herald(h, "--check")
    assert rc == EXIT_CONFIG, out
    assert "max_depth" in out, out
    assert not opened


# ---------------------------------------------------------------- database schema

def test_refuses_unmigrated_database(env_ready, certs, tmp_path):
    db = harness.unique_dbname("unmigrated")
    harness.createdb(db)
    try:
        h = herald_with(tmp_path, db, certs, name="unmigrated")
        rc, out, opened = run_herald(h, timeout=30)
        assert rc != 0, out
        assert "heraldctl" in out and "migrate" in out, (
            f"the message does not name 'heraldctl ... migrate':\n{out}")
        assert not opened, "ports opened on an unmigrated database"
    finally:
        harness.dropdb(db)


def test_unreachable_database_fails(env_ready, certs, tmp_path):
    h = herald_with(tmp_path, "x", certs,
                    {"database": {"conninfo": f"host={tmp_path}/nowhere dbname=x user=herald",
                                  "connect_timeout": 2}})
    rc, out, opened = run_herald(h, timeout=30)
    assert rc != 0, out
    assert not opened
