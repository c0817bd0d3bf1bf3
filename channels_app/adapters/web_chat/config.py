"""A chat inbox's settings (`Inbox.settings`, set in admin) with their defaults, and what the widget is told."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from channels_app.models import Inbox

PRECHAT_FIELDS = ("name", "email", "phone")
PRECHAT_LABELS = {"name": "Name", "email": "E-mail", "phone": "Phone"}
DEFAULT_TITLE = "Chat with us"
DEFAULT_GREETING = "Hi! How can we help?"
DEFAULT_COLOR = "#2563EB"
DEFAULT_OFFLINE_MESSAGE = "We're away right now. Leave a message and your e-mail, and we'll answer by e-mail."
DEFAULT_MAX_MESSAGE_LENGTH = 5000
HARD_MAX_MESSAGE_LENGTH = 20000
# Messages one visitor may send per minute (HTTP and websocket together); inbox setting rate_limit_per_minute.
DEFAULT_RATE_LIMIT_PER_MINUTE = 20
MAX_ATTACHMENT_BYTES = 10 * 1000 * 1000
ATTACHMENT_TYPES = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
)
POLL_INTERVAL_MS = 5000
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _text(inbox: Inbox, name: str, default: str, max_length: int = 500) -> str:
    value = inbox.setting(name, "")
    return value.strip()[:max_length] if isinstance(value, str) and value.strip() else default


def _int(inbox: Inbox, name: str, default: int, *, low: int, high: int) -> int:
    value = inbox.setting(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return default
    try:
        return min(max(int(value), low), high)
    except ValueError:
        return default


def max_message_length(inbox: Inbox) -> int:
    return _int(inbox, "max_message_length", DEFAULT_MAX_MESSAGE_LENGTH, low=1, high=HARD_MAX_MESSAGE_LENGTH)


def rate_limit_per_minute(inbox: Inbox) -> int:
    return _int(inbox, "rate_limit_per_minute", DEFAULT_RATE_LIMIT_PER_MINUTE, low=1, high=600)


def prechat(inbox: Inbox) -> dict[str, Any]:
    enabled = bool(inbox.setting("prechat_enabled", False))
    wanted = [f for f in (inbox.setting("prechat_fields", None) or PRECHAT_FIELDS) if f in PRECHAT_FIELDS]
    required = {f for f in (inbox.setting("prechat_required", None) or ()) if f in PRECHAT_FIELDS}
    fields = [{"name": f, "label": PRECHAT_LABELS[f], "required": f in required} for f in PRECHAT_FIELDS
              if f in wanted or f in required]
    return {"enabled": enabled, "fields": fields}


def widget_config(inbox: Inbox) -> dict[str, Any]:
    color = inbox.setting("color", "")
    return {
        "title": _text(inbox, "title", DEFAULT_TITLE, 100),
        "greeting": _text(inbox, "greeting", DEFAULT_GREETING),
        "color": color if isinstance(color, str) and _COLOR.fullmatch(color) else DEFAULT_COLOR,
        "prechat": prechat(inbox),
        "offline_message": _text(inbox, "offline_message", DEFAULT_OFFLINE_MESSAGE),
        "max_message_length": max_message_length(inbox),
        "max_attachment_bytes": MAX_ATTACHMENT_BYTES,
        "attachment_types": list(ATTACHMENT_TYPES),
    }


def origin_of(url: str) -> str:
    """scheme://host[:port], lower-cased, default ports dropped; "" for anything that is not http(s)."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default_port = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def allowed_origins(inbox: Inbox) -> set[str]:
    configured = inbox.setting("allowed_origins", None) or []
    if isinstance(configured, str):
        configured = configured.split()
    origins = {origin_of(str(o)) for o in configured if isinstance(o, str)}
    origins.add(origin_of(django_settings.PUBLIC_BASE_URL))
    origins.discard("")
    return origins


def origin_allowed(inbox: Inbox, origin: str | None) -> bool:
    """A browser's Origin header against the inbox's list. "null" (sandboxed frames, file://) never passes."""
    if not origin:
        return False
    return origin_of(origin) in allowed_origins(inbox) and origin_of(origin) == origin.strip().lower().rstrip("/")
