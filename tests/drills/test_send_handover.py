"""The send-path fixes the Redis drill led to, as fast unit tests (they run in every suite run).

A reply written while the broker is down is committed as queued and the agent gets the normal answer (it
was a 500); the outbound sweeper hands a never-tried reply over after 90 s instead of 11 minutes.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from channels_app.models import Channel, DeliveryAttempt
from channels_app.services import queued_requeue, reply_send
from channels_app.tasks import deliver_message
from conversations.models import DeliveryStatus, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from tests.channels.twilio.conftest import twilio_inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(tenant):
    inbox = twilio_inbox(tenant)
    message = InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="Hi",
                             data={"from": "+12025550143", "to": inbox.address})
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def test_a_reply_written_while_the_broker_is_down_is_kept_queued_and_the_agent_is_answered(
    client, agent, conversation, django_capture_on_commit_callbacks
):
    client.force_login(agent)
    with mock.patch.object(deliver_message, "delay", side_effect=BrokerError("Connection refused")):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/app/conversations/{conversation.number}/reply/", {"channel": "sms", "body": "On it"})
    assert response.status_code == 302
    reply = TimelineEntry.objects.for_tenant(conversation.tenant_id).get(body="On it")
    assert reply.delivery_status == DeliveryStatus.QUEUED


def age(entry: TimelineEntry, seconds: int) -> None:
    TimelineEntry.objects.filter(pk=entry.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_the_sweeper_hands_over_a_never_tried_reply_after_90_seconds(tenant, agent, conversation):
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Hello")
    age(reply, 60)
    assert queued_requeue() == []
    age(reply, 91)
    assert queued_requeue() == [reply.pk]


def test_the_sweeper_leaves_a_reply_waiting_for_its_retry_alone_until_after_the_longest_retry_delay(
    tenant, agent, conversation
):
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Hello")
    for number in (1, 2):
        DeliveryAttempt.objects.create(tenant=tenant, entry=reply, inbox=reply.inbox, number=number, status_code=503)
    age(reply, 600)
    assert queued_requeue() == []
    age(reply, 661)
    assert queued_requeue() == [reply.pk]
