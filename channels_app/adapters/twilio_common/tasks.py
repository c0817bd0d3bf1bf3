from __future__ import annotations

from celery import shared_task

from channels_app.adapters.twilio_common.media import MediaTransientError, twilio_media_fetch


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(MediaTransientError,), max_retries=8, retry_backoff=10,
    retry_backoff_max=600,
)
def fetch_twilio_media(tenant_id: int, entry_id: int, index: int) -> None:
    twilio_media_fetch(tenant_id=tenant_id, entry_id=entry_id, index=index)
