"""The bench's SMS, e-mail and API senders speak the webhooks' real contract, and its table marks losses as misses.

bench/twilio_ingest.py and bench/channel_ingest.py build requests by hand (standard library only); if a
webhook's signature or payload rules change, these fail here instead of the benchmark quietly measuring 403s.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from channels_app.models import Channel, InboundReceipt
from channels_app.receipts import receipts_sweep
from conversations.models import TimelineEntry
from customers.models import Identity
from tests.factories import InboxFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import channel_ingest  # noqa: E402
import run_all  # noqa: E402
import twilio_ingest  # noqa: E402


def post(client, path: str, body: bytes, headers: dict[str, str]):
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items() if name != "Content-Type"}
    return client.post(path, data=body, content_type=headers["Content-Type"], **extra)


@pytest.mark.django_db
def test_the_email_sender_posts_a_mail_the_webhook_stores(client, tenant):
    inbox = InboxFactory.build(tenant=tenant, channel=Channel.EMAIL, name="Mail", address="support@acme.test")
    inbox.set_secrets(webhook_secret="bench-secret")
    inbox.save()

    response = post(client, *channel_ingest.email_request("r1", 3, inbox.key, "bench-secret", inbox.address))
    receipts_sweep(older_than=timedelta(0))  # the worker's part

    assert response.status_code == 202, response.content
    entry = TimelineEntry.objects.for_tenant(tenant).get(channel=Channel.EMAIL)
    assert entry.body.startswith("bench r1 #3")


@pytest.mark.django_db
def test_the_api_sender_signs_a_message_the_webhook_stores(client, tenant):
    inbox = InboxFactory.build(tenant=tenant, channel=Channel.API, name="Bridge")
    inbox.set_secrets(secret="bench-secret")
    inbox.save()

    response = post(client, *channel_ingest.api_request("r2", 5, inbox.key, "bench-secret", ""))

    assert response.status_code == 201, response.content
    assert TimelineEntry.objects.for_tenant(tenant).get(channel=Channel.API).body == "bench r2 #5"


@pytest.mark.django_db
def test_the_sms_sender_signs_a_webhook_the_server_accepts(client, tenant):
    inbox = InboxFactory.build(tenant=tenant, channel=Channel.SMS, name="SMS", address="+15005550006",
                               settings={"account_sid": "AC1"})
    inbox.set_secrets(twilio_auth_token="bench-token")
    inbox.save()

    request = twilio_ingest.sms_request("r3", 7, inbox.key, "bench-token", inbox.address, "AC1", "http://testserver")
    response = post(client, *request)

    assert response.status_code == 200, response.content
    assert InboundReceipt.objects.for_tenant(tenant).get().message["body"] == "bench r3 #7"


@pytest.mark.django_db
def test_the_sms_sender_with_as_many_senders_as_messages_makes_each_a_new_customer(client, tenant):
    inbox = InboxFactory.build(tenant=tenant, channel=Channel.SMS, name="SMS", address="+15005550006")
    inbox.set_secrets(twilio_auth_token="bench-token")
    inbox.save()

    for index in range(3):
        post(client, *twilio_ingest.sms_request("r4", index, inbox.key, "bench-token", inbox.address, "",
                                                "http://testserver", senders=3000))
    receipts_sweep(older_than=timedelta(0))

    entries = TimelineEntry.objects.for_tenant(tenant).filter(body__startswith="bench r4")
    assert len({entry.customer_id for entry in entries}) == 3
    assert sorted(Identity.objects.for_tenant(tenant).values_list("value", flat=True)) == [
        "+12022000000", "+12022000001", "+12022000002"]
    assert twilio_ingest.sender_number(3000, 3000) == twilio_ingest.sender_number(0, 3000) == "+12022000000"


def ingest_run(**changes) -> dict:
    run = {"channel": "sms", "target_rate": 100.0, "requests_per_second": 100.0, "p50_ms": 8.0, "p95_ms": 20.0,
           "p99_ms": 40.0, "errors": 0, "sent": 3000, "stored": 3000, "stored_distinct": 3000, "drained_seconds": 9.0}
    return {**run, **changes}


def test_a_run_that_kept_every_message_meets_the_target():
    rows: list[run_all.Row] = []
    run_all.ingest_rows([ingest_run()], None, rows)
    assert [row.met for row in rows] == [True, True]


def test_a_lost_message_is_a_miss_even_when_fast():
    rows: list[run_all.Row] = []
    run_all.ingest_rows([ingest_run(stored=2999, stored_distinct=2999)], None, rows)
    assert [row.met for row in rows] == [True, False]


def test_a_fast_p95_at_a_rate_the_server_could_not_keep_is_a_miss():
    rows: list[run_all.Row] = []
    run_all.ingest_rows([ingest_run(requests_per_second=60.0)], None, rows)
    assert rows[0].met is False
