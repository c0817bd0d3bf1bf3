"""The composer offers written channels only: a customer's phone number is answered by SMS, not by 'voice'."""

from __future__ import annotations

from channels_app.models import Channel
from conversations.selectors import conversation_reply_channels
from conversations.services import InboundMessage, message_record_inbound


def test_a_caller_is_answered_in_writing_by_sms_not_on_the_voice_channel(tenant, sms_inbox):
    conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="Call me back?",
    )).conversation

    offered = [value for value, _ in conversation_reply_channels(conversation=conversation)]

    assert Channel.SMS in offered
    assert Channel.VOICE not in offered
