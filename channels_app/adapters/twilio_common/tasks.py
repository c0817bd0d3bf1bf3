from __future__ import annotations

from celery import shared_task

from channels_app.adapters.twilio_common.media import MediaTransientError, twilio_media_fetch
from channels_app.receipts import receipt_process, receipts_pump, receipts_sweep
from channels_app.tasks import STORE_RECEIPTS

# The receipt tasks moved to channels_app.tasks when e-mail began to use receipts too. These names stay
# registered for tasks (and a beat schedule) still queued at an upgrade.


@shared_task(**STORE_RECEIPTS)
def ingest_twilio_message(tenant_id: int, receipt_id: int) -> None:
    receipt_process(tenant_id=tenant_id, receipt_id=receipt_id)


@shared_task(**STORE_RECEIPTS)
def pump_twilio_receipts() -> None:
    receipts_pump()


@shared_task(ignore_result=True)
def sweep_twilio_receipts() -> None:
    receipts_sweep()


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(MediaTransientError,), max_retries=8, retry_backoff=10,
    retry_backoff_max=600,
)
def fetch_twilio_media(tenant_id: int, entry_id: int, index: int) -> None:
    twilio_media_fetch(tenant_id=tenant_id, entry_id=entry_id, index=index)
