"""heraldctl: migrate, migrate --status, user add/del/passwd/list; exit codes
0 ok, 1 failure, 2 usage, 3 config error; passwords are read from stdin."""
import re

import pytest

import harness
import rawclient as rc
from flows import login
from harness import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Herald
from rawclient import NS_SASL, q


def out(r):
    return r.stdout + r.stderr


def jids(r):
    return set(r.stdout.split())


def can_login(server, jid, password, mechanism="PLAIN"):
    local, domain = jid.split("@")
    c = rc.connect_tls(server.port, domain=domain)
    try:
        res = (c.auth_plain(local, password) if mechanism == "PLAIN"
               else c.auth_scram(mechanism, local, password))
        if res.tag == q(NS_SASL, "success"):
            return True
        assert rc.sasl_condition(res) == "not-authorized", rc.show(res)
        return False
    finally:
        c.close()


# ---------------------------------------------------------------- migrate

def test_migrate_status_then_migrate(env_ready, certs, tmp_path):
    db = harness.unique_dbname("ctl_migrate")
    harness.createdb(db)
    try:
        h = Herald(tmp_path / "ctl", db, certs)
        before = h.ctl("migrate", "--status")
        assert before.returncode in (EXIT_OK, EXIT_FAILURE), out(before)
        assert before.returncode != EXIT_OK or re.search(
            r"pending|not applied|unapplied|missing|behind", out(before), re.I), (
            f"--status on an empty database does not say anything is pending:\n{out(before)}")

        first = h.ctl("migrate")
        assert first.returncode == EXIT_OK, out(first)
        after = h.ctl("migrate", "--status")
        assert after.returncode == EXIT_OK, out(after)
        assert (out(after), after.returncode) != (out(before), before.returncode)
        assert int(harness.psql(db, "SELECT count(*) FROM herald_schema").strip()) > 0

        again = h.ctl("migrate")                      # idempotent
        assert again.returncode == EXIT_OK, out(again)
        assert out(h.ctl("migrate", "--status")) == out(after)

        # and now a server starts on it
        h.start()
        assert h.stop() == 0
    finally:
        harness.dropdb(db)


def test_migrate_unreachable_database_fails(env_ready, certs, tmp_path):
    h = Herald(tmp_path / "ctl", "x", certs,
               {"database": {"conninfo": f"host={tmp_path}/nowhere dbname=x user=herald",
                             "connect_timeout": 2}})
    r = h.ctl("migrate")
    assert r.returncode == EXIT_FAILURE, out(r)


# ---------------------------------------------------------------- users

def test_user_add_list_del(server):
    jid, pw = "frank@localhost", "frank-secret"
    r = server.ctl("user", "add", jid, input=pw + "\n")
    assert r.returncode == EXIT_OK, out(r)
    assert jid in jids(server.ctl("user", "list", "localhost"))
    everyone = server.ctl("user", "list")
    assert everyone.returncode == EXIT_OK, out(everyone)
    assert {jid, "alice@localhost", "erin@example.test"} <= jids(everyone), everyone.stdout
    other = server.ctl("user", "list", "example.test")
    assert "erin@example.test" in jids(other) and jid not in jids(other), other.stdout
    assert can_login(server, jid, pw)

    dup = server.ctl("user", "add", jid, input="another\n")
    assert dup.returncode == EXIT_FAILURE, out(dup)
    assert can_login(server, jid, pw), "a failed 'user add' changed the password"

    r = server.ctl("user", "del", jid)
    assert r.returncode == EXIT_OK, out(r)
    assert jid not in jids(server.ctl("user", "list", "localhost"))
    assert not can_login(server, jid, pw)
    r = server.ctl("user", "del", jid)
    assert r.returncode == EXIT_FAILURE, out(r)


def test_user_passwd(server):
    jid, old, new = "gina@localhost", "old-secret", "new-secret"
    assert server.ctl("user", "add", jid, input=old + "\n").returncode == EXIT_OK
    r = server.ctl("user", "passwd", jid, input=new + "\n")
    assert r.returncode == EXIT_OK, out(r)
    for mech in ("PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert not can_login(server, jid, old, mech), f"old password still works with {mech}"
        assert can_login(server, jid, new, mech), f"new password fails with {mech}"
    r = server.ctl("user", "passwd", "nobody@localhost", input="x\n")
    assert r.returncode == EXIT_FAILURE, out(r)


def test_password_without_trailing_newline(server):
    jid = "hank@localhost"
    assert server.ctl("user", "add", jid, input="no-newline").returncode == EXIT_OK
    assert can_login(server, jid, "no-newline")


def test_user_add_normalizes_jid(server):
    """RFC 7622: the localpart and domain are case-mapped."""
    r = server.ctl("user", "add", "Zed@LocalHost", input="zed-secret\n")
    assert r.returncode == EXIT_OK, out(r)
    assert "zed@localhost" in jids(server.ctl("user", "list", "localhost"))
    c = login(server, "zed@localhost", password="zed-secret")
    assert c.jid.startswith("zed@localhost/")
    c.close()


@pytest.mark.parametrize("bad", ["no spaces allowed@localhost", "localhost", "@localhost",
                                 "a@b@localhost", "alice@localhost/resource"])
def test_user_add_invalid_jid(server, bad):
    r = server.ctl("user", "add", bad, input="pw\n")
    assert r.returncode in (EXIT_FAILURE, EXIT_USAGE), out(r)
    assert bad not in jids(server.ctl("user", "list"))


# ---------------------------------------------------------------- exit codes

@pytest.mark.parametrize("args", [[], ["frobnicate"], ["user"], ["user", "add"],
                                  ["user", "frobnicate", "x@localhost"], ["migrate", "--bogus"]])
def test_usage_errors(server, args):
    r = server.ctl(*args, input="")
    assert r.returncode == EXIT_USAGE, f"{args}: {out(r)}"


def test_missing_config_option_is_usage_error(env_ready):
    r = harness.run([harness.HERALDCTL, "user", "list"], input="")
    assert r.returncode in (EXIT_USAGE, EXIT_CONFIG), out(r)


def test_missing_config_file(env_ready, tmp_path):
    missing = tmp_path / "nope.toml"
    r = harness.run([harness.HERALDCTL, "--config", missing, "user", "list"])
    assert r.returncode == EXIT_CONFIG, out(r)
    assert str(missing) in out(r)


def test_bad_config(env_ready, certs, tmp_path):
    h = Herald(tmp_path / "ctl", "x", certs, {"bogus_key": 1})
    r = h.ctl("user", "list")
    assert r.returncode == EXIT_CONFIG, out(r)
    assert "bogus_key" in out(r)
