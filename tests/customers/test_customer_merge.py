from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import InboundMessage, conversation_set_status, message_record_inbound
from customers.models import AuditLog, Customer, Identity, IdentityKind, Tier
from customers.services import MergeError, customer_merge, customer_resolve_identity
from tests.factories import CustomerFactory, IdentityFactory


def sms_from(number: str, body: str = "Hello", **kwargs) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender_kind=IdentityKind.PHONE, sender_value=number, body=body, **kwargs)


def email_from(address: str, body: str = "Hello", **kwargs) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL, sender_kind=IdentityKind.EMAIL, sender_value=address, body=body, **kwargs
    )


def test_it_moves_identities_to_the_survivor(tenant):
    survivor = IdentityFactory(customer__tenant=tenant, kind="email", value="jane@example.com").customer
    merged = IdentityFactory(customer__tenant=tenant, kind="phone", value="+12025550143").customer

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert sorted(survivor.identities.values_list("value", flat=True)) == ["+12025550143", "jane@example.com"]
    assert merged.identities.count() == 0


def test_it_moves_conversations_and_timeline_entries_to_the_survivor(tenant, sms_inbox, email_inbox):
    by_mail = message_record_inbound(tenant=tenant, inbox=email_inbox, message=email_from("jane@example.com"))
    by_sms = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms_from("(202) 555-0143"))
    survivor, merged = by_mail.entry.customer, by_sms.entry.customer

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert set(Conversation.objects.filter(customer=survivor)) == {by_mail.conversation, by_sms.conversation}
    assert not Conversation.objects.filter(customer=merged).exists()
    assert not TimelineEntry.objects.filter(customer=merged).exists()
    assert TimelineEntry.objects.get(pk=by_sms.entry.pk).customer == survivor


def test_it_points_the_merged_customer_at_the_survivor(tenant):
    survivor = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=tenant)

    result = customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    merged.refresh_from_db()
    assert result == survivor
    assert merged.merged_into == survivor
    assert Customer.objects.filter(pk=merged.pk).exists()


def test_it_records_a_merge_event_on_the_survivors_timeline(tenant, agent, sms_inbox):
    survivor = CustomerFactory(tenant=tenant, name="Jane")
    moved = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms_from("(202) 555-0143"))
    merged = moved.entry.customer

    customer_merge(tenant=tenant, survivor=survivor, merged=merged, actor=agent)

    event = TimelineEntry.objects.get(event="customer_merged")
    assert (event.tenant, event.customer, event.conversation, event.author) == (tenant, survivor, None, agent)
    assert event.data == {
        "survivor_id": survivor.pk,
        "merged_customer_id": merged.pk,
        "merged_customer_name": merged.name,
        "identities_moved": ["phone:+12025550143"],
        "conversations_moved": [moved.conversation.pk],
    }


def test_it_writes_an_audit_log_row(tenant, supervisor):
    survivor = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=tenant)

    customer_merge(tenant=tenant, survivor=survivor, merged=merged, actor=supervisor)

    row = AuditLog.objects.get()
    assert (row.tenant, row.actor, row.action) == (tenant, supervisor, "customer.merge")
    assert (row.target_type, row.target_id) == ("customers.customer", str(survivor.pk))
    assert row.details["merged_customer_id"] == merged.pk


def test_it_fills_the_survivors_gaps_from_the_merged_customer(tenant):
    survivor = CustomerFactory(tenant=tenant, name="", language="", time_zone="")
    merged = CustomerFactory(tenant=tenant, name="Jane Doe", language="de", time_zone="Europe/Berlin")

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    assert (survivor.name, survivor.language, survivor.time_zone) == ("Jane Doe", "de", "Europe/Berlin")


def test_it_keeps_what_the_survivor_already_has(tenant):
    survivor = CustomerFactory(tenant=tenant, name="Jane", language="en", time_zone="America/New_York")
    merged = CustomerFactory(tenant=tenant, name="J. Doe", language="de", time_zone="Europe/Berlin")

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    assert (survivor.name, survivor.language, survivor.time_zone) == ("Jane", "en", "America/New_York")


def test_it_combines_attributes_with_the_survivors_values_winning(tenant):
    survivor = CustomerFactory(tenant=tenant, attributes={"plan": "pro", "city": "Boston"})
    merged = CustomerFactory(tenant=tenant, attributes={"plan": "free", "order": "A-17"})

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    assert survivor.attributes == {"plan": "pro", "city": "Boston", "order": "A-17"}


def test_a_vip_merged_customer_makes_the_survivor_vip(tenant):
    survivor = CustomerFactory(tenant=tenant, tier=Tier.STANDARD)
    merged = CustomerFactory(tenant=tenant, tier=Tier.VIP)

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    assert survivor.tier == Tier.VIP


def test_a_vip_survivor_stays_vip(tenant):
    survivor = CustomerFactory(tenant=tenant, tier=Tier.VIP)
    merged = CustomerFactory(tenant=tenant, tier=Tier.STANDARD)

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    survivor.refresh_from_db()
    assert survivor.tier == Tier.VIP


def test_merging_the_same_pair_twice_changes_nothing_more(tenant, captured_events, django_capture_on_commit_callbacks):
    survivor = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=tenant)
    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    with django_capture_on_commit_callbacks(execute=True):
        result = customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert result == survivor
    assert AuditLog.objects.filter(action="customer.merge").count() == 1
    assert TimelineEntry.objects.filter(event="customer_merged").count() == 1
    assert captured_events == []


def test_merging_a_customer_into_itself_is_refused(tenant):
    customer = CustomerFactory(tenant=tenant)

    with pytest.raises(MergeError, match="cannot be merged into itself"):
        customer_merge(tenant=tenant, survivor=customer, merged=customer)

    assert AuditLog.objects.count() == 0


def test_merging_customers_of_different_tenants_is_refused(tenant, other_tenant):
    survivor = CustomerFactory(tenant=tenant)
    merged = IdentityFactory(customer__tenant=other_tenant, value="jane@example.com").customer

    with pytest.raises(MergeError, match="must belong to this tenant"):
        customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    merged.refresh_from_db()
    assert merged.merged_into is None
    assert merged.identities.count() == 1
    assert AuditLog.objects.count() == 0


def test_merging_two_customers_of_another_tenant_is_refused(tenant, other_tenant):
    survivor = CustomerFactory(tenant=other_tenant)
    merged = CustomerFactory(tenant=other_tenant)

    with pytest.raises(MergeError):
        customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    merged.refresh_from_db()
    assert merged.merged_into is None


def test_merging_an_already_merged_customer_into_a_third_is_refused(tenant):
    first = CustomerFactory(tenant=tenant)
    third = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=tenant)
    customer_merge(tenant=tenant, survivor=first, merged=merged)

    with pytest.raises(MergeError, match=f"already merged into customer #{first.pk}"):
        customer_merge(tenant=tenant, survivor=third, merged=merged)


def test_merging_into_a_merged_away_customer_is_refused(tenant):
    final = CustomerFactory(tenant=tenant)
    gone = CustomerFactory(tenant=tenant)
    customer_merge(tenant=tenant, survivor=final, merged=gone)

    with pytest.raises(MergeError, match="merge into that one"):
        customer_merge(tenant=tenant, survivor=gone, merged=CustomerFactory(tenant=tenant))


def test_a_new_message_from_the_merged_address_joins_the_survivors_open_conversation(
    tenant, sms_inbox, email_inbox
):
    opened = message_record_inbound(tenant=tenant, inbox=email_inbox, message=email_from("jane@example.com"))
    survivor = opened.entry.customer
    merged, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143")
    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    result = message_record_inbound(
        tenant=tenant, inbox=sms_inbox, message=sms_from("(202) 555-0143", body="It's me again", external_id="SM2")
    )

    assert result.entry.customer == survivor
    assert result.conversation == opened.conversation
    assert result.continuity == "joined"
    assert Customer.objects.for_tenant(tenant).count() == 2
    assert Conversation.objects.for_tenant(tenant).count() == 1


def test_a_new_message_after_merge_reopens_nothing_of_the_merged_customer(tenant, agent, sms_inbox, email_inbox):
    old = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms_from("+12025550143", external_id="SM1"))
    conversation_set_status(tenant=tenant, conversation=old.conversation, status=Status.CLOSED, actor=agent)
    opened = message_record_inbound(tenant=tenant, inbox=email_inbox, message=email_from("jane@example.com"))
    customer_merge(tenant=tenant, survivor=opened.entry.customer, merged=old.entry.customer)

    result = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms_from("+12025550143", external_id="SM2"))

    assert result.conversation == opened.conversation
    assert Conversation.objects.get(pk=old.conversation.pk).status == Status.CLOSED


def test_it_emits_customer_merged_after_commit(tenant, captured_events, django_capture_on_commit_callbacks):
    survivor = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=tenant)

    with django_capture_on_commit_callbacks(execute=True):
        customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert [(e.name, e.tenant_id, e.payload) for e in captured_events] == [
        ("customer.merged", tenant.pk, {"customer_id": survivor.pk, "merged_customer_id": merged.pk})
    ]


def test_a_refused_merge_emits_nothing(tenant, other_tenant, captured_events, django_capture_on_commit_callbacks):
    survivor = CustomerFactory(tenant=tenant)
    merged = CustomerFactory(tenant=other_tenant)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(MergeError):
        customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert captured_events == []


def test_identity_rows_keep_their_tenant_after_merge(tenant):
    survivor = CustomerFactory(tenant=tenant)
    merged = IdentityFactory(customer__tenant=tenant, value="jane@example.com").customer

    customer_merge(tenant=tenant, survivor=survivor, merged=merged)

    assert Identity.objects.get(value="jane@example.com").tenant == tenant
