"""A caller lands on their one conversation: an open SMS conversation takes the call."""

from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.models import Conversation, TimelineEntry
from tests.channels.twilio.conftest import customer_writes

from .conftest import CALLER, call_form, call_sid, hook, post, the_call, twilio_inbox

pytestmark = pytest.mark.django_db


def test_a_caller_with_an_open_sms_conversation_joins_it(client, tenant, inbox):
    sms = twilio_inbox(tenant, channel=Channel.SMS, address="+15550100000")
    message = customer_writes(client, sms, From=CALLER, Body="Where is my order?")
    post(client, hook(inbox), call_form(call_sid()))
    call = the_call(tenant)
    assert call.conversation == message.conversation
    assert call.customer == message.customer
    assert Conversation.objects.filter(tenant=tenant).count() == 1
    [switch] = TimelineEntry.objects.filter(conversation=call.conversation, event="channel_switched")
    assert switch.data == {"from": "sms", "to": "voice"}
    assert sorted(Conversation.objects.get().channels) == ["sms", "voice"]


def test_a_caller_in_another_format_is_the_same_customer(client, tenant, inbox):
    sms = twilio_inbox(tenant, channel=Channel.SMS, address="+15550100000")
    message = customer_writes(client, sms, From=CALLER)
    post(client, hook(inbox), call_form(call_sid(), From="(202) 555-0143"))
    assert the_call(tenant).customer == message.customer


def test_a_new_caller_opens_a_voice_conversation(client, tenant, inbox):
    post(client, hook(inbox), call_form(call_sid()))
    conversation = Conversation.objects.get(tenant=tenant)
    assert (conversation.first_channel, conversation.status) == ("voice", "open")
    assert conversation.waiting_since is not None
