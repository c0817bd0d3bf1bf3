from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.adapters.base import SendRefused
from channels_app.models import Channel, DeliveryAttempt
from channels_app.services import message_deliver, reply_send
from conversations.models import TimelineEntry

from .conftest import ACCOUNT_SID, customer_writes, twilio_inbox

pytestmark = pytest.mark.django_db

TEMPLATE = {"content_sid": "HX" + "b" * 32, "variables": {"1": "Maria"}, "preview": "Hi Maria, your order shipped."}


def test_it_sends_a_reply_through_twilio_with_a_status_callback(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="On its way")
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert create["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (create["form"]["To"], create["form"]["From"], create["form"]["Body"]) == ("+12025550143", "+15550100000", "On its way")
    assert create["form"]["StatusCallback"] == f"http://testserver/hooks/twilio/{inbox.key}/status/?entry={reply.pk}"
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"
    assert reply.external_id.startswith("SM")


def test_it_sends_from_a_messaging_service_when_configured(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbox.settings["messaging_service_sid"] = "MG" + "c" * 32
    inbox.save()
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hi")
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert (create["form"]["MessagingServiceSid"], "From" in create["form"]) == ("MG" + "c" * 32, False)


def test_it_retries_a_5xx_and_sends_exactly_once(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hello")
    fake_twilio.answer(("error", 503, 20500, "Service unavailable"))
    delays = [message_deliver(entry_id=reply.pk) for _ in range(3)]
    assert delays == [10, None, None]
    assert [r["answered"] for r in fake_twilio.creates()] == [503, 201]
    assert len(fake_twilio.accepted()) == 1
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"
    assert list(DeliveryAttempt.objects.filter(entry=reply).values_list("succeeded", flat=True)) == [False, True]


def test_it_retries_a_refused_connection(client, tenant, agent, fake_twilio, settings):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hello")
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    assert message_deliver(entry_id=reply.pk) == 10
    reply.refresh_from_db()
    assert reply.delivery_status == "queued"


def test_it_fails_a_permanent_error_with_the_explanation(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hello")
    fake_twilio.answer(("error", 400, 21211, "The 'To' number is not a valid phone number."))
    assert message_deliver(entry_id=reply.pk) is None
    reply.refresh_from_db()
    assert (reply.delivery_status, reply.error_code) == ("failed", "21211")
    assert reply.failure_reason == "The number is not a valid phone number. (Twilio error 21211)"
    assert len(fake_twilio.creates()) == 1


def test_it_does_not_resend_after_twilio_hangs(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hello")
    fake_twilio.answer(("hang", 1.0))
    assert message_deliver(entry_id=reply.pk) is None
    assert message_deliver(entry_id=reply.pk) is None
    reply.refresh_from_db()
    assert reply.delivery_status == "failed"
    assert "may or may not have gone out" in reply.failure_reason
    assert len(fake_twilio.creates()) == 1


def test_it_refuses_a_body_over_1600_characters(client, tenant, agent):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    with pytest.raises(SendRefused, match="at most 1600 characters; this one has 1601"):
        reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="x" * 1601)
    assert TimelineEntry.objects.filter(tenant=tenant, direction="outbound").count() == 0


def whatsapp_conversation(client, tenant, *, hours_ago: float):
    inbox = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    inbound = customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671")
    TimelineEntry.objects.filter(pk=inbound.pk).update(created_at=timezone.now() - timedelta(hours=hours_ago))
    return inbox, inbound.conversation


def test_it_sends_whatsapp_free_form_inside_the_window(client, tenant, agent, fake_twilio):
    _, conversation = whatsapp_conversation(client, tenant, hours_ago=23)
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Hi!")
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert (create["form"]["To"], create["form"]["From"]) == ("whatsapp:+12025550143", "whatsapp:+14155552671")


def test_it_refuses_whatsapp_free_form_after_24_hours(client, tenant, agent):
    _, conversation = whatsapp_conversation(client, tenant, hours_ago=25)
    with pytest.raises(SendRefused, match="only within 24 hours .* Send an approved template instead"):
        reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Hi!")
    assert TimelineEntry.objects.filter(tenant=tenant, direction="outbound").count() == 0


def test_it_sends_a_whatsapp_template_after_24_hours(client, tenant, agent, fake_twilio):
    _, conversation = whatsapp_conversation(client, tenant, hours_ago=25)
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="",
                       data={"template": TEMPLATE})
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert (create["form"]["ContentSid"], json.loads(create["form"]["ContentVariables"])) == (TEMPLATE["content_sid"], {"1": "Maria"})
    assert "Body" not in create["form"]
    reply.refresh_from_db()
    assert (reply.body, reply.delivery_status) == ("Hi Maria, your order shipped.", "sent")


def test_it_refuses_a_template_without_a_content_sid(client, tenant, agent):
    _, conversation = whatsapp_conversation(client, tenant, hours_ago=25)
    with pytest.raises(SendRefused, match="content SID"):
        reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="",
                   data={"template": {"content_sid": "nope", "preview": "x"}})


def test_a_whatsapp_sender_written_with_its_prefix_is_not_prefixed_twice(client, tenant, agent, fake_twilio):
    inbox, conversation = whatsapp_conversation(client, tenant, hours_ago=1)
    inbox.settings["from_number"] = "whatsapp:+14155552671"
    inbox.save()
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Hi!")
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert create["form"]["From"] == "whatsapp:+14155552671"
