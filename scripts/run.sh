#!/usr/bin/env bash
# Set up everything and run Omnidesk: web (uvicorn, scripts/serve.py), Celery worker and Celery beat, in the foreground.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$ROOT"

ensure_venv ""
export DJANGO_SETTINGS_MODULE=omnidesk.settings
export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"

# This installation's own secrets, made once into .env (every manage.py command reads it too):
# the demo passwords derive from SECRET_KEY, and inbox secrets are encrypted with FIELD_ENCRYPTION_KEYS.
touch "$ROOT/.env"
grep -q '^SECRET_KEY=' "$ROOT/.env" || echo "SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')" >> "$ROOT/.env"
grep -q '^FIELD_ENCRYPTION_KEYS=' "$ROOT/.env" || echo "FIELD_ENCRYPTION_KEYS=$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" >> "$ROOT/.env"

# Omnidesk needs PostgreSQL (array fields, full-text search, triggers): install it when it is missing.
FALLBACK=0
if ! DATABASE_URL="$(ensure_postgres omnidesk)"; then
  command -v pg_lsclusters >/dev/null 2>&1 || apt_install postgresql || true
  DATABASE_URL="$(ensure_postgres omnidesk)" || {
    echo "Omnidesk needs PostgreSQL: none reachable at $PG_HOST:$PG_PORT and none could be installed or started (apt-get install postgresql, or set DATABASE_URL)." >&2
    exit 1
  }
fi
export DATABASE_URL
if ! ensure_redis; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server || true
  if ! ensure_redis; then
    echo "No Redis reachable or installable: using an in-memory channel layer and eager Celery (no separate worker); live updates reach only this process." >&2
    export CHANNEL_LAYER=memory CELERY_TASK_ALWAYS_EAGER=1
    FALLBACK=1
  fi
fi

say "Migrating the database"
"$PY" manage.py migrate --noinput >/dev/null
"$PY" manage.py collectstatic --noinput >/dev/null
"$PY" manage.py seed_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ "$FALLBACK" = 0 ]; then
  # The worker at nice 10: webhooks and pages answer first; the worker catches up (bench/README.md).
  nice -n 10 "$VENV/bin/celery" -A omnidesk.celery:app worker --loglevel INFO --concurrency 2 &
  pids+=($!)
  "$VENV/bin/celery" -A omnidesk.celery:app beat --loglevel INFO --schedule "$ROOT/var/celerybeat-schedule" &
  pids+=($!)
fi
"$PY" "$ROOT/scripts/serve.py" --host 127.0.0.1 --port "$PORT" --workers "${WEB_CONCURRENCY:-2}" &
pids+=($!)
sleep 2
say "Omnidesk is running at http://127.0.0.1:$PORT/ (admin: http://127.0.0.1:$PORT/admin/). Ctrl-C stops it."
wait -n "${pids[@]}"
