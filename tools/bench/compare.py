#!/usr/bin/env python3
"""The driver behind tools/bench/compare: runs herald-bench's scenarios against Herald,
Prosody, ejabberd and the TLS relay floor, one server at a time, in rounds, and reports
medians and ratios. tools/bench/compare prepares what this needs (packages, a release
build, a private PostgreSQL pinned to the server CPU) and then runs it; run that, not this.

Each round starts every server afresh (pinned to --server-cpu), runs the scenarios with
the generator pinned to --generator-cpu, and stops it; accounts and rosters are
provisioned once per server, before its first round, the way each server is
administered (Herald: heraldctl and SQL; Prosody: its data files; ejabberd: Erlang RPC
into its own registration and roster functions)."""
import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PASSWORD = "bench"
DOMAIN = "localhost"
ITERATIONS = 4096

# Users: u1..uN (idle, login, message pairs, fan-out contacts), plus the fan-out owners
# and the roster owners. fanK's contacts are a range of u-users of its own, so no
# contact is in two fan-out rosters.
FANOUT = {200: 1001, 1000: 1}        # K -> first contact index (fanK has u<first>..)
ROSTERS = (100, 5000)                # rosterN has u1..uN as items


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            die(f"{what} exited with status {proc.returncode} before listening on {port} "
                f"(see its log in the run directory)")
        time.sleep(0.1)
    die(f"{what} did not listen on port {port} within {timeout} s")


def stop_process(proc, timeout=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pin(cpus):
    return ["taskset", "-c", cpus]


# ------------------------------------------------------------------ servers

class Server:
    """One server under test. Subclasses fill in start/stop/provision."""
    name = "?"
    scenarios = ("login", "idle", "messages", "fixed", "fanout", "roster")

    def __init__(self, args, work):
        self.args = args
        self.dir = work / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.provisioned = False

    def pid(self):
        return self.proc.pid

    def stop(self):
        stop_process(self.proc)
        self.proc = None


class Herald(Server):
    name = "herald"
    port = 17222

    def __init__(self, args, work, workers=1, cpus=None, label=None):
        if label:
            self.name = label
        super().__init__(args, work)
        self.workers = workers
        self.cpus = cpus or args.server_cpu
        self.config = self.dir / "herald.toml"
        self.herald = args.build / "server/herald"
        self.heraldctl = args.build / "tools/heraldctl/heraldctl"

    def write_config(self):
        a = self.args
        self.config.write_text(f"""# written by tools/bench/compare
log_level = "warn"
workers = {self.workers}

[database]
conninfo = "host={a.pg_socket} dbname=bench user=herald"
pool_size = 8

[[host]]
domain = "{DOMAIN}"
certificate = "{a.cert}"
key = "{a.key}"

[[listener]]
address = "127.0.0.1"
port = {self.port}
tls = "starttls"

[auth]
scram_iterations = {ITERATIONS}

# The peers run without message archives (Prosody loads no mod_mam, ejabberd is
# configured without it): compare like with like.
[archive]
enabled = false

[federation]
enabled = false
""")

    def provision(self, users):
        a = self.args
        self.write_config()
        psql = [a.pg_bin / "psql", "-h", a.pg_socket, "-U", "herald", "-v", "ON_ERROR_STOP=1", "-q"]
        run(psql + ["-d", "postgres", "-c", "DROP DATABASE IF EXISTS bench"])
        run(psql + ["-d", "postgres", "-c", "CREATE DATABASE bench OWNER herald"])
        run([self.heraldctl, "--config", self.config, "migrate"], stdout=subprocess.DEVNULL)
        # One account through heraldctl (its SCRAM keys, salt and iterations), copied to
        # every other account: same password, so the same keys.
        run([self.heraldctl, "--config", self.config, "user", "add", f"template@{DOMAIN}"],
            input=PASSWORD + "\n", text=True)
        names = [f"u{i}" for i in range(1, users + 1)]
        names += [f"fan{k}" for k in FANOUT] + [f"roster{n}" for n in ROSTERS]
        sql = ["BEGIN;",
               "CREATE TEMP TABLE names (username text);",
               "COPY names FROM STDIN;", *names, "\\.",
               f"""INSERT INTO accounts (domain, username, roster_version)
                   SELECT '{DOMAIN}', username, 1 FROM names;""",
               f"""INSERT INTO scram_credentials
                   SELECT '{DOMAIN}', n.username, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
                   FROM names n, scram_credentials c WHERE c.username = 'template';"""]
        items = []
        for k, first in FANOUT.items():
            for i in range(first, first + k):
                items.append((f"fan{k}", f"u{i}@{DOMAIN}"))
                items.append((f"u{i}", f"fan{k}@{DOMAIN}"))
        for n in ROSTERS:
            items += [(f"roster{n}", f"u{i}@{DOMAIN}") for i in range(1, n + 1)]
        sql += ["CREATE TEMP TABLE items (username text, contact text);",
                "COPY items FROM STDIN;", *[f"{u}\t{c}" for u, c in items], "\\.",
                f"""INSERT INTO roster_items (domain, username, contact, subscription, in_roster, version)
                    SELECT '{DOMAIN}', username, contact, 'both', true, 1 FROM items;""",
                "COMMIT;", "ANALYZE;"]
        run(psql + ["-d", "bench"], input="\n".join(sql) + "\n", text=True)
        self.provisioned = True

    def start(self):
        self.write_config()
        self.logfile = open(self.dir / "herald.log", "ab")
        self.proc = subprocess.Popen(pin(self.cpus) + [str(self.herald), "--config", str(self.config)],
                                     stdout=self.logfile, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "herald")


class Prosody(Server):
    name = "prosody"
    port = 17242

    def provision(self, users):
        # Accounts as mod_auth_internal_hashed stores them (SCRAM-SHA-256, 4096
        # iterations, hex keys), rosters as mod_roster stores them: util.datamanager files.
        import hashlib
        import hmac
        data = self.dir / "data" / DOMAIN
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        (data / "accounts").mkdir(parents=True)
        (data / "roster").mkdir(parents=True)
        salt = b"herald-bench-salt"
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, ITERATIONS)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).hexdigest()
        server = hmac.new(salted, b"Server Key", "sha256").hexdigest()
        account = (f'return {{\n\t["iteration_count"] = {ITERATIONS};\n\t["salt"] = "{salt.decode()}";\n'
                   f'\t["stored_key"] = "{stored}";\n\t["server_key"] = "{server}";\n}};\n')
        names = [f"u{i}" for i in range(1, users + 1)]
        names += [f"fan{k}" for k in FANOUT] + [f"roster{n}" for n in ROSTERS]
        for n in names:
            (data / "accounts" / f"{n}.dat").write_text(account)
        rosters = {}
        for k, first in FANOUT.items():
            for i in range(first, first + k):
                rosters.setdefault(f"fan{k}", []).append(f"u{i}@{DOMAIN}")
                rosters.setdefault(f"u{i}", []).append(f"fan{k}@{DOMAIN}")
        for n in ROSTERS:
            rosters[f"roster{n}"] = [f"u{i}@{DOMAIN}" for i in range(1, n + 1)]
        for user, contacts in rosters.items():
            body = ['return {', '\t[false] = {\n\t\t["version"] = 1;\n\t\t["pending"] = {};\n\t};']
            body += [f'\t["{c}"] = {{\n\t\t["subscription"] = "both";\n\t\t["groups"] = {{}};\n\t}};'
                     for c in contacts]
            body.append('};\n')
            (data / "roster" / f"{user}.dat").write_text("\n".join(body))
        self.provisioned = True

    def start(self):
        a = self.args
        cfg = self.dir / "prosody.cfg.lua"
        text = (HERE / "peers/prosody.cfg.lua").read_text()
        text = (text.replace("/tmp/peers/pros", str(self.dir))
                    .replace("/tmp/peers/cert.pem", str(a.pem))
                    .replace("5242", str(self.port)))
        cfg.write_text(text)
        self.logfile = open(self.dir / "prosody.log", "ab")
        self.proc = subprocess.Popen(pin(a.server_cpu) + ["prosody", "--config", str(cfg), "-F"],
                                     stdout=self.logfile, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "prosody")


class Ejabberd(Server):
    name = "ejabberd"
    port = 17232
    node = "ejabberd_bench@localhost"

    def ctl(self, *args, **kw):
        d = self.dir
        return run(["ejabberdctl", "--config-dir", d, "--ctl-config", d / "ejabberdctl.cfg",
                    "--config", d / "ejabberd.yml", "--spool", d / "spool", "--logs", d / "logs",
                    *args], **kw)

    def write_config(self):
        a = self.args
        d = self.dir
        (d / "spool").mkdir(exist_ok=True)
        (d / "logs").mkdir(exist_ok=True)
        shutil.copy("/etc/ejabberd/inetrc", d / "inetrc")
        text = (HERE / "peers/ejabberd.yml").read_text()
        text = (text.replace("/tmp/peers/cert.pem", str(a.pem))
                    .replace("port: 5232", f"port: {self.port}")
                    .replace("port: 5290", "port: 17290"))
        (d / "ejabberd.yml").write_text(text)
        ctl = (HERE / "peers/ejabberdctl.cfg").read_text().replace("/tmp/peers/ejd", str(d))
        (d / "ejabberdctl.cfg").write_text(ctl)

    def start(self):
        self.write_config()
        self.logfile = open(self.dir / "ejabberd.out", "ab")
        self.proc = subprocess.Popen(pin(self.args.server_cpu) + [
            "ejabberdctl", "--config-dir", self.dir, "--ctl-config", self.dir / "ejabberdctl.cfg",
            "--config", self.dir / "ejabberd.yml", "--spool", self.dir / "spool",
            "--logs", self.dir / "logs", "foreground"],
            stdout=self.logfile, stderr=subprocess.STDOUT)
        self.ctl("started", timeout=120)
        wait_port(self.port, self.proc, "ejabberd")

    def pid(self):
        # ejabberdctl foreground runs erl, which runs the BEAM emulator as a child
        out = subprocess.run(["pgrep", "-f", f"beam.smp.*{self.node}"], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        if not pids:
            die("cannot find ejabberd's beam.smp process")
        return min(pids)

    def rpc(self, erlang):
        """Evaluates an Erlang expression (a fun of no arguments) on the running node."""
        code = (f"R = rpc:call('{self.node}', erlang, apply, [{erlang}, []], infinity), "
                "io:format(\"~p~n\", [R]), halt(case R of ok -> 0; _ -> 1 end).")
        run(["erl", "-sname", f"benchrpc{os.getpid()}@localhost", "-hidden", "-noinput", "-eval", code],
            timeout=1800)

    def provision(self, users):
        shutil.rmtree(self.dir / "spool", ignore_errors=True)
        self.start()
        try:
            # Ranges are expanded inside Erlang: a list of 10,000 names is too long for
            # a command line.
            u = 'U = fun(I) -> <<"u", (integer_to_binary(I))/binary>> end'
            d = f'<<"{DOMAIN}">>'
            named = ",".join(f'<<"{n}">>' for n in [f"fan{k}" for k in FANOUT] + [f"roster{n}" for n in ROSTERS])
            t0 = time.monotonic()
            self.rpc(f'fun() -> {u}, lists:foreach(fun(N) -> ok = ejabberd_auth:try_register(N, {d}, '
                     f'<<"{PASSWORD}">>) end, [U(I) || I <- lists:seq(1, {users})] ++ [{named}]) end')
            log(f"ejabberd: {users + len(FANOUT) + len(ROSTERS)} accounts in {time.monotonic() - t0:.1f} s")
            add = (f'Add = fun(A, B) -> ok = mod_admin_extra:add_rosteritem(A, {d}, B, {d}, B, <<>>, '
                   '<<"both">>) end')
            loops = []
            for k, first in FANOUT.items():
                loops.append(f'[begin Add(<<"fan{k}">>, U(I)), Add(U(I), <<"fan{k}">>) end '
                             f'|| I <- lists:seq({first}, {first + k - 1})]')
            for n in ROSTERS:
                loops.append(f'[Add(<<"roster{n}">>, U(I)) || I <- lists:seq(1, {n})]')
            t0 = time.monotonic()
            self.rpc(f'fun() -> {u}, {add}, ' + ", ".join(loops) + ', ok end')
            pairs = sum(2 * k for k in FANOUT) + sum(ROSTERS)
            log(f"ejabberd: {pairs} roster items in {time.monotonic() - t0:.1f} s")
        finally:
            self.stop()
        self.provisioned = True

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.ctl("stop", check=False, timeout=60)
            self.ctl("stopped", check=False, timeout=60)
        super().stop()


class Floor(Server):
    """The TLS relay: what the machine does with TLS and sockets and no XMPP."""
    name = "floor"
    port = 17252
    scenarios = ("messages", "fixed")

    def provision(self, users):
        self.provisioned = True

    def start(self):
        a = self.args
        self.logfile = open(self.dir / "floor.log", "ab")
        self.proc = subprocess.Popen(pin(a.server_cpu) + [
            str(a.build / "tools/bench/floor/bench-floor"), "--port", str(self.port),
            "--address", "127.0.0.1", "--cert", str(a.cert), "--key", str(a.key)],
            stdout=self.logfile, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "bench-floor")


# ------------------------------------------------------------------ scenarios

def bench(args, server, scenario, outdir, *extra, cpus=None):
    """Runs one herald-bench scenario; returns its JSON (None if it failed)."""
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = pin(cpus or args.generator_cpu) + [
        str(args.build / "tools/bench/gen/herald-bench"), scenario,
        "--port", str(server.port), "--domain", DOMAIN, "--password", PASSWORD,
        "--sources", args.sources, "--server-pid", str(server.pid()),
        "--label", server.name, "--out", str(outdir), *[str(e) for e in extra]]
    if isinstance(server, Floor):
        cmd += ["--tls", "floor"]
    log(f"{server.name}: herald-bench {scenario} {' '.join(str(e) for e in extra)}")
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=args.scenario_timeout)
    (outdir / "output.txt").write_text(r.stdout)
    for line in r.stdout.strip().splitlines()[-3:]:
        log(f"  {line}")
    if r.returncode != 0:
        log(f"{server.name}: {scenario} failed (exit {r.returncode}); see {outdir}/output.txt")
        return None
    try:
        return json.loads((outdir / f"{scenario}.json").read_text())
    except (OSError, ValueError) as e:
        log(f"{server.name}: {scenario} wrote no readable JSON: {e}")
        return None


def run_round(args, server, rnd, figures):
    """One round on one running server: every scenario it supports; figures are
    appended to figures[(server, metric)]."""
    out = args.out / f"round{rnd}" / server.name

    def record(metric, value):
        if value is not None:
            figures.setdefault((server.name, metric), []).append(value)

    want = [s for s in server.scenarios if s in args.scenarios]
    # idle first, on the freshly started server: its baseline is a server that has
    # served nobody yet (memory other scenarios touched is not given back).
    if "idle" in want:
        j = bench(args, server, "idle", out / "idle", "--steps", ",".join(map(str, args.idle_steps)),
                  "--concurrency", args.login_concurrency, "--mech", "SCRAM-SHA-256")
        for step in (j["results"]["steps"] if j else []):
            record(f"idle_bytes_per_session_{step['clients']}", step["bytes_per_session"])
            if step is not j["results"]["steps"][0]:
                record(f"idle_marginal_bytes_{step['clients']}", step["marginal_bytes_per_session"])
    if "login" in want:
        j = bench(args, server, "login", out / "login", "--clients", args.login_clients,
                  "--concurrency", args.login_concurrency, "--warmup", "--mech", "SCRAM-SHA-256")
        record("login_per_s", j and j["results"]["logins_per_second"])
    if "messages" in want:
        j = bench(args, server, "messages", out / "messages", "--find-max", "--pairs", args.pairs,
                  "--start", args.start_rate, "--step-duration", args.step_duration)
        record("max_rate", j and j["results"]["max_rate"])
    if "fixed" in want:
        j = bench(args, server, "messages", out / "fixed", "--rate", args.fixed_rate,
                  "--duration", args.fixed_duration, "--pairs", args.pairs)
        if j:
            for p in ("p50", "p99", "p99.9"):
                record(f"fixed_{p.replace('.', '_')}_ms", j["results"]["latency_ms"][p])
    if "fanout" in want:
        for k, first in FANOUT.items():
            j = bench(args, server, "fanout", out / f"fanout{k}", "--owner", f"fan{k}",
                      "--contacts", k, "--first", first, "--rounds", args.rounds)
            record(f"fanout{k}_ms", j and j["results"]["median_all_ms"])
    if "roster" in want:
        for n in ROSTERS:
            j = bench(args, server, "roster", out / f"roster{n}", "--user", f"roster{n}",
                      "--expect", n, "--rounds", args.rounds)
            record(f"roster{n}_ms", j and j["results"]["roster_ms_median"])


# ------------------------------------------------------------------ report

METRICS = [  # (metric, label, better: "higher"/"lower")
    ("max_rate", "messages/s at p99 < 50 ms", "higher"),
    ("fixed_p50_ms", "latency p50 at the fixed rate (ms)", "lower"),
    ("fixed_p99_ms", "latency p99 at the fixed rate (ms)", "lower"),
    ("fixed_p99_9_ms", "latency p99.9 at the fixed rate (ms)", "lower"),
    ("login_per_s", "logins/s (SCRAM-SHA-256, 4096 it.)", "higher"),
    ("fanout200_ms", "presence fan-out to 200 (ms)", "lower"),
    ("fanout1000_ms", "presence fan-out to 1000 (ms)", "lower"),
    ("roster100_ms", "roster of 100 at login (ms)", "lower"),
    ("roster5000_ms", "roster of 5000 at login (ms)", "lower"),
]


def median(values):
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def report(args, servers, figures):
    metrics = list(METRICS)
    for n in args.idle_steps:
        metrics.append((f"idle_bytes_per_session_{n}", f"server bytes per idle session at {n}", "lower"))
    for a, b in zip(args.idle_steps, args.idle_steps[1:]):
        metrics.append((f"idle_marginal_bytes_{b}", f"server bytes per idle session from {a} to {b}", "lower"))
    med = {k: median(v) for k, v in figures.items()}
    names = [s.name for s in servers]
    lines = [f"# Herald benchmark, {args.started} on {args.machine}", "",
             f"Medians of {args.rounds_done} round(s); server on CPU {args.server_cpu}, "
             f"generator on CPU {args.generator_cpu}.", "",
             "| figure | " + " | ".join(names) + " | herald/prosody | herald/ejabberd | herald/floor |",
             "|---" * (len(names) + 4) + "|"]
    for metric, label, _ in metrics:
        row = [fmt(med.get((n, metric))) for n in names]
        ratios = []
        h = med.get(("herald", metric))
        for peer in ("prosody", "ejabberd", "floor"):
            p = med.get((peer, metric))
            ratios.append(f"{h / p:.2f}" if h is not None and p else "-")
        lines.append(f"| {label} | " + " | ".join(row) + " | " + " | ".join(ratios) + " |")
    lines += ["", "## Targets", ""]
    lines += check_targets(args, med)
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    (args.out / "summary.json").write_text(json.dumps(
        {"started": args.started, "machine": args.machine, "rounds": args.rounds_done,
         "figures": [{"server": s, "metric": m, "values": v, "median": median(v)}
                     for (s, m), v in sorted(figures.items())]}, indent=1))
    chart(args, names, metrics, med)
    print(text)


def check_targets(args, med):
    def get(server, metric):
        return med.get((server, metric))

    def better(metric, higher):
        vals = [v for v in (get("prosody", metric), get("ejabberd", metric)) if v]
        if not vals:
            return None
        return max(vals) if higher else min(vals)

    out = []

    def target(text, ok, detail):
        mark = "-" if ok is None else ("PASS" if ok else "MISS")
        out.append(f"- {mark}: {text} ({detail})")

    h = get("herald", "max_rate")
    for peer, factor in (("ejabberd", 5), ("prosody", 10)):
        p = get(peer, "max_rate")
        target(f"throughput >= {factor}x {peer}", (h / p >= factor) if h and p else None,
               f"{h / p:.2f}x" if h and p else "not measured")
    f = get("floor", "max_rate")
    target("throughput >= 1/2 floor", (h / f >= 0.5) if h and f else None,
           f"{h / f:.2f} of the floor" if h and f else "not measured")
    for n in args.idle_steps:
        m = f"idle_bytes_per_session_{n}"
        b, hv = better(m, False), get("herald", m)
        target(f"memory per idle session at {n} <= 1/4 of the better peer",
               (hv <= b / 4) if hv and b else None,
               f"{hv / b:.2f} of the better peer" if hv and b else "not measured")
    b, hv = better("login_per_s", True), get("herald", "login_per_s")
    target("login rate >= 3x the better peer", (hv >= 3 * b) if hv and b else None,
           f"{hv / b:.2f}x" if hv and b else "not measured")
    b, hv = better("fanout1000_ms", False), get("herald", "fanout1000_ms")
    target("fan-out to 1000 <= 1/3 of the better peer's time", (hv <= b / 3) if hv and b else None,
           f"{hv / b:.2f} of the better peer" if hv and b else "not measured")
    one, two = get("herald", "max_rate"), get("herald-2w", "max_rate")
    target("2 workers on 2 cores >= 1.7x 1 worker", (two >= 1.7 * one) if one and two else None,
           f"{two / one:.2f}x (the generator shares those 2 cores)" if one and two else "not measured")
    return out


def chart(args, names, metrics, med):
    """One bar chart per figure, every server side by side (gnuplot)."""
    if not shutil.which("gnuplot"):
        log("gnuplot is not installed: no charts")
        return
    d = args.out / "charts"
    d.mkdir(exist_ok=True)
    for metric, label, better in metrics:
        rows = [(n, med.get((n, metric))) for n in names if med.get((n, metric)) is not None]
        if not rows:
            continue
        dat = d / f"{metric}.dat"
        dat.write_text("".join(f'"{n}" {v}\n' for n, v in rows))
        gp = d / f"{metric}.gp"
        gp.write_text(f"""set terminal pngcairo size 700,420
set output '{d / (metric + '.png')}'
set title "{label} ({better} is better)"
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot '{dat}' using 0:2:xtic(1) with boxes, '' using 0:2:(sprintf("%.3g",$2)) with labels offset 0,1
""")
        subprocess.run(["gnuplot", str(gp)], check=False)


# ------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pg-socket", required=True)
    p.add_argument("--pg-bin", type=Path, required=True)
    p.add_argument("--cert", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True)
    p.add_argument("--servers", default="herald,prosody,ejabberd,floor")
    p.add_argument("--scenarios", default="login,idle,messages,fixed,fanout,roster,scaling")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--server-cpu", default="1")
    p.add_argument("--generator-cpu", default="0")
    p.add_argument("--sources", default="127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4")
    p.add_argument("--login-clients", type=int, default=2000)
    p.add_argument("--login-concurrency", type=int, default=50)
    p.add_argument("--idle-steps", default="1000,10000")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--start-rate", type=int, default=2000)
    p.add_argument("--step-duration", type=int, default=5)
    p.add_argument("--fixed-rate", type=int, default=2000)
    p.add_argument("--fixed-duration", type=int, default=10)
    p.add_argument("--scenario-timeout", type=int, default=900)
    args = p.parse_args()
    args.scenarios = set(args.scenarios.split(","))
    args.idle_steps = [int(s) for s in args.idle_steps.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    args.pem = args.out / "cert.pem"          # Prosody and ejabberd want key+cert in one file
    args.pem.write_text(args.cert.read_text() + args.key.read_text())
    args.started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    args.machine = f"{os.cpu_count()} CPUs ({cpu}), Linux {os.uname().release}"

    fd_hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1]
    fits = [n for n in args.idle_steps if n + 1000 <= fd_hard]
    if len(fits) < len(args.idle_steps):
        log(f"idle steps {[n for n in args.idle_steps if n not in fits]} need more file descriptors "
            f"than this machine allows (hard RLIMIT_NOFILE {fd_hard}); skipped")
        args.idle_steps = fits
    users = max([args.login_clients, 2 * args.pairs, 1000 + 200, max(ROSTERS)] + args.idle_steps)

    work = args.out / "servers"
    wanted = args.servers.split(",")
    servers = []
    for name in wanted:
        cls = {"herald": Herald, "prosody": Prosody, "ejabberd": Ejabberd, "floor": Floor}.get(name)
        if cls is None:
            die(f"unknown server {name!r} in --servers (herald, prosody, ejabberd, floor)")
        servers.append(cls(args, work))
    if "herald" in wanted and "scaling" in args.scenarios:
        two = Herald(args, work, workers=2, cpus="0-1", label="herald-2w")
        two.scenarios = ("messages",)
        servers.append(two)

    figures = {}
    args.rounds_done = 0
    for rnd in range(1, args.rounds + 1):
        for s in servers:
            if not s.provisioned:
                log(f"{s.name}: provisioning {users} users and the rosters")
                if isinstance(s, Herald) and s.name == "herald-2w":
                    s.write_config()       # same database as "herald"
                    s.provisioned = True
                else:
                    s.provision(users)
            log(f"round {rnd}: {s.name}")
            s.start()
            try:
                gen_cpus = "0-1" if s.name == "herald-2w" else None
                if gen_cpus:
                    j = bench(args, s, "messages", args.out / f"round{rnd}" / s.name / "messages",
                              "--find-max", "--pairs", args.pairs, "--start", args.start_rate,
                              "--step-duration", args.step_duration, cpus=gen_cpus)
                    if j:
                        figures.setdefault((s.name, "max_rate"), []).append(j["results"]["max_rate"])
                else:
                    run_round(args, s, rnd, figures)
            finally:
                s.stop()
        args.rounds_done = rnd
        report(args, servers, figures)      # after every round: a stop keeps what was measured


if __name__ == "__main__":
    main()
