from __future__ import annotations

import time

import pytest
from django.utils import timezone

from channels_app.models import Channel
from conversations.models import Priority, TimelineEntry
from conversations.services import conversation_open
from routing.models import SlaMetric, SlaPolicy, SlaTarget
from tests.factories import CustomerFactory


def wait_for_entries(tenant, event: str, count: int, timeout: float = 15.0) -> list[TimelineEntry]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = list(TimelineEntry.objects.for_tenant(tenant).filter(event=event))
        if len(entries) >= count:
            return entries
        time.sleep(0.1)
    return list(TimelineEntry.objects.for_tenant(tenant).filter(event=event))


@pytest.mark.django_db(transaction=True)
def test_at_risk_and_breach_fire_within_a_second_or_two_of_their_moments(tenant, celery_worker_live):
    policy = SlaPolicy.objects.create(tenant=tenant, name="Fast", at_risk_share=0.5)
    SlaTarget.objects.create(
        tenant=tenant, policy=policy, priority=Priority.NORMAL, metric=SlaMetric.FIRST_RESPONSE, seconds=4,
        business_hours=False,
    )
    customer = CustomerFactory(tenant=tenant)
    conversation = conversation_open(tenant=tenant, customer=customer, channel=Channel.SMS)
    # The conversation.opened handler hands the SLA to the worker, which applies it and arms both timers.
    deadline = time.monotonic() + 5
    while conversation.first_response_due_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
        conversation.refresh_from_db()
    assert conversation.first_response_due_at == conversation.created_at + timezone.timedelta(seconds=4)

    at_risk = wait_for_entries(tenant, "sla_at_risk", 1)
    breached = wait_for_entries(tenant, "sla_breached", 1)
    time.sleep(1.5)  # nothing fires twice

    at_risk_late = (at_risk[0].created_at - (conversation.created_at + timezone.timedelta(seconds=2))).total_seconds()
    breach_late = (breached[0].created_at - conversation.first_response_due_at).total_seconds()
    assert 0 <= at_risk_late < 1.5
    assert 0 <= breach_late < 1.5
    assert TimelineEntry.objects.for_tenant(tenant).filter(event__in=["sla_at_risk", "sla_breached"]).count() == 2
