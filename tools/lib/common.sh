# Shared helpers for tools/run and tools/test. Source it; do not execute it.
#   source "$(dirname "$0")/lib/common.sh"
# Everything here works from any current directory and as root or as a normal user.

HERALD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The Debian interpreter: it has python3-slixmpp and python3-pytest. A pyenv or venv
# python3 earlier on PATH would not.
HERALD_PYTHON=/usr/bin/python3

# say STEP MESSAGE...: one progress line on stderr, prefixed with the script's name.
say() { printf '%s: %s\n' "${HERALD_SCRIPT:-herald}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${HERALD_SCRIPT:-herald}" "$*" >&2; exit 1; }

bootstrap() {
  say "installing dependencies (tools/bootstrap)"
  bash "$HERALD_ROOT/tools/bootstrap" >&2 || die "tools/bootstrap failed"
}

# build DIR [MESON_OPTION...]: configure DIR once, then build it with ninja.
# A directory without build.ninja is a failed earlier setup: it is wiped and redone.
build() {
  local dir="$1"; shift
  cd "$HERALD_ROOT"
  if [ ! -f "$dir/build.ninja" ]; then
    rm -rf "$dir"
    say "configuring $dir (meson setup $dir $*)"
    meson setup "$dir" "$@" >&2 || die "meson setup $dir failed"
  fi
  say "building $dir (ninja -C $dir)"
  ninja -C "$dir" >&2 || die "build failed (ninja -C $dir)"
}

# --- PostgreSQL: a private cluster on a unix socket only, never a system service ---

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql (run tools/bootstrap)"
  printf '%s\n' "$d"
}

# PostgreSQL refuses to run as root: when we are root, the server side runs as the
# 'postgres' system user and owns the data and socket directories.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_own DIR...: hand directories to the user the cluster runs as.
pg_own() {
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$@"
  fi
}

# pg_init DATA: create a cluster in DATA (must not exist or be empty). Superuser
# 'herald', trust authentication (the socket directory is the access control).
# Extra arguments go to initdb (tools/test passes --no-sync).
pg_init() {
  local data="$1"; shift
  local bin; bin="$(pg_bindir)"
  mkdir -p "$data"
  chmod 700 "$data"
  pg_own "$data"
  as_pg "$bin/initdb" -D "$data" -U herald --auth=trust -E UTF8 --no-locale "$@" \
    >"$data.initdb.log" 2>&1 \
    || { cat "$data.initdb.log" >&2; die "initdb failed for $data"; }
}

pg_running() { # pg_running DATA
  as_pg "$(pg_bindir)/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# pg_start DATA SOCKDIR LOGFILE [SERVER_OPTION...]: start the cluster, listening on
# the unix socket in SOCKDIR only, and wait until it accepts connections.
pg_start() {
  local data="$1" sock="$2" log="$3"; shift 3
  local bin; bin="$(pg_bindir)"
  mkdir -p "$sock"
  pg_own "$sock"
  touch "$log"
  pg_own "$log"
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-k $sock -c listen_addresses='' $*" start >/dev/null \
    || { tail -n 20 "$log" >&2; die "PostgreSQL did not start (log: $log)"; }
}

pg_stop() { # pg_stop DATA
  as_pg "$(pg_bindir)/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null 2>&1
}

# pg_createdb SOCKDIR NAME: create database NAME owned by 'herald' unless it exists.
pg_createdb() {
  local sock="$1" name="$2" bin; bin="$(pg_bindir)"
  if "$bin/psql" -h "$sock" -U herald -d postgres -Atqc \
       "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    return 0
  fi
  "$bin/createdb" -h "$sock" -U herald -O herald "$name" || die "createdb $name failed"
}

# --- certificates ---

# make_cert DOMAIN CRT KEY: a self-signed certificate (no CA) for DOMAIN, SAN DNS:DOMAIN,
# P-256 key, valid for a year.
make_cert() {
  local domain="$1" crt="$2" key="$3"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -sha256 -days 365 -subj "/CN=$domain" \
    -addext "subjectAltName=DNS:$domain" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$key" -out "$crt" >/dev/null 2>&1 \
    || die "openssl could not create a certificate for $domain"
  chmod 600 "$key"
}
