"""A provider re-delivering a webhook must not store the message twice."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from channels_app.models import Channel
from conversations.models import Conversation, EntryKind, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.identities import InvalidIdentity
from customers.models import Customer, Identity, TenantCounter
from tests.conversations.conftest import run_in_threads
from tests.factories import CustomerFactory, InboxFactory


def sms(external_id: str | None = "SM100", sender: str = "+12025550143", body: str = "Hi") -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value=sender, body=body, external_id=external_id)


def stored_counts(tenant) -> tuple[int, int, int, int]:
    return (
        Customer.objects.for_tenant(tenant).count(),
        Identity.objects.for_tenant(tenant).count(),
        Conversation.objects.for_tenant(tenant).count(),
        TimelineEntry.objects.for_tenant(tenant).filter(kind=EntryKind.MESSAGE).count(),
    )


def test_it_stores_a_redelivered_message_once(tenant, sms_inbox):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    counts = stored_counts(tenant)

    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    assert (first.created, second.created) == (True, False)
    assert second.continuity == "duplicate"
    assert second.entry.pk == first.entry.pk
    assert second.conversation.pk == first.conversation.pk
    assert stored_counts(tenant) == counts == (1, 1, 1, 1)


def test_it_emits_message_created_once_for_a_redelivered_message(
    tenant, sms_inbox, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    assert callbacks == []
    assert [e.name for e in captured_events].count("message.created") == 1


def test_it_keeps_the_first_body_when_a_redelivery_differs(tenant, sms_inbox):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(body="Hi"))
    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(body="Hi (resent)"))
    assert second.entry.pk == first.entry.pk
    assert TimelineEntry.objects.get(pk=first.entry.pk).body == "Hi"


def test_it_stores_the_same_external_id_in_another_inbox_as_another_message(tenant, sms_inbox):
    second_number = InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS 2", address="+15550100001")

    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    second = message_record_inbound(tenant=tenant, inbox=second_number, message=sms())

    assert (first.created, second.created) == (True, True)
    assert second.entry.pk != first.entry.pk
    assert second.continuity == "joined"
    assert stored_counts(tenant) == (1, 1, 1, 2)


def test_it_stores_messages_without_an_external_id_every_time(tenant, sms_inbox):
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(external_id=None))
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(external_id=None))
    assert stored_counts(tenant) == (1, 1, 1, 2)


@pytest.mark.django_db(transaction=True)
def test_it_stores_concurrent_redeliveries_for_a_new_customer_once(tenant, sms_inbox):
    results = run_in_threads(
        lambda: message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(external_id="SM-race")), 8
    )

    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert {r.entry.pk for r in results} == {TimelineEntry.objects.get(external_id="SM-race").pk}
    assert stored_counts(tenant) == (1, 1, 1, 1)


def test_it_raises_invalid_identity_and_stores_nothing_for_an_impossible_sender(tenant, sms_inbox):
    with pytest.raises(InvalidIdentity):
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms(sender="not a number"))

    assert stored_counts(tenant) == (0, 0, 0, 0)
    assert not TenantCounter.objects.for_tenant(tenant).exists()


def test_the_database_rejects_a_duplicate_external_id_in_one_inbox(tenant, sms_inbox):
    customer = CustomerFactory(tenant=tenant)
    TimelineEntry.objects.create(
        tenant=tenant, customer=customer, kind=EntryKind.MESSAGE, inbox=sms_inbox, external_id="SM1"
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        TimelineEntry.objects.create(
            tenant=tenant, customer=customer, kind=EntryKind.MESSAGE, inbox=sms_inbox, external_id="SM1"
        )


def test_the_database_rejects_a_duplicate_external_id_without_an_inbox(tenant):
    customer = CustomerFactory(tenant=tenant)
    TimelineEntry.objects.create(tenant=tenant, customer=customer, kind=EntryKind.MESSAGE, external_id="import-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        TimelineEntry.objects.create(tenant=tenant, customer=customer, kind=EntryKind.MESSAGE, external_id="import-1")


def test_it_stores_a_message_with_nul_characters_without_them(tenant, sms_inbox):
    message = InboundMessage(
        channel="sms", sender_kind="phone", sender_value="+12025550143", body="hel\x00lo", external_id="SM\x00NUL",
        sender_name="Ja\x00ne", data={"raw\x00key": ["a\x00b"]},
    )

    entry = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).entry

    entry.refresh_from_db()
    assert (entry.body, entry.external_id, entry.data) == ("hello", "SMNUL", {"rawkey": ["ab"]})
    assert entry.customer.name == "Jane"
