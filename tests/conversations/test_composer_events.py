"""The domain events of send later and of merging carry their schema keys and reach live clients as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from channels_app.services import reply_send, scheduled_send
from conversations.models import TimelineEntry
from conversations.services import (
    InboundMessage,
    conversation_merge,
    conversation_open,
    message_cancel_scheduled,
    message_record_inbound,
)
from customers.models import Identity
from omnidesk.lib.events import EVENT_SCHEMAS

COMPOSER_EVENTS = {"message.scheduled", "message.cancelled", "message.failed", "conversation.merged"}


def test_send_later_and_merge_events_carry_their_schema_keys(
    tenant, sms_inbox, agent, django_capture_on_commit_callbacks, captured_events
):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Hi",
                             data={"from": "+12025550143"})
    # An hour ahead: beyond the ETA horizon, so no timer goes to the broker; the one sent at its time is refused.
    with django_capture_on_commit_callbacks(execute=True):
        conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).conversation
        later = timezone.now() + timedelta(hours=1)
        first = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="sms", body="a", send_at=later)
        second = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="sms", body="b", send_at=later)
        message_cancel_scheduled(tenant=tenant, conversation=conversation, entry_id=first.pk, actor=agent)
        Identity.objects.filter(tenant=tenant).update(opted_out_at=timezone.now())
        TimelineEntry.objects.filter(pk=second.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
        scheduled_send(tenant_id=tenant.pk, entry_id=second.pk)
        other = conversation_open(tenant=tenant, customer=conversation.customer, channel="sms")
        conversation_merge(tenant=tenant, survivor=conversation, merged=other, actor=agent)

    seen = {e.name: e for e in captured_events if e.name in COMPOSER_EVENTS}
    assert set(seen) == COMPOSER_EVENTS
    assert {name: sorted(EVENT_SCHEMAS[name] - e.payload.keys()) for name, e in seen.items()} == {
        name: [] for name in COMPOSER_EVENTS
    }
    assert all(json.loads(json.dumps(e.as_dict()))["type"] == name for name, e in seen.items())

