from __future__ import annotations

import pytest

from channels_app.adapters.base import SendRefused
from channels_app.adapters.twilio_sms.adapter import sms_keyword
from channels_app.services import reply_send
from conversations.models import TimelineEntry
from customers.models import Identity

from .conftest import customer_writes, twilio_inbox

pytestmark = pytest.mark.django_db


def test_stop_opts_the_number_out_and_keeps_the_message(client, tenant):
    inbox = twilio_inbox(tenant)
    entry = customer_writes(client, inbox, Body="stop")
    identity = Identity.objects.get(tenant=tenant, kind="phone", value="+12025550143")
    assert identity.opted_out_at is not None
    assert (entry.body, entry.data["keyword"]) == ("stop", "stop")
    assert TimelineEntry.objects.filter(conversation=entry.conversation, event="sms_opted_out").count() == 1


def test_a_reply_to_an_opted_out_number_is_refused(client, tenant, agent):
    inbox = twilio_inbox(tenant)
    entry = customer_writes(client, inbox, Body="UNSUBSCRIBE")
    with pytest.raises(SendRefused, match="opted out"):
        reply_send(tenant=tenant, conversation=entry.conversation, author=agent, channel="sms", body="Wait!")
    assert TimelineEntry.objects.filter(tenant=tenant, direction="outbound").count() == 0


def test_start_opts_the_number_back_in(client, tenant, agent):
    inbox = twilio_inbox(tenant)
    customer_writes(client, inbox, Body="STOP")
    entry = customer_writes(client, inbox, Body="Start")
    assert Identity.objects.get(tenant=tenant, kind="phone").opted_out_at is None
    reply = reply_send(tenant=tenant, conversation=entry.conversation, author=agent, channel="sms", body="Welcome back")
    assert reply.delivery_status == "queued"


def test_help_is_recorded_without_opting_out(client, tenant):
    inbox = twilio_inbox(tenant)
    entry = customer_writes(client, inbox, Body=" help ")
    assert Identity.objects.get(tenant=tenant, kind="phone").opted_out_at is None
    assert TimelineEntry.objects.filter(conversation=entry.conversation, event="sms_help_requested").count() == 1


def test_a_redelivered_stop_after_start_does_not_opt_out_again(client, tenant):
    inbox = twilio_inbox(tenant)
    stop = customer_writes(client, inbox, Body="STOP")
    customer_writes(client, inbox, Body="START")
    customer_writes(client, inbox, Body="STOP", MessageSid=stop.external_id)
    assert Identity.objects.get(tenant=tenant, kind="phone").opted_out_at is None


def test_keywords_are_whole_messages_only():
    assert [sms_keyword(b) for b in ("Stop.", "QUIT", "please stop texting me", "yes", "INFO", "")] == [
        "stop", "stop", "", "start", "help", "",
    ]


def test_twilio_advanced_opt_out_type_wins():
    assert sms_keyword("ARRET", "STOP") == "stop"
