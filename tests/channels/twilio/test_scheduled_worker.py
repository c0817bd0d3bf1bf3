"""A scheduled reply with a real worker: the ETA timer fires at its time and Twilio receives it once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.services import reply_send
from conversations.models import TimelineEntry

from .conftest import customer_writes, twilio_inbox


@pytest.mark.django_db(transaction=True)
def test_the_eta_timer_sends_a_scheduled_reply_at_its_time(client, tenant, agent, fake_twilio, celery_worker_live):
    inbound = customer_writes(client, twilio_inbox(tenant))
    send_at = timezone.now() + timedelta(seconds=2)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="On time",
                       send_at=send_at)

    time.sleep(1)
    assert TimelineEntry.objects.get(pk=reply.pk).delivery_status == "scheduled"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and TimelineEntry.objects.get(pk=reply.pk).delivery_status != "sent":
        time.sleep(0.1)

    sent = TimelineEntry.objects.get(pk=reply.pk)
    assert sent.delivery_status == "sent"
    assert sent.created_at >= send_at
    assert [c["form"]["Body"] for c in fake_twilio.accepted()] == ["On time"]
