"""Persist-first e-mail: the webhook commits a receipt of the raw mail and answers 202; the worker stores it."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError

from channels_app import receipts
from channels_app.models import InboundReceipt
from conversations.models import Attachment, TimelineEntry
from tests.channels.email.mails import mail, post_raw, webhook_only
from tests.fixtures.celery import PUMP_DELAY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pump_mark_cleared")]


def test_the_webhook_commits_the_raw_mail_and_the_worker_stores_it(mail_inbox):
    raw = mail(text="Where is my parcel?").as_bytes()

    response = webhook_only(raw, mail_inbox)

    assert response.status_code == 202
    receipt = InboundReceipt.objects.for_tenant(mail_inbox.tenant).get(pk=response.json()["receipt_id"])
    assert (bytes(receipt.raw), receipt.provider_id, receipt.processed_at) == (raw, "m1@example.org", None)
    assert receipt.message == {"from": "jane@example.org", "subject": "Printer on fire", "message_id": "m1@example.org"}
    assert not TimelineEntry.objects.filter(kind="message").exists()

    done = receipts.receipt_process(tenant_id=mail_inbox.tenant_id, receipt_id=receipt.pk)

    receipt.refresh_from_db()
    assert (done.outcome, done.entry.body, done.entry.external_id) == ("stored", "Where is my parcel?", "m1@example.org")
    assert (receipt.outcome, receipt.entry_id) == ("stored", done.entry.pk)
    assert receipt.detail.startswith("Stored in conversation #")
    # The timeline says when the mail arrived, not when the worker got to it.
    assert done.entry.created_at == receipt.received_at
    assert Attachment.objects.get(entry=done.entry, filename="original.eml").file.read() == raw


def test_the_webhook_enqueues_the_pump_after_commit(mail_inbox, django_capture_on_commit_callbacks):
    with mock.patch(PUMP_DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        assert webhook_only(mail(message_id="<a@x>").as_bytes(), mail_inbox).status_code == 202
        assert webhook_only(mail(message_id="<b@x>").as_bytes(), mail_inbox).status_code == 202
    assert delay.call_count == 1  # one pump for the burst (the mark)

    with mock.patch(PUMP_DELAY):
        assert receipts.receipts_pump() == 2
    assert sorted(TimelineEntry.objects.filter(kind="message").values_list("external_id", flat=True)) == ["a@x", "b@x"]


def test_a_redelivered_mail_is_answered_at_once_and_stores_no_second_receipt(mail_inbox, django_capture_on_commit_callbacks):
    raw = mail().as_bytes()
    webhook_only(raw, mail_inbox)

    with mock.patch(PUMP_DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        again = webhook_only(raw, mail_inbox)

    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert delay.call_count == 0
    assert InboundReceipt.objects.count() == 1


def test_a_message_id_longer_than_the_column_is_kept_as_a_digest(mail_inbox):
    long_id = "<" + "x" * 300 + "@example.org>"

    first = post_raw(mail(message_id=long_id).as_bytes(), mail_inbox)
    second = post_raw(mail(message_id=long_id).as_bytes(), mail_inbox)

    receipt = InboundReceipt.objects.get()
    assert receipt.provider_id.startswith("sha256:") and len(receipt.provider_id) <= 64
    assert (first.outcome, second.outcome, second.entry_id) == ("stored", "duplicate", first.entry_id)
    assert TimelineEntry.objects.get(kind="message").external_id == receipt.message["message_id"]


def test_a_bounce_from_an_unanswerable_address_is_still_accepted(mail_inbox):
    # Senders are checked only for mail that would open a conversation; a bounce never does.
    bounce = mail(sender="Mail Delivery System <MAILER-DAEMON>", subject="Undelivered Mail Returned to Sender",
                  headers={"Auto-Submitted": "auto-replied"})

    response = post_raw(bounce.as_bytes(), mail_inbox)

    assert response.status_code == 202
    assert response.outcome in ("bounce", "ignored")
    assert not TimelineEntry.objects.filter(kind="message").exists()


def test_the_webhook_answers_503_when_the_receipt_cannot_be_committed(mail_inbox):
    with mock.patch("channels_app.adapters.email.services.receipt_store", side_effect=OperationalError("down")):
        response = webhook_only(mail().as_bytes(), mail_inbox)

    assert (response.status_code, response.json()["detail"]) == (503, "Storage is unavailable; retry later.")
    assert not InboundReceipt.objects.exists()


def test_a_receipt_the_worker_cannot_read_is_refused_for_good(mail_inbox):
    # A receipt written by hand or a bug: the worker's parse fails; it is marked refused, never retried.
    response = webhook_only(mail().as_bytes(), mail_inbox)
    InboundReceipt.objects.filter(pk=response.json()["receipt_id"]).update(raw=b"")

    assert receipts.receipts_sweep(older_than=timedelta(0)) == 0

    receipt = InboundReceipt.objects.get()
    assert (receipt.outcome, receipt.processed_at is not None) == ("refused", True)
    assert "Not an e-mail message" in receipt.error
    assert not TimelineEntry.objects.filter(kind="message").exists()
