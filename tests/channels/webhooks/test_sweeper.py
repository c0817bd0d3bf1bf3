from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from channels_app.models import WebhookDelivery, WebhookDeliveryStatus
from channels_app.webhooks.services import webhook_deliveries_due
from channels_app.webhooks.tasks import sweep_webhook_deliveries
from tests.channels.webhooks.conftest import customer_writes, make_subscription, wait_until


@pytest.mark.django_db(transaction=True)
def test_deliveries_stored_during_a_broker_outage_are_sent_by_the_sweeper(tenant, receiver, celery_worker_live):
    make_subscription(tenant, receiver.url, events=["message.created"])

    with mock.patch("channels_app.webhooks.tasks.deliver_webhook.delay", side_effect=BrokerError("down")):
        customer_writes(tenant)

    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert webhook_deliveries_due() == []  # too fresh: its own task may still come
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))

    sweep_webhook_deliveries()

    assert wait_until(lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="delivered").exists())
    [request] = receiver.requests
    assert request.headers["X-Omnidesk-Delivery"] == str(delivery.uuid)


def test_a_delivery_left_sending_by_a_dead_worker_is_sent_again(tenant, receiver, celery_eager, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    monkeypatch.setattr("channels_app.webhooks.services.webhook_deliveries_enqueue", lambda ids: None)
    make_subscription(tenant, receiver.url, events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant)
    WebhookDelivery.objects.for_tenant(tenant).update(status="sending", updated_at=timezone.now() - timedelta(minutes=6))

    sweep_webhook_deliveries()

    assert WebhookDelivery.objects.for_tenant(tenant).get().status == WebhookDeliveryStatus.DELIVERED
    assert len(receiver.requests) == 1
