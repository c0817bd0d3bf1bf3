from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from channels_app.adapters.twilio_common.media import MediaTransientError
from channels_app.adapters.twilio_voice.services import call_recording_fetch


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(MediaTransientError, OperationalError, InterfaceError),
    max_retries=8, retry_backoff=10, retry_backoff_max=600,
)
def fetch_call_recording(tenant_id: int, entry_id: int) -> None:
    call_recording_fetch(tenant_id=tenant_id, entry_id=entry_id)
