from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from conversations import csat


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=5,
    retry_backoff_max=300, max_retries=None,
)
def send_csat_survey(tenant_id: int, conversation_id: int) -> None:
    """After a resolve: the conversation's satisfaction survey, at most once (csat_survey_send is idempotent)."""
    csat.csat_survey_send(tenant_id=tenant_id, conversation_id=conversation_id)


@shared_task(ignore_result=True)
def sweep_csat_surveys() -> None:
    """Periodic: send the surveys of resolved conversations whose send task never ran (a broker outage)."""
    csat.csat_surveys_sweep()
