"""Files on Twilio replies: MMS and WhatsApp media as MediaUrl, a signed link Twilio fetches from Omnidesk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.adapters.base import SendRefused
from channels_app.services import message_deliver, reply_send
from conversations.models import TimelineEntry
from conversations.services import OutgoingFile

from .conftest import customer_writes, twilio_inbox

pytestmark = pytest.mark.django_db

PHOTO = OutgoingFile(name="parcel.jpg", content=b"\xff\xd8\xff jpeg bytes", content_type="image/jpeg")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def whatsapp_conversation(client, tenant):
    inbox = twilio_inbox(tenant, channel="whatsapp", address="+14155552671")
    inbound = customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671")
    return inbound.conversation


def test_an_mms_carries_a_signed_media_url_that_serves_the_file(client, tenant, agent, fake_twilio):
    inbound = customer_writes(client, twilio_inbox(tenant))
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms",
                       body="Is this your parcel?", files=[PHOTO])

    message_deliver(entry_id=reply.pk)

    [create] = fake_twilio.creates()
    media_url = create["form"]["MediaUrl"]
    assert media_url.startswith("http://testserver/app/files/") and media_url.endswith("/parcel.jpg")
    client.logout()
    fetched = client.get(media_url.removeprefix("http://testserver"))
    assert (fetched.status_code, fetched["Content-Type"], b"".join(fetched.streaming_content)) == (
        200, "image/jpeg", PHOTO.content
    )


def test_a_reply_without_files_sends_no_media(client, tenant, agent, fake_twilio):
    inbound = customer_writes(client, twilio_inbox(tenant))
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hi")

    message_deliver(entry_id=reply.pk)

    [create] = fake_twilio.creates()
    assert "MediaUrl" not in create["form"]


def test_mms_over_5_mb_in_all_is_refused_before_anything_is_stored(client, tenant, agent):
    inbound = customer_writes(client, twilio_inbox(tenant))
    big = [OutgoingFile(name=f"p{i}.jpg", content=b"x" * 3_000_000, content_type="image/jpeg") for i in range(2)]

    with pytest.raises(SendRefused, match=r"The files add up to 6.0 MB; SMS carries at most 5.0 MB per message"):
        reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="x", files=big)
    assert not TimelineEntry.objects.filter(direction="outbound").exists()


def test_whatsapp_sends_one_file_as_media(client, tenant, agent, fake_twilio):
    conversation = whatsapp_conversation(client, tenant)
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Here",
                       files=[PHOTO])

    message_deliver(entry_id=reply.pk)

    [create] = fake_twilio.creates()
    assert (create["form"]["Body"], "/app/files/" in create["form"]["MediaUrl"]) == ("Here", True)


def test_whatsapp_refuses_a_second_file_and_says_what_to_do(client, tenant, agent):
    conversation = whatsapp_conversation(client, tenant)

    with pytest.raises(SendRefused, match="WhatsApp carries at most 1 file per message; this reply has 2. Send them in several replies or by e-mail."):
        reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="x",
                   files=[PHOTO, PHOTO])


def test_whatsapp_refuses_a_type_it_cannot_carry(client, tenant, agent):
    conversation = whatsapp_conversation(client, tenant)
    sheet = OutgoingFile(name="prices.xlsx", content=b"PK..", content_type="application/vnd.ms-excel")

    with pytest.raises(SendRefused, match=r"WhatsApp cannot carry prices.xlsx \(application/vnd.ms-excel\).*Send it by e-mail instead"):
        reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="x", files=[sheet])


def test_a_whatsapp_reply_scheduled_inside_the_window_fails_if_the_window_closed_by_then(client, tenant, agent, fake_twilio):
    from channels_app.services import scheduled_send

    conversation = whatsapp_conversation(client, tenant)
    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Tomorrow!",
                       send_at=timezone.now() + timedelta(hours=1))
    TimelineEntry.objects.filter(direction="inbound").update(created_at=timezone.now() - timedelta(hours=25))
    TimelineEntry.objects.filter(pk=reply.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))

    scheduled_send(tenant_id=tenant.pk, entry_id=reply.pk)

    reply.refresh_from_db()
    assert reply.delivery_status == "failed"
    assert "Not sent at its time: WhatsApp allows free-form replies only within 24 hours" in reply.failure_reason
    assert "Send an approved template instead" in reply.failure_reason
    assert fake_twilio.creates() == []


def test_a_scheduled_reply_goes_to_twilio_once_however_often_the_timer_fires(client, tenant, agent, fake_twilio):
    from channels_app.services import scheduled_send

    inbound = customer_writes(client, twilio_inbox(tenant))
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Later",
                       send_at=timezone.now() + timedelta(minutes=5))
    TimelineEntry.objects.filter(pk=reply.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))

    for _ in range(3):
        scheduled_send(tenant_id=tenant.pk, entry_id=reply.pk)
        message_deliver(entry_id=reply.pk)

    assert [c["form"]["Body"] for c in fake_twilio.creates()] == ["Later"]
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"


def test_a_whatsapp_reply_scheduled_after_the_window_closes_is_refused_with_the_alternatives(client, tenant, agent):
    conversation = whatsapp_conversation(client, tenant)
    TimelineEntry.objects.filter(direction="inbound").update(created_at=timezone.now() - timedelta(hours=20))

    with pytest.raises(SendRefused, match="closes at .* before the time you chose. Schedule it earlier, send an approved template, or reply by SMS or e-mail."):
        reply_send(tenant=tenant, conversation=conversation, author=agent, channel="whatsapp", body="Tomorrow!",
                   send_at=timezone.now() + timedelta(hours=5))
    assert not TimelineEntry.objects.filter(direction="outbound").exists()
