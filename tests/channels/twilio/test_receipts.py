"""Persist-first ingest: the message webhook commits a receipt and answers; the worker stores the message."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from channels_app.models import InboundReceipt
from channels_app.receipts import (
    receipt_process,
    receipts_pending,
    receipts_sweep,
)
from conversations.models import TimelineEntry

from .conftest import inbound_form, sign, twilio_inbox

pytestmark = pytest.mark.django_db


def hook(inbox) -> str:
    return f"/hooks/twilio/{inbox.key}/messages/"


def webhook_only(client, inbox, form):
    """The webhook alone, without the worker's part."""
    return client.post(hook(inbox), data=form, HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + hook(inbox), form))


def test_the_webhook_commits_a_receipt_and_the_worker_stores_the_message(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body="Where is my parcel?")
    response = webhook_only(client, inbox, form)
    receipt = InboundReceipt.objects.for_tenant(tenant).get(inbox=inbox, provider_id=form["MessageSid"])
    assert response.status_code == 200
    assert (receipt.processed_at, receipt.message["body"]) == (None, "Where is my parcel?")
    assert not TimelineEntry.objects.filter(tenant=tenant, kind="message").exists()

    result = receipt_process(tenant_id=tenant.pk, receipt_id=receipt.pk)
    receipt.refresh_from_db()
    assert (result.entry.body, result.entry.external_id, result.outcome) == ("Where is my parcel?", form["MessageSid"], "stored")
    assert receipt.processed_at is not None and (receipt.entry_id, receipt.outcome) == (result.entry.pk, "stored")


def test_the_webhook_hands_the_receipt_to_the_ingest_task_after_commit(
    client, tenant, celery_eager, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_only(client, inbox, form).status_code == 200
    assert TimelineEntry.objects.filter(tenant=tenant, external_id=form["MessageSid"]).count() == 1
    assert InboundReceipt.objects.for_tenant(tenant).get().processed_at is not None


def test_a_redelivered_webhook_adds_no_receipt_and_no_task(client, tenant, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    with django_capture_on_commit_callbacks() as first:
        webhook_only(client, inbox, form)
    with django_capture_on_commit_callbacks() as second:
        response = webhook_only(client, inbox, form)
    assert response.status_code == 200
    assert (len(first), len(second)) == (1, 0)
    assert InboundReceipt.objects.for_tenant(tenant).count() == 1


def test_processing_a_receipt_twice_stores_one_message(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    webhook_only(client, inbox, form)
    receipt = InboundReceipt.objects.for_tenant(tenant).get()
    first = receipt_process(tenant_id=tenant.pk, receipt_id=receipt.pk)
    again = receipt_process(tenant_id=tenant.pk, receipt_id=receipt.pk)
    assert (first is not None, again) == (True, None)
    assert TimelineEntry.objects.filter(tenant=tenant, external_id=form["MessageSid"]).count() == 1


def test_another_tenants_id_finds_no_receipt(client, tenant, other_tenant):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form())
    receipt = InboundReceipt.objects.for_tenant(tenant).get()
    assert receipt_process(tenant_id=other_tenant.pk, receipt_id=receipt.pk) is None
    assert InboundReceipt.objects.for_tenant(tenant).get().processed_at is None


def test_a_broker_outage_leaves_the_receipt_to_the_sweeper(client, tenant, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    with mock.patch("channels_app.tasks.pump_inbound_receipts.delay", side_effect=BrokerError("down")):
        with django_capture_on_commit_callbacks(execute=True):
            response = webhook_only(client, inbox, form)
    assert response.status_code == 200
    assert receipts_sweep() == 0  # too fresh: its own task may still come
    InboundReceipt.objects.for_tenant(tenant).update(received_at=timezone.now() - timedelta(minutes=2))
    assert receipts_sweep() == 1
    assert TimelineEntry.objects.filter(tenant=tenant, external_id=form["MessageSid"]).count() == 1
    assert receipts_pending(older_than=timedelta(0)) == []


def test_a_database_outage_answers_503_and_keeps_nothing(client, tenant):
    inbox = twilio_inbox(tenant)
    with mock.patch("channels_app.adapters.twilio_common.views.twilio_receipt_store", side_effect=OperationalError("gone")):
        response = webhook_only(client, inbox, inbound_form())
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert not InboundReceipt.objects.for_tenant(tenant).exists()


def test_a_bad_signature_leaves_no_receipt(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    response = client.post(hook(inbox), data=form, HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + hook(inbox), form, "x"))
    assert response.status_code == 403
    assert not InboundReceipt.objects.exists()


def test_the_timeline_keeps_arrival_order_when_receipts_are_stored_late(client, tenant):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form(Body="first"))
    webhook_only(client, inbox, inbound_form(Body="second"))
    first, second = InboundReceipt.objects.for_tenant(tenant).order_by("pk")
    receipt_process(tenant_id=tenant.pk, receipt_id=second.pk)
    receipt_process(tenant_id=tenant.pk, receipt_id=first.pk)
    bodies = TimelineEntry.objects.filter(tenant=tenant, kind="message").order_by("created_at").values_list("body", flat=True)
    assert list(bodies) == ["first", "second"]


def test_a_receipt_the_timeline_refuses_is_marked_with_the_reason(client, tenant):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form())
    receipt = InboundReceipt.objects.for_tenant(tenant).get()
    receipt.message["sender_value"] = "+1555"
    receipt.save()
    assert receipt_process(tenant_id=tenant.pk, receipt_id=receipt.pk) is None
    receipt.refresh_from_db()
    assert receipt.processed_at is not None and "phone number" in receipt.error
    assert not TimelineEntry.objects.filter(tenant=tenant, kind="message").exists()


def test_nul_characters_are_dropped_before_the_receipt_is_stored(client, tenant):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form(Body="par\x00cel", ProfileName="Ma\x00ria"))
    receipt = InboundReceipt.objects.for_tenant(tenant).get()
    result = receipt_process(tenant_id=tenant.pk, receipt_id=receipt.pk)
    assert (result.entry.body, result.entry.customer.name) == ("parcel", "Maria")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_stores_what_the_webhook_received(client, tenant, celery_worker_live):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body="Is anyone there?")
    assert webhook_only(client, inbox, form).status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not TimelineEntry.objects.filter(external_id=form["MessageSid"]).exists():
        time.sleep(0.1)
    assert TimelineEntry.objects.get(tenant=tenant, external_id=form["MessageSid"]).body == "Is anyone there?"


def test_a_deactivated_inbox_stops_answering_once_the_inbox_cache_expires(client, tenant):
    from channels_app import inbound
    from channels_app.models import Inbox

    inbox = twilio_inbox(tenant)
    assert webhook_only(client, inbox, inbound_form()).status_code == 200
    # Deactivated by another process: this one remembers the inbox for a few seconds.
    Inbox.objects.filter(pk=inbox.pk).update(is_active=False)
    assert webhook_only(client, inbox, inbound_form()).status_code == 200
    looked_up_at, cached = inbound._inbox_cache[inbox.key]
    inbound._inbox_cache[inbox.key] = (looked_up_at - inbound.HOOK_INBOX_CACHE_SECONDS - 1, cached)  # time passes
    assert webhook_only(client, inbox, inbound_form()).status_code == 404


def test_the_process_that_deactivates_an_inbox_forgets_it_at_once(client, tenant):
    inbox = twilio_inbox(tenant)
    assert webhook_only(client, inbox, inbound_form()).status_code == 200
    inbox.is_active = False
    inbox.save()
    assert webhook_only(client, inbox, inbound_form()).status_code == 404


def test_the_sweeper_goes_on_past_a_receipt_it_cannot_store(client, tenant):
    from django.db import ProgrammingError

    from channels_app import receipts

    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form(Body="first"))
    webhook_only(client, inbox, inbound_form(Body="second"))
    first, second = InboundReceipt.objects.for_tenant(tenant).order_by("pk")
    process = receipts.receipt_process

    def failing_first(*, tenant_id, receipt_id):
        if receipt_id == first.pk:
            raise ProgrammingError("column does not exist")
        return process(tenant_id=tenant_id, receipt_id=receipt_id)

    with mock.patch.object(receipts, "receipt_process", side_effect=failing_first):
        assert receipts_sweep(older_than=timedelta(0)) == 1
    assert receipts_pending(older_than=timedelta(0)) == [(tenant.pk, first.pk)]
