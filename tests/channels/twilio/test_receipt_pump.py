"""The receipt pump: one task stores every pending receipt; webhooks enqueue one only when none waits to start."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import ProgrammingError, connection
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError as BrokerError

from channels_app import receipts
from channels_app.models import InboundReceipt
from channels_app.receipts import receipts_pump, receipts_pump_enqueue
from conversations.models import TimelineEntry
from tests.fixtures.celery import PUMP_DELAY
from tests.fixtures.plans import executed_plan, rows_read

from .conftest import inbound_form, twilio_inbox
from .test_receipts import webhook_only

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pump_mark_cleared")]


def test_a_burst_of_webhooks_enqueues_one_pump_which_stores_them_all_in_order(
    client, tenant, other_tenant, django_capture_on_commit_callbacks
):
    mine, theirs = twilio_inbox(tenant), twilio_inbox(other_tenant)
    with mock.patch(PUMP_DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            assert webhook_only(client, mine if n % 2 else theirs, inbound_form(Body=f"#{n}")).status_code == 200
    assert delay.call_count == 1

    with mock.patch(PUMP_DELAY):
        assert receipts_pump() == 5

    assert not InboundReceipt.objects.filter(processed_at__isnull=True).exists()
    stored = TimelineEntry.objects.filter(kind="message").order_by("created_at")
    assert [(e.tenant_id, e.body) for e in stored] == [
        (other_tenant.pk, "#0"), (tenant.pk, "#1"), (other_tenant.pk, "#2"), (tenant.pk, "#3"), (other_tenant.pk, "#4")
    ]


def test_a_started_pump_lets_the_next_receipt_enqueue_another(client, tenant):
    with mock.patch(PUMP_DELAY) as delay:
        receipts_pump_enqueue()
        receipts_pump_enqueue()
        assert delay.call_count == 1
        assert receipts_pump() == 0  # starts: the mark is cleared
        receipts_pump_enqueue()
        assert delay.call_count == 2


def test_while_receipts_are_pending_a_pump_keeps_a_helper_queued(client, tenant, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    for n in range(3):
        webhook_only(client, inbox, inbound_form(Body=f"#{n}"))
    receipts._pump_mark_clear()
    with mock.patch(PUMP_DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        assert receipts_pump() == 3
    assert delay.call_count == 1  # one helper for a second worker process; the mark held back the rest


def test_a_broker_outage_clears_the_mark_so_the_next_webhook_tries_again(client, tenant):
    with mock.patch(PUMP_DELAY, side_effect=BrokerError("down")) as delay:
        receipts_pump_enqueue()
        receipts_pump_enqueue()
    assert delay.call_count == 2


def test_a_pump_stops_at_its_limit_and_hands_over(client, tenant):
    inbox = twilio_inbox(tenant)
    for n in range(3):
        webhook_only(client, inbox, inbound_form(Body=f"#{n}"))
    with mock.patch(PUMP_DELAY):
        assert receipts_pump(limit=2) == 2
        assert InboundReceipt.objects.filter(processed_at__isnull=True).count() == 1
        receipts._pump_mark_clear()
        with mock.patch(PUMP_DELAY) as delay:
            receipts_pump(limit=0)
        assert delay.call_count == 1


def test_a_receipt_that_cannot_be_stored_is_left_pending_and_the_pump_goes_on(client, tenant):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form(Body="first"))
    webhook_only(client, inbox, inbound_form(Body="second"))
    first, second = InboundReceipt.objects.for_tenant(tenant).order_by("pk")
    store = receipts._store_locked

    def failing_first(receipt):
        if receipt.pk == first.pk:
            raise ProgrammingError("column does not exist")
        return store(receipt)

    with mock.patch.object(receipts, "_store_locked", side_effect=failing_first), mock.patch(PUMP_DELAY):
        assert receipts_pump() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.processed_at is None and second.processed_at is not None


def test_a_receipt_that_cannot_be_stored_starts_no_helper(client, tenant, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    webhook_only(client, inbox, inbound_form(Body="poison"))
    receipts._pump_mark_clear()

    with mock.patch.object(receipts, "_store_locked", side_effect=ProgrammingError("column does not exist")), \
            mock.patch(PUMP_DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        assert receipts_pump() == 1
    assert delay.call_count == 0, "each helper would fail on it too and enqueue the next, for ever"


def test_taking_the_next_receipt_reads_one_entry_not_the_whole_backlog(tenant):
    """Regression: the pending index lacked the id the pump orders by, so each pick sorted every pending
    receipt (6.5 ms a receipt with 1,500 waiting: a backlog took quadratic time to drain)."""
    inbox = twilio_inbox(tenant)
    for n in range(60):
        receipts.receipt_store(inbox=inbox, provider_id=f"SM{n:032d}", message={"body": str(n)})
    with CaptureQueriesContext(connection) as queries:
        first = receipts._pending_locked().order_by("received_at", "pk").first()
    assert first.provider_id == f"SM{0:032d}"
    assert rows_read(executed_plan(queries.captured_queries[0]["sql"]), "channels_app_inboundreceipt") <= 2
