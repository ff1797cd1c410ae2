"""Fixtures for the integration tests.

certs         session: self-signed certificates for localhost and example.test
server        module:  a herald on a fresh, migrated database with the USERS accounts;
                       a module may set HERALD_CONFIG = {...} (merged into the default
                       configuration, see harness.base_config) to change limits
make_server   function: a factory for extra servers the test controls itself

When a test fails, the server log lines written while it ran are attached to the report.
"""
import os
import signal

import pytest

import harness

USERS = harness.USERS


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # tools/test stops the suite with SIGTERM (Ctrl-C, CI timeout): unwind like Ctrl-C so
    # that fixtures stop their servers (they would also get SIGTERM when we die).
    signal.signal(signal.SIGTERM, _interrupt)


def _require_environment():
    if not harness.PGHOST:
        pytest.skip("HERALD_TEST_PGHOST is not set: run these tests through tools/test, "
                    "which starts a throwaway PostgreSQL (or point it at a socket directory "
                    "where user 'herald' may create databases)")
    for binary in (harness.HERALD, harness.HERALDCTL):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is missing: build first (ninja -C {harness.BUILD}) or "
                        f"set HERALD_BUILD")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    return {domain: harness.make_cert(domain, d) for domain in ("localhost", "example.test")}


class ServerFactory:
    def __init__(self, tmp_path, certs, hint):
        self.tmp_path, self.certs, self.hint = tmp_path, certs, hint
        self.servers = []
        self.dbs = []

    def __call__(self, overrides=None, migrate=True, start=True, users=USERS, name=None,
                 dbname=None):
        if dbname is None:
            dbname = harness.unique_dbname(self.hint)
            harness.createdb(dbname)
            self.dbs.append(dbname)
        name = name or f"herald{len(self.servers) + 1}"
        srv = harness.Herald(self.tmp_path / name, dbname, self.certs, overrides, name=name)
        srv.users = dict(users or {})
        self.servers.append(srv)
        if migrate:
            srv.migrate()
        for jid, password in (users or {}).items():
            srv.add_user(jid, password)
        if start:
            srv.start()
        return srv

    def finish(self, check_exit=True):
        """Stops every server still running; asserts they exit 0 on SIGTERM."""
        problems = []
        for srv in self.servers:
            if srv.running():
                try:
                    rc = srv.stop()
                except AssertionError as e:
                    problems.append(f"{srv.name}: {e}")
                    continue
                if check_exit and rc != 0:
                    problems.append(f"{srv.name} exited with status {rc} on SIGTERM "
                                    f"(log: {srv.log_path}):\n{srv.log_text()[-3000:]}")
            elif srv.proc is not None and srv.proc.poll() is not None and not srv.logfile.closed:
                srv.logfile.close()
        for db in self.dbs:
            harness.dropdb(db)
        assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def server(request, certs, tmp_path_factory):
    """The module's herald, configured with the module's HERALD_CONFIG overrides."""
    _require_environment()
    overrides = getattr(request.module, "HERALD_CONFIG", {})
    hint = request.module.__name__.split(".")[-1].removeprefix("test_")
    factory = ServerFactory(tmp_path_factory.mktemp(hint), certs, hint)
    srv = factory(overrides, name="herald")
    yield srv
    factory.finish()


@pytest.fixture
def make_server(request, certs, tmp_path):
    _require_environment()
    factory = ServerFactory(tmp_path, certs, request.node.name[:20])
    yield factory
    factory.finish()


@pytest.fixture
def env_ready():
    """For tests that run the binaries without a server fixture."""
    _require_environment()


# ---------------------------------------------------------------- log on failure

@pytest.fixture(autouse=True)
def _herald_log_offsets(request):
    request.node._herald_offsets = {id(s): s.log_size() for s in harness.ALL_SERVERS}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_herald_offsets", {})
    for srv in harness.ALL_SERVERS:
        start = offsets.get(id(srv), 0)
        if srv.log_size() <= start:
            continue
        lines = srv.log_text(start).splitlines()
        if len(lines) > 200:
            lines = [f"... {len(lines) - 200} earlier lines in {srv.log_path}"] + lines[-200:]
        rep.sections.append((f"herald log {srv.log_path} (during this test)", "\n".join(lines)))
