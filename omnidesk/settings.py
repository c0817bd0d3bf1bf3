"""Omnidesk settings: everything comes from the environment (django-environ).

Development defaults (DEBUG on, local Postgres and Redis) apply only when DEBUG is on;
with DEBUG off, SECRET_KEY, ALLOWED_HOSTS and PUBLIC_BASE_URL must be set or start-up fails.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
    PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
        PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{exc} (required when DEBUG is off)") from exc
PUBLIC_BASE_URL = PUBLIC_BASE_URL.rstrip("/")

# Fernet keys for provider secrets at rest, newest first (older ones still decrypt, for rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set FIELD_ENCRYPTION_KEYS (generate one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "customers",
    "conversations",
    "channels_app",
    "routing",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ETags on GET answers and 304 for If-None-Match: cheap polling for API clients.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "customers.middleware.CurrentTenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "omnidesk.lib.crypto.SecretUnreadableMiddleware",
]

ROOT_URLCONF = "omnidesk.urls"
WSGI_APPLICATION = "omnidesk.wsgi.application"
ASGI_APPLICATION = "omnidesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "customers.context_processors.current_tenant",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/omnidesk"),
}
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Under ASGI each request may run on a thread of its own, so per-thread persistent connections pile up
# (Django's docs: disable them in async mode). A psycopg pool per process shares a few connections instead.
DATABASE_POOL_MAX = env.int("DATABASE_POOL_MAX", default=8)
if USING_POSTGRES and DATABASE_POOL_MAX > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=1),
        "max_size": DATABASE_POOL_MAX,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# With the pool, Celery (5.5+) would close it before and after every task in a prefork worker: two new
# Postgres sessions per task, ~20 ms of server CPU each. Worker children are forked once and drop the
# parent's pool (omnidesk/celery.py), so they keep their own and hand connections back after each task.
# Without the pool, Celery's own rule stays (a fresh connection per task).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000 if USING_POSTGRES and DATABASE_POOL_MAX > 0 else 0)
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", default="test_omnidesk")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# "redis" in production and tests; "memory" only for the no-Postgres fallback of the run command.
CHANNEL_LAYER_BACKEND = env.str("CHANNEL_LAYER", default="redis")
if CHANNEL_LAYER_BACKEND == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
elif CHANNEL_LAYER_BACKEND == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, exactly the layer's blocking wait for the next
            # message (BZPOPMIN, 5 s): an idle socket's receive then failed with TimeoutError and closed it.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="omnidesk"),
            },
        }
    }
else:
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be 'redis' or 'memory', not {CHANNEL_LAYER_BACKEND!r}")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request hands tasks to the broker after commit; with Redis down it must give up in about a second
# (the periodic sweepers pick the work up later) instead of hanging the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 5}
CELERY_BEAT_SCHEDULE = {
    "sweep-outbound": {"task": "channels_app.tasks.sweep_outbound", "schedule": 60.0},
    "email-imap-poll": {"task": "channels_app.adapters.email.tasks.poll_imap_inboxes", "schedule": 60.0},
    "sla-sweep": {"task": "routing.sla.sla_sweep_task", "schedule": 30.0},
    "routing-sweep": {"task": "routing.tasks.sweep_unrouted", "schedule": 30.0},
    "inbound-receipt-sweep": {"task": "channels_app.tasks.sweep_inbound_receipts", "schedule": 30.0},
    "webhook-sweep": {"task": "channels_app.webhooks.tasks.sweep_webhook_deliveries", "schedule": 60.0},
    "csat-sweep": {"task": "conversations.tasks.sweep_csat_surveys", "schedule": 60.0},
}
# Outgoing webhooks may target loopback, private and reserved addresses (tests, single-machine installs);
# off in production so a tenant admin cannot make the workers probe the internal network.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=DEBUG)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["customers.auth.EmailOrUsernameBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "workspace:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Outbound mail (password resets; the e-mail channel has its own per-inbox SMTP settings).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Omnidesk <no-reply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "omnidesk.lib.api_defaults.TokenAuthentication", "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["omnidesk.lib.api_defaults.IsTenantMember"],
    "DEFAULT_THROTTLE_CLASSES": ["omnidesk.lib.api_defaults.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env.str("API_RATE_LIMIT", default="600/min")},
    "DEFAULT_PAGINATION_CLASS": "omnidesk.lib.api_defaults.NewestFirstCursor",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "omnidesk.lib.api.api_exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Omnidesk API",
    "DESCRIPTION": "One customer record and one conversation timeline across every channel. "
                   "Authenticate with `Authorization: Token <key>`; every request acts in the token's tenant.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set used by several fields (channel, first_channel…; identity vs entry kind).
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "channels_app.models.Channel.choices",
        "IdentityKindEnum": "customers.models.IdentityKind.choices",
        "EntryKindEnum": "conversations.models.EntryKind.choices",
    },
}
# Shared cache (API rate limits): Redis, with the in-process cache for the no-Redis fallback.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="omnidesk"),
    }
    if CHANNEL_LAYER_BACKEND == "redis"
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Conversations resolved less than this many days ago reopen when the customer writes again
# (a tenant may override it on its own record).
DEFAULT_REOPEN_WINDOW_DAYS = env.int("DEFAULT_REOPEN_WINDOW_DAYS", default=7)

# Twilio API calls elsewhere (a local fake in tests and drills); empty: the real Twilio (README "Configuration").
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", default=15.0)
TWILIO_MEDIA_MAX_BYTES = env.int("TWILIO_MEDIA_MAX_BYTES", default=16 * 1024 * 1024)

# ---- Security (README "Security"): cookies, headers, CSP, login throttling ----
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    # Sent only on HTTPS requests (Django checks request.is_secure()), so a plain-HTTP install is unaffected.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: htmx and composer.js take the token from the page.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = [
    # Preloading is an opt-in to the browsers' lists that is slow to undo; operators turn it on deliberately.
    "security.W021",
]
if not DEBUG and not SECURE_SSL_REDIRECT:
    # TLS ends at the proxy in front, which redirects plain HTTP itself (docker-compose, README "Security").
    SILENCED_SYSTEM_CHECKS.append("security.W008")
# Only external scripts of our own: an injected <script> or on*= attribute does not run. The one inline
# handler the templates use (`onchange="this.form.submit()"`) is allowed by its hash. Inline styles stay
# allowed (templates' style= attributes, htmx's indicator style). Swagger UI boots from an inline script.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-hashes'", "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["csp.middleware.CSPMiddleware", "axes.middleware.AxesMiddleware"]  # axes must come last
AUTHENTICATION_BACKENDS = ["omnidesk.lib.login_throttle.LoginThrottleBackend", *AUTHENTICATION_BACKENDS]
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one address lock that pair out for
# LOGIN_LOCKOUT_MINUTES (the login page says so, answering 429); a right password resets the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "omnidesk.lib.login_throttle.login_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "omnidesk.lib.login_throttle.lockout_response"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
