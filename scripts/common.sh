# Shared by scripts/run.sh and scripts/test.sh: a virtualenv in .venv and reachable Postgres and Redis.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  say "Installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; }
}

ensure_venv() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x "$PY" ]; then
    say "Creating the virtualenv in .venv"
    "$python" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && "$python" -m venv "$VENV"; } \
      || { echo "Cannot create a virtualenv: install python3-venv (Python 3.11+)." >&2; exit 1; }
  fi
  local stamp="$VENV/.installed$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "Installing Omnidesk and its packages${extras:+ ($extras)}"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT$extras" 2>&1 | grep -vE '^WARNING: Location|editable|BuildBackendWarning|^ +[!*]|^ *$|Please be careful|name as your package|with strategy' >&2 || true
    "$PY" -c "import django, celery, channels, daphne, psycopg" || { echo "Package installation failed." >&2; exit 1; }
    touch "$stamp"
  fi
}

pg_reachable() {
  "$PY" - "$@" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PYEOF
}

# Prints a DATABASE_URL for a reachable Postgres server (creating database $1), or returns 1.
ensure_postgres() {
  local dbname="$1"
  if [ -n "${DATABASE_URL:-}" ]; then echo "$DATABASE_URL"; return 0; fi
  local url="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
  if ! pg_reachable "$url" && command -v pg_lsclusters >/dev/null 2>&1; then
    # Start a stopped local cluster (pg_ctlcluster exits 2 when it already runs).
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
      if [ "$status" != "online" ]; then
        say "Starting PostgreSQL $ver/$name"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >/dev/null 2>&1 || true
      fi
    done
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_reachable "$url" && break; sleep 1; done
  fi
  if ! pg_reachable "$url"; then
    # Password authentication (scram) instead of trust: give our own role a password through the socket.
    if command -v psql >/dev/null 2>&1 && as_root true 2>/dev/null; then
      as_root su postgres -c "psql -q -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='omnidesk') THEN CREATE ROLE omnidesk LOGIN SUPERUSER PASSWORD 'omnidesk'; END IF; END\\\$\\\$\"" >/dev/null 2>&1 || true
      url="postgres://omnidesk:omnidesk@$PG_HOST:$PG_PORT/postgres"
    fi
    pg_reachable "$url" || return 1
  fi
  "$PY" - "$url" "$dbname" <<'PYEOF' >&2
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [sys.argv[2]]).fetchone():
        conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
PYEOF
  echo "${url%/postgres}/$dbname"
}

redis_reachable() {
  "$PY" -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()" "$1" >/dev/null 2>&1
}

# Returns 0 when Redis answers at $REDIS_URL (starting a local redis-server if one is installed).
ensure_redis() {
  local url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  redis_reachable "$url" && return 0
  if command -v redis-server >/dev/null 2>&1; then
    say "Starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
    for _ in 1 2 3 4 5; do redis_reachable "$url" && return 0; sleep 1; done
  fi
  return 1
}
