"""HMAC-SHA256 signatures of raw request bodies, the same scheme in both directions.

The header is `X-Omnidesk-Signature: sha256=<hex>`, the HMAC of the exact bytes on the wire with the
inbox's `secret`; receivers must sign the raw body, not a re-serialized copy of the JSON.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Omnidesk-Signature"
TIMESTAMP_HEADER = "X-Omnidesk-Timestamp"
DELIVERY_HEADER = "X-Omnidesk-Delivery"
_PREFIX = "sha256="


def signature_for(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}"


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Constant-time comparison; an empty secret never matches anything."""
    header = (header or "").strip()
    if not secret or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.encode())
