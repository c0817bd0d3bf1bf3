"""Outgoing webhooks against a real HTTP receiver on loopback (the API channel's), with a receiver-side check
of the signature written out independently of the app's signing module."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from channels_app.models import Channel, Inbox, WebhookEvent, WebhookSubscription
from conversations.services import InboundMessage, message_record_inbound
from tests.channels.api.conftest import receiver  # noqa: F401  (fixture: a real HTTP server on 127.0.0.1)
from tests.factories import InboxFactory

SECRET = "whsec_test-only-0123456789abcdef"
ALL_EVENTS = [value for value, _ in WebhookEvent.choices]


@pytest.fixture(autouse=True)
def loopback_targets_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does, as the README tells it."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def make_subscription(tenant, url: str, events=ALL_EVENTS, secret: str = SECRET, **fields) -> WebhookSubscription:
    subscription = WebhookSubscription(tenant=tenant, url=url, events=list(events), **fields)
    subscription.set_secret(secret)
    subscription.save()
    return subscription


def customer_writes(tenant, inbox=None, *, external_id: str = "m-1", sender: str = "u-42", body: str = "Hi"):
    name = f"Bridge {tenant.slug}"
    inbox = inbox or Inbox.objects.for_tenant(tenant).filter(name=name).first() or InboxFactory(
        tenant=tenant, channel=Channel.API, name=name
    )
    inbound = InboundMessage(
        channel=Channel.API, sender_kind="external", sender_value=sender, body=body, external_id=external_id,
        data={"from": sender},
    )
    return message_record_inbound(tenant=tenant, inbox=inbox, message=inbound)


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()
