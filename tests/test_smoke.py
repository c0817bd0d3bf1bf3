from __future__ import annotations

from channels_app.models import Channel
from conversations.services import InboundMessage, message_record_inbound


def test_an_inbound_sms_lands_on_a_new_conversation(tenant, sms_inbox):
    result = message_record_inbound(
        tenant=tenant, inbox=sms_inbox,
        message=InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="(202) 555-0143", body="Hi", external_id="SM1"),
    )
    assert result.created
    assert result.conversation.number == 1
    assert result.entry.customer.identities.get().value == "+12025550143"
