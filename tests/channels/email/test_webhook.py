from __future__ import annotations

import pytest
from django.test import Client

from channels_app.models import Channel
from conversations.models import Attachment, Conversation, TimelineEntry
from customers.models import Identity
from tests.channels.email.mails import WEBHOOK_SECRET, mail, post_raw
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db


def test_it_stores_a_message_posted_with_the_right_secret(mail_inbox):
    response = post_raw(mail().as_bytes(), mail_inbox)

    assert response.status_code == 202
    assert response.outcome == "stored"
    entry = TimelineEntry.objects.get(pk=response.entry_id)
    assert entry.body == "My printer is on fire."
    assert entry.external_id == "m1@example.org"
    assert entry.data["subject"] == "Printer on fire"
    assert entry.customer.name == "Jane Doe"
    assert Identity.objects.get(customer=entry.customer).value == "jane@example.org"
    assert entry.conversation.subject == "Printer on fire"


def test_it_keeps_the_original_message_as_an_attachment(mail_inbox):
    raw = mail().as_bytes()

    entry_id = post_raw(raw, mail_inbox).entry_id

    original = Attachment.objects.get(entry_id=entry_id, filename="original.eml")
    assert original.file.read() == raw
    assert TimelineEntry.objects.get(pk=entry_id).data["original_attachment_id"] == original.pk


def test_it_refuses_a_wrong_secret_and_stores_nothing(mail_inbox):
    response = post_raw(mail().as_bytes(), mail_inbox, secret="guess")

    assert response.status_code == 403
    assert response.json()["detail"] == "Wrong X-Omnidesk-Secret."
    assert not TimelineEntry.objects.exists()


def test_it_refuses_a_missing_secret(mail_inbox):
    response = post_raw(mail().as_bytes(), mail_inbox, secret=None)

    assert response.status_code == 403
    assert not TimelineEntry.objects.exists()


def test_it_refuses_everything_when_the_inbox_has_no_secret(tenant):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, address="support@acme.test")

    response = post_raw(mail().as_bytes(), inbox, secret="")

    assert response.status_code == 403
    assert "no webhook secret" in response.json()["detail"]


def test_it_answers_404_for_an_unknown_key(mail_inbox):
    response = post_raw(mail().as_bytes(), InboxFactory.build(key="nope"))

    assert response.status_code == 404


def test_it_answers_404_for_the_key_of_another_channels_inbox(sms_inbox):
    response = post_raw(mail().as_bytes(), sms_inbox)

    assert response.status_code == 404


def test_another_tenants_key_does_not_accept_this_tenants_secret(mail_inbox, other_tenant):
    theirs = InboxFactory(tenant=other_tenant, channel=Channel.EMAIL, address="help@globex.test")
    theirs.set_secrets(webhook_secret="globex-secret")
    theirs.save()

    response = post_raw(mail().as_bytes(), theirs, secret=WEBHOOK_SECRET)

    assert response.status_code == 403
    assert not TimelineEntry.objects.exists()


def test_a_message_lands_only_in_the_tenant_whose_key_was_used(mail_inbox, other_tenant):
    theirs = InboxFactory(tenant=other_tenant, channel=Channel.EMAIL, address="help@globex.test")
    theirs.set_secrets(webhook_secret="globex-secret")
    theirs.save()

    post_raw(mail().as_bytes(), theirs, secret="globex-secret")

    assert list(TimelineEntry.objects.values_list("tenant_id", flat=True)) == [other_tenant.pk]


def test_it_stores_a_redelivered_message_once(mail_inbox):
    raw = mail().as_bytes()

    first = post_raw(raw, mail_inbox)
    second = post_raw(raw, mail_inbox)

    assert second.status_code == 200
    assert second.outcome == "duplicate"
    assert second.entry_id == first.entry_id
    assert TimelineEntry.objects.filter(kind="message").count() == 1
    assert Attachment.objects.count() == 1


def test_a_message_without_message_id_gets_a_stable_one(mail_inbox):
    raw = mail(message_id=None).as_bytes()

    first = post_raw(raw, mail_inbox)
    second = post_raw(raw, mail_inbox)

    assert second.outcome == "duplicate"
    entry = TimelineEntry.objects.get(pk=first.entry_id)
    assert entry.external_id.startswith("generated.")
    assert entry.data["parse_warnings"] == ["The message had no Message-ID; one was derived from its content."]


def test_it_refuses_an_oversized_message_with_413(mail_inbox, monkeypatch):
    monkeypatch.setattr("channels_app.adapters.email.adapter.MAX_MESSAGE_BYTES", 1000)

    response = post_raw(mail(text="x" * 2000).as_bytes(), mail_inbox)

    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not TimelineEntry.objects.exists()


def test_it_accepts_a_message_larger_than_djangos_form_memory_limit(mail_inbox, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post_raw(mail(text="y" * 5000).as_bytes(), mail_inbox)

    assert response.status_code == 202
    assert TimelineEntry.objects.get(kind="message").body == "y" * 5000


def test_it_answers_400_for_an_empty_body(mail_inbox):
    response = post_raw(b"", mail_inbox)

    assert response.status_code == 400
    assert response.json()["detail"] == "Not an e-mail message: The message is empty."


def test_it_answers_400_for_a_message_without_sender(mail_inbox):
    response = post_raw(b"Subject: who am I\r\n\r\nhello\r\n", mail_inbox)

    assert response.status_code == 400
    assert "no From address" in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_it_answers_400_for_an_impossible_sender_address(mail_inbox):
    response = post_raw(mail(sender="Jane <jane@@nowhere>").as_bytes(), mail_inbox)

    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_it_answers_405_to_get(mail_inbox):
    response = Client().get(f"/hooks/email/{mail_inbox.key}/")

    assert response.status_code == 405
    assert response.json() == {"detail": "Use POST with the raw message as the body."}
