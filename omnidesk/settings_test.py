"""Test settings: production settings (DEBUG off) with test-only secrets and fast password hashing."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("PUBLIC_BASE_URL", "http://testserver")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
# Per test run: its own database, broker queue and channel-layer prefix, so parallel runs on one
# machine (and a running dev server) never see each other's rows, tasks or events.
RUN_ID = os.environ.setdefault("OMNIDESK_TEST_RUN_ID", str(os.getpid()))
os.environ.setdefault("TEST_DATABASE_NAME", f"test_omnidesk_{RUN_ID}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"omnidesk-test-{RUN_ID}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"omnidesk-test-{RUN_ID}")
# A broker database of its own, so a running dev worker never steals test tasks.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
# No connection pool in tests: pooled connections outlive the run and keep its test database from being dropped.
os.environ.setdefault("DATABASE_POOL_MAX", "0")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzJieXRlcy0wMTI=")

from omnidesk.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
MEDIA_ROOT = BASE_DIR / "var" / "test-media"  # noqa: F405
STATIC_ROOT = None  # whitenoise serves nothing collected in tests; the live server uses the finders
CELERY_TASK_DEFAULT_QUEUE = f"omnidesk-test-{RUN_ID}"
