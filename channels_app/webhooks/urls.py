"""Which URLs a subscription may target.

Only http(s). Unless WEBHOOKS_ALLOW_PRIVATE_TARGETS is on (tests, a single-machine install), the host must
resolve to public addresses only: a tenant admin must not make our workers probe our own network. The check
runs when the URL is saved and again before every attempt (DNS may change after saving).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

_url_validator = URLValidator(schemes=["http", "https"])


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(f"The host {host!r} does not resolve.") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_webhook_url(url: str) -> None:
    """Raise ValidationError with a reason an admin can act on."""
    try:
        _url_validator(url)
    except ValidationError as exc:
        raise ValidationError("Enter an http:// or https:// URL.") from exc
    if getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False):
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in _addresses(parts.hostname or "", port):
        if not address.is_global or address.is_multicast:
            raise ValidationError(
                f"{parts.hostname} resolves to {address}, a loopback, private or reserved address; "
                "webhooks go to public addresses only."
            )
