"""The official Twilio client, built from an inbox, and the one place outbound Twilio HTTP goes through.

Setting `TWILIO_API_BASE_URL` (tests, local fakes) sends every Twilio request, whatever its domain, to
that base URL instead; unset, the client talks to Twilio.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels_app.adapters.base import AdapterError
from channels_app.models import Inbox

logger = logging.getLogger(__name__)

# Seconds to wait for Twilio; a slow answer is safer than a hung worker.
DEFAULT_TIMEOUT = 15.0


def twilio_url(url: str) -> str:
    """Where a Twilio URL is really fetched: itself, or the same path on TWILIO_API_BASE_URL."""
    base = getattr(settings, "TWILIO_API_BASE_URL", "") or ""
    if not base:
        return url
    target, original = urlsplit(base), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, original.path, original.query, ""))


def twilio_timeout() -> float:
    return float(getattr(settings, "TWILIO_HTTP_TIMEOUT", DEFAULT_TIMEOUT))


class RoutedHttpClient(TwilioHttpClient):
    """TwilioHttpClient whose requests go through `twilio_url` (every Twilio domain, one base)."""

    def request(self, method, url, *args, **kwargs):
        return super().request(method, twilio_url(url), *args, **kwargs)


def twilio_credentials(inbox: Inbox) -> tuple[str, str]:
    account_sid = str(inbox.setting("account_sid") or "").strip()
    auth_token = inbox.get_secret("twilio_auth_token")
    if not account_sid or not auth_token:
        raise AdapterError(
            f"Inbox {inbox.name!r} has no Twilio account SID or auth token; set them in admin.", permanent=True,
            code="config",
        )
    return account_sid, auth_token


def twilio_client(inbox: Inbox) -> Client:
    account_sid, auth_token = twilio_credentials(inbox)
    http_client = RoutedHttpClient(timeout=twilio_timeout(), pool_connections=False)
    return Client(account_sid, auth_token, http_client=http_client)
