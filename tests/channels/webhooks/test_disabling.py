from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from channels_app.models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from channels_app.webhooks import services
from channels_app.webhooks.services import webhook_deliver
from customers.models import AuditLog
from tests.channels.webhooks.conftest import customer_writes, make_subscription


def failing_delivery(tenant, receiver, capture, monkeypatch, **subscription_fields) -> WebhookDelivery:
    monkeypatch.setattr(services, "webhook_deliveries_enqueue", lambda ids: None)
    make_subscription(tenant, receiver.url, events=["message.created"], **subscription_fields)
    with capture(execute=True):
        customer_writes(tenant)
    receiver.answer(500, b"still broken")
    return WebhookDelivery.objects.for_tenant(tenant).get()


def test_a_delivery_failing_past_its_retry_window_disables_the_subscription_and_tells_the_admins(
    tenant, tenant_admin, agent, outsider, receiver, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    delivery = failing_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    # The last day of retries has passed: the next wait would end after the window.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=24), retry_until=timezone.now() + timedelta(seconds=10),
        attempt_count=29,
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliver(delivery_id=delivery.pk) is None

    delivery.refresh_from_db()
    subscription = delivery.subscription
    assert (delivery.status, delivery.attempt_count) == (WebhookDeliveryStatus.FAILED, 30)
    assert (subscription.is_active, subscription.disabled_at is not None) == (False, True)
    assert str(delivery.uuid) in subscription.disabled_reason
    assert "HTTP 500" in subscription.disabled_reason
    [mail] = mailoutbox
    assert mail.to == ["admin@acme.test"]
    assert subscription.url in mail.subject
    assert subscription.disabled_reason in mail.body
    assert AuditLog.objects.filter(tenant=tenant, action="webhook.disable").count() == 1


def test_a_disabled_subscription_gets_no_new_deliveries(tenant, receiver, django_capture_on_commit_callbacks,
                                                         monkeypatch):
    delivery = failing_delivery(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    services.webhook_subscription_disable(subscription=delivery.subscription, reason="test")

    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant, external_id="m-2")

    assert WebhookDelivery.objects.for_tenant(tenant).count() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (WebhookDeliveryStatus.FAILED, "The subscription was disabled.")


def test_fifty_failed_attempts_in_a_row_over_an_hour_disable_it_early(
    tenant, tenant_admin, receiver, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    delivery = failing_delivery(
        tenant, receiver, django_capture_on_commit_callbacks, monkeypatch, consecutive_failures=49,
        failing_since=timezone.now() - timedelta(hours=2),
    )

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver(delivery_id=delivery.pk)

    subscription = WebhookSubscription.objects.get(pk=delivery.subscription_id)
    assert not subscription.is_active
    assert subscription.disabled_reason.startswith("50 attempts in a row failed")
    assert len(mailoutbox) == 1


def test_a_burst_of_failures_within_minutes_does_not_disable_it(
    tenant, tenant_admin, receiver, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    delivery = failing_delivery(
        tenant, receiver, django_capture_on_commit_callbacks, monkeypatch, consecutive_failures=80,
        failing_since=timezone.now() - timedelta(minutes=5),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliver(delivery_id=delivery.pk) == 30

    subscription = WebhookSubscription.objects.get(pk=delivery.subscription_id)
    assert (subscription.is_active, subscription.consecutive_failures) == (True, 81)
    assert mailoutbox == []
