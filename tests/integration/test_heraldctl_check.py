"""heraldctl check dns DOMAIN and heraldctl check certs (issue 5, item 6): what an operator
sees for each kind of federation set-up, and the exit status (0 good, 1 a problem).

`check dns` runs in a network namespace of its own (fedenv.py): only loopback, dnsmasq on
127.0.0.1:53, one Herald on 127.0.0.2 (s2s on 5269 STARTTLS and 5270 direct TLS) serving
three domains, each with its own certificate, chosen by SNI:

  a.test         SRV _xmpp-server._tcp and _xmpps-server._tcp -> xmpp.a.test (127.0.0.2)
  c.test         no SRV, only an A record -> 127.0.0.2 (the port 5269 fallback)
  u.test         SRV -> 127.0.0.2; its certificate comes from a CA nobody trusts
  dead.test      SRV -> 127.0.0.9:5269 where nothing listens
  silent.test    SRV -> 127.0.0.10:5269, which accepts TCP and never says a word
  none.test      SRV target "." (no service)
  stranger.test  SRV -> xmpp.a.test, which does not serve stranger.test
  nothing.test   no records at all

`check certs` needs no network: configurations with good, expiring, expired, misnamed and
mismatched certificates from the same test CA.
"""
import re
import time

import pytest

import fedenv
import harness
from harness import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

RECORDS = [
    ("srv", "_xmpp-server._tcp.a.test", "xmpp.a.test", 5269, 0, 5),
    ("srv", "_xmpps-server._tcp.a.test", "xmpp.a.test", 5270, 0, 5),
    ("a", "xmpp.a.test", "127.0.0.2"),
    ("a", "c.test", "127.0.0.2"),
    ("srv", "_xmpp-server._tcp.u.test", "xmpp.u.test", 5269, 0, 5),
    ("a", "xmpp.u.test", "127.0.0.2"),
    ("srv", "_xmpp-server._tcp.dead.test", "xmpp.dead.test", 5269, 0, 5),
    ("a", "xmpp.dead.test", "127.0.0.9"),
    ("srv", "_xmpp-server._tcp.silent.test", "xmpp.silent.test", 5269, 0, 5),
    ("a", "xmpp.silent.test", "127.0.0.10"),
    ("srv-none", "_xmpp-server._tcp.none.test"),
    ("srv", "_xmpp-server._tcp.stranger.test", "xmpp.a.test", 5269, 0, 5),
]
CONNECT_TIMEOUT = 3

needs_netns = pytest.mark.skipif(fedenv.available() is not None, reason=str(fedenv.available()))


def out(r):
    return r.stdout + r.stderr


def last_line(r):
    lines = r.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def ctl(config_path, *args, timeout=60):
    return harness.run([harness.HERALDCTL, "--config", config_path, *args], timeout=timeout)


@pytest.fixture(scope="module")
def ctl_ready():
    if not harness.HERALDCTL.exists():
        pytest.fail(f"{harness.HERALDCTL} is missing: build first (ninja -C {harness.BUILD})")


class Env:
    pass


@pytest.fixture(scope="module")
def fed(tmp_path_factory, ctl_ready):
    if fedenv.available() is not None:
        pytest.skip(fedenv.available())
    if not harness.PGHOST:
        pytest.skip("HERALD_TEST_PGHOST is not set: run these tests through tools/test")
    with fedenv.Network(tmp_path_factory.mktemp("heraldctl_check"), RECORDS, "ctl_check") as net:
        ca = net.ca
        rogue = fedenv.TestCA(net.workdir / "rogue", name="Untrusted CA")
        net.silent_peer("127.0.0.10")
        hosts = [(domain, issuer.issue(domain)) for domain, issuer in (("a.test", ca), ("c.test", ca), ("u.test", rogue))]
        srv = net.herald(hosts, "127.0.0.2", {}, federation={"connect_timeout": CONNECT_TIMEOUT}, name="herald_a")
        env = Env()
        env.ca, env.rogue, env.srv, env.workdir = ca, rogue, srv, net.workdir
        env.config = srv.config_path
        yield env


# ---------------------------------------------------------------- check dns

@needs_netns
def test_srv_records_both_flavours(fed):
    r = ctl(fed.config, "check", "dns", "a.test")
    assert r.returncode == EXIT_OK, out(r)
    text = r.stdout
    assert "DNS servers: 127.0.0.1:53" in text, text
    assert "_xmpps-server._tcp.a.test (direct TLS):\n    priority 0  weight 5  port 5270  target xmpp.a.test" in text
    assert "_xmpp-server._tcp.a.test (STARTTLS):\n    priority 0  weight 5  port 5269  target xmpp.a.test" in text
    # Both targets in the plan, both connected with a valid certificate.
    assert "xmpp.a.test:5270 direct TLS" in text and "xmpp.a.test:5269 STARTTLS" in text, text
    assert "addresses: 127.0.0.2" in text, text
    assert "127.0.0.2: connected; TLS handshake done" in text, text              # direct TLS
    assert "127.0.0.2: connected; STARTTLS accepted; TLS handshake done" in text, text
    assert text.count("chain:   valid (trusted by") == 2, text
    assert "names:   DNS names: a.test; CN: a.test" in text, text
    assert "a.test: named by the certificate" in text, text
    assert re.search(r"expires: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((29|30) days left\)", text), text
    assert last_line(r).startswith("OK: a.test accepts server-to-server connections: xmpp.a.test [127.0.0.2]:"), text


@needs_netns
def test_a_record_only_falls_back_to_5269(fed):
    r = ctl(fed.config, "check", "dns", "c.test")
    assert r.returncode == EXIT_OK, out(r)
    text = r.stdout
    assert "_xmpp-server._tcp.c.test (STARTTLS):\n    none: no such domain (NXDOMAIN)" in text, text
    assert "falling back to the A/AAAA records of c.test on port 5269" in text, text
    assert "1. c.test:5269 STARTTLS" in text, text
    assert "names:   DNS names: c.test; CN: c.test" in text, text
    assert last_line(r) == ("OK: c.test accepts server-to-server connections: c.test [127.0.0.2]:5269 (STARTTLS) "
                            "presents a valid certificate"), text


@needs_netns
def test_untrusted_certificate(fed):
    r = ctl(fed.config, "check", "dns", "u.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    text = r.stdout
    assert "STARTTLS accepted; TLS handshake done" in text, text
    assert "chain:   NOT valid: unable to get local issuer certificate" in text, text
    assert "u.test: named by the certificate" in text, text
    assert last_line(r).startswith("FAILED: the certificate of xmpp.u.test [127.0.0.2]:5269 is not trusted: "
                                   "unable to get local issuer certificate"), text
    assert f"[federation] ca_file ({fed.ca.crt})" in last_line(r), text


@needs_netns
def test_dead_srv_target(fed):
    r = ctl(fed.config, "check", "dns", "dead.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    text = r.stdout
    assert "priority 0  weight 5  port 5269  target xmpp.dead.test" in text, text
    assert "addresses: 127.0.0.9" in text, text
    assert "127.0.0.9: TCP connection failed: Connection refused" in text, text
    assert last_line(r).startswith("FAILED: cannot connect to xmpp.dead.test [127.0.0.9]:5269: Connection refused: "
                                   "check that the XMPP server for dead.test runs"), text


@needs_netns
def test_silent_peer_is_given_up_on_within_connect_timeout(fed):
    start = time.monotonic()
    r = ctl(fed.config, "check", "dns", "silent.test")
    elapsed = time.monotonic() - start
    assert r.returncode == EXIT_FAILURE, out(r)
    assert elapsed < CONNECT_TIMEOUT + 5, f"took {elapsed:.1f} s"
    assert (f"127.0.0.10: connected; XMPP stream failed: no answer within {CONNECT_TIMEOUT} s "
            "([federation] connect_timeout)") in r.stdout, r.stdout
    assert last_line(r).startswith("FAILED: xmpp.silent.test [127.0.0.10]:5269 accepted the connection but the XMPP "
                                   "stream failed: no answer within"), r.stdout


@needs_netns
def test_no_records_at_all(fed):
    r = ctl(fed.config, "check", "dns", "nothing.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    text = r.stdout
    assert "_xmpps-server._tcp.nothing.test (direct TLS):\n    none: no such domain (NXDOMAIN)" in text, text
    assert "addresses: none (no such domain (NXDOMAIN))" in text, text
    assert last_line(r) == ("FAILED: no SRV records and no A/AAAA record for nothing.test: add "
                            "_xmpp-server._tcp.nothing.test SRV records (or an A/AAAA record for nothing.test)"), text


@needs_netns
def test_srv_says_no_service(fed):
    r = ctl(fed.config, "check", "dns", "none.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    assert "target . (no service)" in r.stdout, r.stdout
    assert 'none: none.test says "." (no service)' in r.stdout, r.stdout
    assert last_line(r).startswith('FAILED: none.test says it offers no server-to-server service (SRV target ".")')


@needs_netns
def test_server_that_does_not_serve_the_domain(fed):
    r = ctl(fed.config, "check", "dns", "stranger.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    assert "connected; XMPP stream failed: stream error <host-unknown/>" in r.stdout, r.stdout
    assert last_line(r).startswith("FAILED: the server at xmpp.a.test [127.0.0.2]:5269 does not serve "
                                   "stranger.test"), r.stdout


@needs_netns
def test_dns_server_unreachable(fed):
    cfg = harness.merge(fed.srv.config, {"federation": {"dns_servers": ["127.0.0.1:9"], "dns_timeout_ms": 500,
                                                        "dns_tries": 1}})
    path = fed.workdir / "bad-dns.toml"
    path.write_text(harness.to_toml(cfg))
    r = ctl(path, "check", "dns", "a.test")
    assert r.returncode == EXIT_FAILURE, out(r)
    assert "DNS servers: 127.0.0.1:9; timeout 500 ms, 1 try" in r.stdout, r.stdout
    assert re.search(r"_xmpp-server\._tcp\.a\.test \(STARTTLS\):\n    (error|timeout): ", r.stdout), r.stdout
    assert last_line(r).startswith("FAILED: the DNS lookups for a.test failed ("), r.stdout
    assert "check [federation] dns_servers" in last_line(r), r.stdout


# ---------------------------------------------------------------- check certs

def certs_config(directory, ca, hosts):
    """A configuration with these [[host]]s ({domain: (certificate, key)}) and ca_file = CA."""
    cfg = harness.base_config("unused", {d: ck for d, ck in hosts.items()}, 5222, 5223)
    cfg["federation"]["ca_file"] = str(ca.crt)
    path = directory / "certs.toml"
    path.write_text(harness.to_toml(cfg))
    return path


def host_block(text, domain):
    m = re.search(r"^\[\[host\]\] " + re.escape(domain) + r"\n((?:  .*\n?)*)", text, re.M)
    assert m, f"no block for {domain} in:\n{text}"
    return m.group(1)


@pytest.fixture(scope="module")
def ca(tmp_path_factory, ctl_ready):
    return fedenv.TestCA(tmp_path_factory.mktemp("ctl_certs") / "ca")


def test_check_certs_good(ca, tmp_path):
    hosts = {"a.test": ca.issue("a.test"), "c.test": ca.issue("c.test", names=["c.test", "*.c.test"])}
    r = ctl(certs_config(tmp_path, ca, hosts), "check", "certs")
    assert r.returncode == EXIT_OK, out(r)
    for domain in hosts:
        block = host_block(r.stdout, domain)
        assert "matches the certificate" in block, block
        assert f"{domain}: named by the certificate" in block, block
        assert "chain:       valid" in block, block
        assert re.search(r"expires:     .* UTC \((29|30) days left\)", block), block
        assert "=> OK" in block, block
    assert "names:       DNS names: c.test, *.c.test; CN: c.test" in r.stdout, r.stdout
    assert last_line(r) == "OK: the certificates and keys of all 2 hosts are good", r.stdout


def test_check_certs_problems(ca, tmp_path):
    good = ca.issue("good.test")
    soon = ca.issue("soon.test", days=5)
    old = ca.issue("old.test", days=-1)              # notAfter a day before now: expired
    other = ca.issue("other.test")
    keyless = ca.issue("k.test")
    rogue = fedenv.TestCA(tmp_path / "rogue", name="Untrusted CA")
    hosts = {
        "good.test": good,
        "soon.test": soon,
        "old.test": old,
        "m.test": other,                    # certificate for other.test only
        "k.test": (keyless[0], good[1]),    # someone else's key
        "r.test": rogue.issue("r.test"),    # a CA not in ca_file
    }
    r = ctl(certs_config(tmp_path, ca, hosts), "check", "certs")
    assert r.returncode == EXIT_FAILURE, out(r)
    text = r.stdout
    assert "=> OK" in host_block(text, "good.test")

    block = host_block(text, "soon.test")
    assert re.search(r"warning: the certificate expires on .* UTC, in [45] days: renew it soon", block), block
    assert "PROBLEM" not in block, block

    block = host_block(text, "old.test")
    assert re.search(r"expires:     .* UTC \(EXPIRED (1 day|less than a day) ago\)", block), block
    assert "chain:       NOT valid: certificate has expired" in block, block
    assert re.search(r"PROBLEM: the certificate expired on .* UTC: renew it", block), block
    assert block.count("PROBLEM") == 1, block

    block = host_block(text, "m.test")
    assert "m.test: NOT named by the certificate" in block, block
    assert ("PROBLEM: the certificate does not name m.test (names: DNS names: other.test; CN: other.test): get a "
            "certificate with the DNS name m.test") in block, block

    block = host_block(text, "k.test")
    assert "does NOT match the certificate" in block, block
    assert f"PROBLEM: the key in {good[1]} does not belong to the certificate in {keyless[0]}" in block, block

    block = host_block(text, "r.test")
    assert "chain:       NOT valid: unable to get local issuer certificate" in block, block
    assert f"PROBLEM: the certificate does not verify against [federation] ca_file ({ca.crt})" in block, block

    assert last_line(r) == "FAILED: 4 problems in 4 of 6 hosts: fix what each PROBLEM line says", text


# ---------------------------------------------------------------- usage

@pytest.mark.parametrize("args", [
    ["check"],
    ["check", "bogus"],
    ["check", "dns"],
    ["check", "dns", "a.test", "b.test"],
    ["check", "dns", "alice@a.test"],
    ["check", "dns", "--frobnicate", "a.test"],
    ["check", "certs", "extra"],
])
def test_check_usage_errors(ctl_ready, tmp_path, args):
    r = ctl(tmp_path / "not-needed.toml", *args)
    assert r.returncode == EXIT_USAGE, out(r)
    assert "Try 'heraldctl " in r.stderr, out(r)


@pytest.mark.parametrize("args,first", [
    (["check", "--help"], "Usage: heraldctl [--config FILE] check COMMAND"),
    (["check", "dns", "--help"], "Usage: heraldctl [--config FILE] check dns DOMAIN"),
    (["check", "dns", "a.test", "-h"], "Usage: heraldctl [--config FILE] check dns DOMAIN"),
    (["check", "certs", "--help"], "Usage: heraldctl [--config FILE] check certs"),
])
def test_check_help(ctl_ready, args, first):
    r = harness.run([harness.HERALDCTL, *args])
    assert r.returncode == EXIT_OK, out(r)
    assert r.stdout.startswith(first), r.stdout


def test_main_help_lists_check(ctl_ready):
    r = harness.run([harness.HERALDCTL, "--help"])
    assert r.returncode == EXIT_OK, out(r)
    assert "check dns DOMAIN" in r.stdout and "check certs" in r.stdout, r.stdout
