from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from channels_app.webhooks import services


@shared_task(
    bind=True, acks_late=True, max_retries=None, ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, retry_backoff_max=300,
)
def deliver_webhook(self, delivery_id: int) -> None:
    delay = services.webhook_deliver(delivery_id=delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@shared_task(ignore_result=True)
def sweep_webhook_deliveries() -> None:
    """Periodic: send pending deliveries whose task was lost or never reached the broker."""
    for delivery_id in services.webhook_deliveries_due():
        deliver_webhook.delay(delivery_id)
