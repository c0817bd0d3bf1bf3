from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from channels_app import receipts, services
from channels_app.adapters.email import tasks as email_tasks  # noqa: F401 - registers the IMAP poll tasks

# Receipts stay pending through a database outage: their tasks retry until it ends.
STORE_RECEIPTS = dict(
    acks_late=True, ignore_result=True, autoretry_for=(OperationalError, InterfaceError), max_retries=None,
    retry_backoff=2, retry_backoff_max=120,
)


@shared_task(**STORE_RECEIPTS)
def pump_inbound_receipts() -> None:
    """Store pending receipts (Twilio messages, e-mails) until none is left (receipts.receipts_pump)."""
    receipts.receipts_pump()


@shared_task(ignore_result=True)
def sweep_inbound_receipts() -> None:
    """Periodic: store the messages of receipts whose pump was lost (a broker outage, a killed worker)."""
    receipts.receipts_sweep()


@shared_task(
    bind=True, acks_late=True, max_retries=None, ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, retry_backoff_max=300,
)
def deliver_message(self, entry_id: int) -> None:
    delay = services.message_deliver(entry_id=entry_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=5,
    retry_backoff_max=300, max_retries=None,
)
def send_scheduled_message(tenant_id: int, entry_id: int) -> None:
    services.scheduled_send(tenant_id=tenant_id, entry_id=entry_id)


@shared_task(ignore_result=True)
def sweep_outbound() -> None:
    """Periodic: re-enqueue queued messages nobody is sending; report sends that died midway; send
    scheduled replies whose timer was lost and arm timers for those due before the next run."""
    for entry_id in services.queued_requeue():
        deliver_message.delay(entry_id)
    services.sending_sweep()
    due, soon = services.scheduled_timers()
    for tenant_id, entry_id in due:
        send_scheduled_message.delay(tenant_id, entry_id)
    for tenant_id, entry_id, at in soon:
        send_scheduled_message.apply_async((tenant_id, entry_id), eta=at)
