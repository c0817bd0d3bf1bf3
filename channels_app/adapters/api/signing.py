"""HMAC-SHA256 signatures of raw bodies, shared by the API channel and outgoing webhooks.

API channel (both directions): `X-Omnidesk-Signature: sha256=<hex>`, the HMAC of the exact bytes on the wire
with the inbox's `secret`; receivers must sign the raw body, not a re-serialized copy of the JSON.

Outgoing webhooks: `X-Omnidesk-Signature: t=<unix ts>,v1=<hex>`, the HMAC of `"<ts>.<raw body>"` with the
subscription's secret. The timestamp is inside the signed text, so a receiver can refuse replays of old
deliveries without trusting a separate header.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Omnidesk-Signature"
TIMESTAMP_HEADER = "X-Omnidesk-Timestamp"
DELIVERY_HEADER = "X-Omnidesk-Delivery"
EVENT_HEADER = "X-Omnidesk-Event"
_PREFIX = "sha256="
# How old a timestamped signature may be before a receiver should refuse it.
DEFAULT_TOLERANCE_SECONDS = 300


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_for(secret: str, body: bytes) -> str:
    return f"{_PREFIX}{hmac_hex(secret, body)}"


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Constant-time comparison; an empty secret never matches anything."""
    header = (header or "").strip()
    if not secret or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.encode())


def timestamped_signature_for(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={hmac_hex(secret, str(timestamp).encode() + b'.' + body)}"


def timestamped_signature_matches(
    secret: str, body: bytes, header: str, *, tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """What a receiver does: parse `t=…,v1=…`, refuse an old (or far future) timestamp, compare in constant time.

    Several `v1=` parts are allowed (a sender rotating secrets may sign with both); one match suffices.
    """
    if not secret or not header:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = hmac_hex(secret, str(timestamp).encode() + b"." + body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates)
