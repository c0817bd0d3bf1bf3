"""Secrets at rest: Fernet with keys from the environment (FIELD_ENCRYPTION_KEYS, newest first)."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


class SecretUnreadable(Exception):
    """Stored secrets cannot be decrypted with the configured keys (a key was rotated away)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_json(values: dict[str, str]) -> str:
    if not values:
        return ""
    return _current().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken as exc:
        raise SecretUnreadable("Stored secrets cannot be decrypted with FIELD_ENCRYPTION_KEYS.") from exc


def mask(secret: str) -> str:
    """What admin and API show of a secret: its length class and last four characters."""
    if not secret:
        return ""
    return "•" * 8 + secret[-4:] if len(secret) > 8 else "•" * 8


class SecretUnreadableMiddleware:
    """A request that needs a stored secret the keys cannot decrypt gets 503 and a log line, not a 500.

    It is the server's misconfiguration, not the sender's fault: a provider retries a 503 later, by when the
    right FIELD_ENCRYPTION_KEYS may be back, so no message is lost."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, SecretUnreadable):
            return None
        logger.error("%s %s: %s Is a key missing from FIELD_ENCRYPTION_KEYS?", request.method, request.path, exception)
        response = JsonResponse({"detail": "The server cannot read its stored credentials; retry later."}, status=503)
        response["Retry-After"] = "60"
        return response
