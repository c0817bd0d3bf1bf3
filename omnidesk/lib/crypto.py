"""Secrets at rest: Fernet with keys from the environment (FIELD_ENCRYPTION_KEYS, newest first)."""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


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
