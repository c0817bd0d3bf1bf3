from __future__ import annotations

import time

import pytest

from channels_app.services import reply_send
from conversations.models import TimelineEntry

from .conftest import customer_writes, twilio_inbox


def wait_for_status(entry_id: int, status: str, seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    current = ""
    while time.monotonic() < deadline and current != status:
        current = TimelineEntry.objects.values_list("delivery_status", flat=True).get(pk=entry_id)
        time.sleep(0.1)
    return current


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_a_reply_to_twilio(client, tenant, agent, fake_twilio, celery_worker_live):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox, Body="Is anyone there?")
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Yes, hello!")
    assert wait_for_status(reply.pk, "sent") == "sent"
    [create] = fake_twilio.accepted()
    assert (create["form"]["To"], create["form"]["Body"]) == ("+12025550143", "Yes, hello!")
