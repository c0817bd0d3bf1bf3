from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.models import TimelineEntry
from customers.models import Customer, Identity

from .conftest import customer_writes, inbound_form, post_signed, sign, twilio_inbox

pytestmark = pytest.mark.django_db


def hook(inbox) -> str:
    return f"/hooks/twilio/{inbox.key}/messages/"


def test_it_stores_a_signed_sms_and_answers_empty_twiml(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body="Where is my parcel?")
    response = post_signed(client, hook(inbox), form)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode().endswith("<Response/>")
    entry = TimelineEntry.objects.get(tenant=tenant, external_id=form["MessageSid"])
    assert (entry.channel, entry.body, entry.data["from"]) == ("sms", "Where is my parcel?", "+12025550143")
    assert Identity.objects.get(tenant=tenant, customer=entry.customer).value == "+12025550143"


def test_it_rejects_a_bad_signature_and_stores_nothing(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    response = client.post(hook(inbox), data=form, HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + hook(inbox), form, "wrong-token"))
    assert response.status_code == 403
    assert TimelineEntry.objects.filter(tenant=tenant).count() == 0


def test_it_rejects_a_missing_signature_and_stores_nothing(client, tenant):
    inbox = twilio_inbox(tenant)
    response = client.post(hook(inbox), data=inbound_form())
    assert response.status_code == 403
    assert response.json()["detail"] == "Missing X-Twilio-Signature header."
    assert Customer.objects.filter(tenant=tenant).count() == 0


def test_it_rejects_a_signature_over_changed_fields(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body="Refund me 10 dollars")
    signature = sign("http://testserver" + hook(inbox), form)
    response = client.post(hook(inbox), data=form | {"Body": "Refund me 1000 dollars"}, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403


def test_it_validates_against_the_public_url_not_the_host_header(client, tenant, settings):
    settings.PUBLIC_BASE_URL = "https://support.example.com"
    inbox = twilio_inbox(tenant)
    signed_for_host = post_signed(client, hook(inbox), inbound_form())
    signed_for_public = post_signed(client, hook(inbox), inbound_form(), base="https://support.example.com")
    assert (signed_for_host.status_code, signed_for_public.status_code) == (403, 200)


def test_it_stores_a_redelivered_message_once_and_still_answers_200(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    first = post_signed(client, hook(inbox), form)
    second = post_signed(client, hook(inbox), form)
    assert (first.status_code, second.status_code) == (200, 200)
    assert TimelineEntry.objects.filter(tenant=tenant, external_id=form["MessageSid"]).count() == 1


def test_it_answers_404_for_an_unknown_key(client, tenant):
    response = post_signed(client, "/hooks/twilio/no-such-inbox/messages/", inbound_form())
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown inbox."}


def test_it_rejects_another_tenants_key_signed_with_this_tenants_token(client, tenant, other_tenant):
    twilio_inbox(tenant)
    theirs = twilio_inbox(other_tenant, token="globex-token")
    response = post_signed(client, hook(theirs), inbound_form())
    assert response.status_code == 403
    assert TimelineEntry.objects.count() == 0


def test_it_answers_400_when_from_is_missing(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    del form["From"]
    response = post_signed(client, hook(inbox), form)
    assert response.status_code == 400
    assert response.json() == {"detail": "From is missing."}


def test_it_answers_400_for_an_impossible_number(client, tenant):
    inbox = twilio_inbox(tenant)
    response = post_signed(client, hook(inbox), inbound_form(From="+1555"))
    assert response.status_code == 400
    assert "not a valid number" in response.json()["detail"]


def test_it_answers_400_for_a_bad_message_sid(client, tenant):
    inbox = twilio_inbox(tenant)
    response = post_signed(client, hook(inbox), inbound_form(MessageSid="SM123"))
    assert response.status_code == 400


def test_it_answers_405_to_get(client, tenant):
    inbox = twilio_inbox(tenant)
    assert client.get(hook(inbox)).status_code == 405


def test_it_rejects_an_inbox_of_another_channel(client, tenant, email_inbox):
    response = post_signed(client, hook(email_inbox), inbound_form())
    assert response.status_code == 404


def test_it_stores_whatsapp_under_a_whatsapp_identity(client, tenant):
    inbox = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    entry = customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671",
                            ProfileName="Maria")
    identity = Identity.objects.get(tenant=tenant, customer=entry.customer)
    assert (entry.channel, identity.kind, identity.value) == ("whatsapp", "whatsapp", "+12025550143")
    assert (entry.customer.name, entry.data["to"]) == ("Maria", "+14155552671")


def test_it_refuses_a_plain_number_on_a_whatsapp_inbox(client, tenant):
    inbox = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    response = post_signed(client, hook(inbox), inbound_form(From="+12025550143"))
    assert response.status_code == 400


def test_sms_then_whatsapp_from_one_number_is_one_customer_and_one_conversation(client, tenant):
    sms = twilio_inbox(tenant)
    whatsapp = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    first = customer_writes(client, sms)
    second = customer_writes(client, whatsapp, From="whatsapp:+12025550143")
    assert (second.customer_id, second.conversation_id) == (first.customer_id, first.conversation_id)
    assert TimelineEntry.objects.filter(conversation=first.conversation, event="channel_switched").count() == 1


def test_secrets_the_keys_cannot_read_answer_503_and_store_nothing(client, tenant, settings, caplog):
    from cryptography.fernet import Fernet

    inbox = twilio_inbox(tenant)
    form = inbound_form()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the inbox's key rotated away
    response = post_signed(client, hook(inbox), form)
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "cannot read its stored credentials" in response.json()["detail"]
    assert "FIELD_ENCRYPTION_KEYS" in caplog.text
    assert TimelineEntry.objects.filter(tenant=tenant).count() == 0
