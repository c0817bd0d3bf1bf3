#!/usr/bin/env bash
# Install what the tests need, lint, and run the whole suite against real Postgres and Redis.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$ROOT"

ensure_venv "[dev]"
DATABASE_URL="$(ensure_postgres postgres)" || { echo "The tests need PostgreSQL: none reachable at $PG_HOST:$PG_PORT and none could be started." >&2; exit 1; }
export DATABASE_URL
ensure_redis || { echo "The tests need Redis at ${REDIS_URL:-redis://127.0.0.1:6379/0}: none reachable and none could be started." >&2; exit 1; }
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || { echo "Browser tests need Debian's chromium (apt-get install -y chromium)." >&2; exit 1; }
fi
[ -x /usr/sbin/dovecot ] || apt_install dovecot-imapd || echo "IMAP polling tests will be skipped: no dovecot-imapd." >&2
export DJANGO_SETTINGS_MODULE=omnidesk.settings_test

say "ruff check"
"$VENV/bin/ruff" check .

say "Unit and integration tests"
"$VENV/bin/pytest" -q --ignore=tests/e2e "$@"

# Playwright keeps an event loop alive for the rest of a pytest session, so browser tests run alone.
say "Browser tests"
"$VENV/bin/pytest" -q tests/e2e "$@"
