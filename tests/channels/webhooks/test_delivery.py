from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from channels_app.webhooks import services
from channels_app.webhooks.services import retry_delay, webhook_deliver, webhook_deliveries_due
from tests.channels.webhooks.conftest import customer_writes, make_subscription, wait_until


def one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch) -> WebhookDelivery:
    """A stored message.created delivery that no task has picked up (the test drives it)."""
    monkeypatch.setattr(services, "webhook_deliveries_enqueue", lambda ids: None)
    make_subscription(tenant, receiver.url, events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant)
    return WebhookDelivery.objects.for_tenant(tenant).get()


def test_the_backoff_doubles_from_30_seconds_up_to_an_hour():
    assert [retry_delay(n) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


def test_a_2xx_delivers_and_clears_the_failure_count(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch):
    delivery = one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(consecutive_failures=3,
                                                                           failing_since=timezone.now())
    receiver.answer(204, b"")

    assert webhook_deliver(delivery_id=delivery.pk) is None

    delivery.refresh_from_db()
    subscription = delivery.subscription
    assert (delivery.status, delivery.attempt_count) == (WebhookDeliveryStatus.DELIVERED, 1)
    assert (subscription.consecutive_failures, subscription.failing_since) == (0, None)
    assert subscription.last_success_at is not None
    attempt = WebhookAttempt.objects.for_tenant(tenant).get(delivery=delivery)
    assert (attempt.succeeded, attempt.status_code, attempt.error) == (True, 204, "")


def test_a_failure_is_recorded_and_retried_later(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch):
    delivery = one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    receiver.answer(503, b"x" * 2000)

    delay = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delay, delivery.status) == (30, WebhookDeliveryStatus.PENDING)
    assert timedelta(seconds=25) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    attempt = WebhookAttempt.objects.for_tenant(tenant).get(delivery=delivery)
    assert (attempt.succeeded, attempt.status_code, len(attempt.response_snippet)) == (False, 503, 500)
    assert "HTTP 503" in attempt.error
    assert attempt.latency_ms is not None
    assert delivery.subscription.consecutive_failures == 1
    # Not due yet: a duplicated task finds nothing to send.
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_an_unreachable_receiver_is_an_attempt_with_the_error(tenant, django_capture_on_commit_callbacks, monkeypatch,
                                                               receiver):
    delivery = one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(url="http://127.0.0.1:9/closed")

    assert webhook_deliver(delivery_id=delivery.pk) == 30

    attempt = WebhookAttempt.objects.for_tenant(tenant).get(delivery=delivery)
    assert attempt.status_code is None
    assert "Could not reach" in attempt.error


def test_a_private_address_is_refused_at_delivery_time_in_production(
    tenant, receiver, django_capture_on_commit_callbacks, monkeypatch, settings
):
    delivery = one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False

    webhook_deliver(delivery_id=delivery.pk)

    assert receiver.requests == []
    assert "loopback, private or reserved" in WebhookAttempt.objects.for_tenant(tenant).get(delivery=delivery).error


@pytest.mark.django_db(transaction=True)
def test_a_receiver_failing_then_timing_out_then_answering_gets_it_once_with_one_delivery_id(
    tenant, receiver, celery_worker_live, monkeypatch
):
    # Real worker, real broker, real HTTP; only the waits are shortened.
    monkeypatch.setattr(services, "TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(services, "retry_delay", lambda attempt: 0)
    receiver.answer(500, b"database is down")
    receiver.answer(200, b"{}", delay=1.5)
    make_subscription(tenant, receiver.url, events=["message.created"])

    customer_writes(tenant)

    delivery = wait_until(lambda: WebhookDelivery.objects.for_tenant(tenant).filter(
        status=WebhookDeliveryStatus.DELIVERED).first())
    assert delivery is not None
    attempts = list(WebhookAttempt.objects.for_tenant(tenant).filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.succeeded) for a in attempts] == [(1, 500, False), (2, None, False), (3, 200, True)]
    assert attempts[0].response_snippet == "database is down"
    assert "timed out" in attempts[1].error
    assert len(receiver.requests) == 3
    assert {r.headers["X-Omnidesk-Delivery"] for r in receiver.requests} == {str(delivery.uuid)}
    assert {r.body for r in receiver.requests} == {delivery.body.encode()}
    # Delivered is final: neither a stray task nor the sweeper sends it again.
    webhook_deliver(delivery_id=delivery.pk)
    assert webhook_deliveries_due(grace=timedelta(0)) == []
    assert len(receiver.requests) == 3
    assert delivery.attempt_count == 3


def test_without_a_secret_nothing_unsigned_is_sent(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch):
    delivery = one_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(secret_encrypted="")

    webhook_deliver(delivery_id=delivery.pk)

    assert receiver.requests == []
    assert "no signing secret" in WebhookAttempt.objects.for_tenant(tenant).get(delivery=delivery).error
