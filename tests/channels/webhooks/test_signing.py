from __future__ import annotations

import time

import pytest

from channels_app.adapters.api.signing import timestamped_signature_for, timestamped_signature_matches
from channels_app.models import WebhookDelivery
from channels_app.webhooks.services import webhook_deliver
from tests.channels.webhooks.conftest import SECRET, customer_writes, make_subscription, verify


@pytest.fixture
def delivered(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch):
    """One real POST of a message.created delivery, as the receiver got it."""
    monkeypatch.setattr("channels_app.webhooks.services.webhook_deliveries_enqueue", lambda ids: None)
    make_subscription(tenant, receiver.url, events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant)
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    webhook_deliver(delivery_id=delivery.pk)
    [request] = receiver.requests
    return request


def test_a_receiver_accepts_the_real_signature(delivered):
    header = delivered.headers["X-Omnidesk-Signature"]

    assert verify(SECRET, delivered.body, header)
    assert timestamped_signature_matches(SECRET, delivered.body, header)
    assert abs(int(header.split(",")[0].removeprefix("t=")) - time.time()) < 60


def test_a_tampered_body_is_refused(delivered):
    header = delivered.headers["X-Omnidesk-Signature"]
    tampered = delivered.body.replace(b'"message.created"', b'"customer.created"')

    assert tampered != delivered.body
    assert not verify(SECRET, tampered, header)
    assert not timestamped_signature_matches(SECRET, tampered, header)


def test_another_secret_is_refused(delivered):
    header = delivered.headers["X-Omnidesk-Signature"]

    assert not verify("whsec_someone-else", delivered.body, header)
    assert not timestamped_signature_matches("whsec_someone-else", delivered.body, header)


def test_an_old_timestamp_is_refused_even_with_a_correct_signature():
    body = b'{"id":"x"}'
    old = int(time.time()) - 301
    header = timestamped_signature_for(SECRET, body, old)

    assert verify(SECRET, body, header, now=old + 1)
    assert not verify(SECRET, body, header)
    assert not timestamped_signature_matches(SECRET, body, header)
    assert timestamped_signature_matches(SECRET, body, header, now=old + 10)


def test_moving_the_timestamp_breaks_the_signature():
    body = b'{"id":"x"}'
    now = int(time.time())
    forged = timestamped_signature_for(SECRET, body, now - 3600).replace(f"t={now - 3600}", f"t={now}")

    assert not timestamped_signature_matches(SECRET, body, forged)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=123", "t=abc,v1=def", "sha256=abc"])
def test_malformed_headers_never_match(header):
    assert not timestamped_signature_matches(SECRET, b"{}", header)
