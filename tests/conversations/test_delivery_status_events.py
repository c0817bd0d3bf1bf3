"""Delivery ticks go live: an outbound message moving on (sent, delivered, failed) emits one event."""

from __future__ import annotations

from channels_app.models import Channel
from conversations.services import (
    InboundMessage,
    message_record_inbound,
    message_record_outbound,
    message_set_delivery_status,
)
from omnidesk.lib.events import EVENT_SCHEMAS


def test_each_step_forward_emits_one_status_event_with_its_schema(
    tenant, sms_inbox, agent, django_capture_on_commit_callbacks, captured_events
):
    conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="Hi",
    )).conversation
    reply = message_record_outbound(
        tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, inbox=sms_inbox, body="Hello",
    )
    captured_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        message_set_delivery_status(tenant=tenant, entry=reply, status="sent", external_id="SM1")
        message_set_delivery_status(tenant=tenant, entry=reply, status="delivered")
        message_set_delivery_status(tenant=tenant, entry=reply, status="delivered")  # a repeated callback
        message_set_delivery_status(tenant=tenant, entry=reply, status="sent")  # a late, older callback

    status_events = [e for e in captured_events if e.name == "message.status_changed"]
    assert [e.payload["delivery_status"] for e in status_events] == ["sent", "delivered"]
    assert all(EVENT_SCHEMAS["message.status_changed"] <= e.payload.keys() for e in status_events)
    assert {(e.payload["conversation_id"], e.payload["number"], e.payload["entry_id"]) for e in status_events} == {
        (conversation.pk, conversation.number, reply.pk)
    }
