"""Visitor tokens and the HMAC a site signs its logged-in user's id with.

The token is the visitor's bearer secret (≥ 128 bits, kept in their browser). Only its SHA-256 is stored,
as the value of the visitor's `chat_visitor` identity, so a database dump holds no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 24  # 192 bits
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
# A verified user id is stored as an `external` identity with this prefix, apart from API-channel identifiers.
VERIFIED_USER_PREFIX = "chat-user:"


def token_new() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_is_well_formed(token: str) -> bool:
    return isinstance(token, str) and bool(_TOKEN_SHAPE.fullmatch(token))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_hash_for(secret: str, user_id: str) -> str:
    """What the site computes on its server: lower-case hex HMAC-SHA256 of the user id, keyed with the secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def user_hash_matches(secret: str, user_id: str, user_hash: str) -> bool:
    """Constant-time; an empty secret never matches anything."""
    if not secret or not user_id or not isinstance(user_hash, str):
        return False
    return hmac.compare_digest(user_hash_for(secret, user_id).encode(), user_hash.strip().lower().encode())


def verified_identity_value(user_id: str) -> str:
    return f"{VERIFIED_USER_PREFIX}{user_id}"
