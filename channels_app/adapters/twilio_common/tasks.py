from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from channels_app.adapters.twilio_common.media import MediaTransientError, twilio_media_fetch
from channels_app.adapters.twilio_common.receipts import (
    twilio_receipt_process,
    twilio_receipts_pump,
    twilio_receipts_sweep,
)

# Receipts stay pending through a database outage: their tasks retry until it ends.
STORE_RECEIPTS = dict(
    acks_late=True, ignore_result=True, autoretry_for=(OperationalError, InterfaceError), max_retries=None,
    retry_backoff=2, retry_backoff_max=120,
)


@shared_task(**STORE_RECEIPTS)
def ingest_twilio_message(tenant_id: int, receipt_id: int) -> None:
    """One receipt (the task webhooks enqueued before the pump; kept for tasks still queued at an upgrade)."""
    twilio_receipt_process(tenant_id=tenant_id, receipt_id=receipt_id)


@shared_task(**STORE_RECEIPTS)
def pump_twilio_receipts() -> None:
    """Store pending receipts until none is left (twilio_receipts_pump)."""
    twilio_receipts_pump()


@shared_task(ignore_result=True)
def sweep_twilio_receipts() -> None:
    """Periodic: store the messages of receipts whose task was lost (a broker outage, a killed worker)."""
    twilio_receipts_sweep()


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(MediaTransientError,), max_retries=8, retry_backoff=10,
    retry_backoff_max=600,
)
def fetch_twilio_media(tenant_id: int, entry_id: int, index: int) -> None:
    twilio_media_fetch(tenant_id=tenant_id, entry_id=entry_id, index=index)
