from __future__ import annotations

import base64

import pytest

from channels_app.adapters.twilio_common.media import MediaTransientError, twilio_media_fetch
from conversations.models import Attachment, TimelineEntry

from .conftest import ACCOUNT_SID, AUTH_TOKEN, customer_writes, inbound_form, post_signed, twilio_inbox

pytestmark = pytest.mark.django_db

MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'d' * 32}/Media/ME{'e' * 32}"
MEDIA_URL = f"https://api.twilio.com{MEDIA_PATH}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def with_media(client, inbox, url: str = MEDIA_URL):
    return customer_writes(client, inbox, NumMedia="1", MediaUrl0=url, MediaContentType0="image/png", Body="")


def test_inbound_media_is_fetched_with_twilio_credentials_and_stored(
    client, tenant, fake_twilio, celery_eager, django_capture_on_commit_callbacks
):
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    inbox = twilio_inbox(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        entry = with_media(client, inbox)
    [attachment] = Attachment.objects.filter(tenant=tenant, entry=entry)
    assert (attachment.content_type, attachment.size, attachment.source_url) == ("image/png", len(PNG), MEDIA_URL)
    assert attachment.filename == f"ME{'e' * 32}.png"
    assert attachment.file.read() == PNG
    [fetch] = [r for r in fake_twilio.requests if r["method"] == "GET"]
    assert fetch["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


def test_fetching_twice_stores_one_attachment(client, tenant, fake_twilio):
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    entry = with_media(client, twilio_inbox(tenant))
    twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    assert Attachment.objects.filter(tenant=tenant, entry=entry).count() == 1
    assert len([r for r in fake_twilio.requests if r["method"] == "GET"]) == 1


def test_a_file_over_the_limit_is_skipped_with_a_note(client, tenant, fake_twilio, settings):
    settings.TWILIO_MEDIA_MAX_BYTES = 50
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    entry = with_media(client, twilio_inbox(tenant))
    twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    assert Attachment.objects.filter(tenant=tenant).count() == 0
    [note] = TimelineEntry.objects.filter(conversation=entry.conversation, kind="note")
    assert "larger than" in note.body


def test_a_twilio_5xx_is_retried_later(client, tenant, fake_twilio):
    fake_twilio.answer(("error", 502))
    entry = with_media(client, twilio_inbox(tenant))
    with pytest.raises(MediaTransientError):
        twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    assert Attachment.objects.filter(tenant=tenant).count() == 0


def test_credentials_are_never_sent_outside_twilio(client, tenant, fake_twilio):
    entry = with_media(client, twilio_inbox(tenant), url="https://evil.example.com/steal")
    twilio_media_fetch(tenant_id=tenant.pk, entry_id=entry.pk, index=0)
    assert fake_twilio.requests == []
    assert Attachment.objects.filter(tenant=tenant).count() == 0


def test_a_media_url_that_is_not_https_is_refused(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(NumMedia="1", MediaUrl0="ftp://x")
    assert post_signed(client, f"/hooks/twilio/{inbox.key}/messages/", form).status_code == 400
