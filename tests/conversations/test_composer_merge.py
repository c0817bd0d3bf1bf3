"""Merging two conversations of one customer from the conversation page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import (
    ConversationError,
    InboundMessage,
    conversation_merge,
    conversation_open,
    message_record_inbound,
    note_add,
)
from customers.models import AuditLog
from customers.services import customer_resolve_identity
from tests.factories import TeamFactory

PHONE = "+12025550143"


def sms(tenant, inbox, body: str, phone: str = PHONE):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=phone, body=body, data={"from": phone})
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


def fresh(conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


@pytest.fixture
def pair(tenant, sms_inbox, agent, teammate):
    """Two open conversations of one customer: the survivor is assigned with an SLA due time."""
    survivor = sms(tenant, sms_inbox, "My order is late").conversation
    merged = conversation_open(tenant=tenant, customer=survivor.customer, channel="email", subject="Order 1234")
    note_add(tenant=tenant, conversation=merged, author=teammate, body="Customer wrote by mail too")
    due = timezone.now() + timedelta(hours=2)
    Conversation.objects.filter(pk=survivor.pk).update(assignee=agent, first_response_due_at=due)
    return fresh(survivor), fresh(merged)


def merge(client, survivor, other_number):
    return client.post(f"/app/conversations/{survivor.number}/merge/", {"other": other_number}, follow=True)


def test_the_merged_conversations_timeline_moves_and_it_is_closed(client, tenant, agent, pair):
    survivor, merged = pair
    client.force_login(agent)

    response = merge(client, survivor, merged.number)

    assert f"#{merged.number} is merged into #{survivor.number}." in response.content.decode()
    assert TimelineEntry.objects.filter(conversation=survivor, kind="note", body="Customer wrote by mail too").exists()
    closed = fresh(merged)
    assert (closed.status, closed.merged_into_id) == (Status.CLOSED, survivor.pk)
    into = closed.entries.get(event="conversation_merged_into")
    assert (into.data["survivor_number"], into.author_id) == (survivor.number, agent.pk)
    event = survivor.entries.get(event="conversation_merged")
    assert (event.data["merged_number"], event.data["entries_moved"]) == (merged.number, 1)


def test_the_survivor_keeps_its_assignment_and_sla(client, tenant, agent, pair):
    survivor, merged = pair
    client.force_login(agent)

    merge(client, survivor, merged.number)

    after = fresh(survivor)
    assert (after.assignee_id, after.first_response_due_at, after.status) == (
        agent.pk, survivor.first_response_due_at, Status.OPEN
    )


def test_the_merge_is_in_the_audit_log(client, tenant, agent, pair):
    survivor, merged = pair
    client.force_login(agent)

    merge(client, survivor, merged.number)

    [entry] = AuditLog.objects.filter(tenant=tenant, action="conversation.merge")
    assert (entry.actor_id, entry.target_id, entry.details["merged_number"]) == (agent.pk, str(survivor.pk), merged.number)


def test_merging_twice_changes_nothing(client, tenant, agent, pair):
    survivor, merged = pair
    client.force_login(agent)
    merge(client, survivor, merged.number)
    counts = (TimelineEntry.objects.count(), AuditLog.objects.count())

    again = conversation_merge(tenant=tenant, survivor=survivor, merged=merged, actor=agent)

    assert again.pk == survivor.pk
    assert (TimelineEntry.objects.count(), AuditLog.objects.count()) == counts


def test_another_customers_conversation_is_refused_with_the_reason(client, tenant, sms_inbox, agent, pair):
    survivor, _ = pair
    stranger = sms(tenant, sms_inbox, "Hello", phone="+12025550199").conversation
    client.force_login(agent)

    response = merge(client, survivor, stranger.number)

    assert f"#{stranger.number} belongs to another customer" in response.content.decode()
    assert "merge the customers first" in response.content.decode()
    assert (fresh(stranger).status, fresh(stranger).merged_into_id) == (Status.OPEN, None)


def test_another_tenants_conversation_is_the_same_as_a_missing_one(client, tenant, other_tenant, agent, pair):
    survivor, _ = pair
    elsewhere_customer, _ = customer_resolve_identity(tenant=other_tenant, kind="phone", value="+442079460000")
    # Numbers are per tenant: #3 exists only over there.
    *_, elsewhere = (conversation_open(tenant=other_tenant, customer=elsewhere_customer, channel="sms") for _ in range(3))
    assert not Conversation.objects.filter(tenant=tenant, number=elsewhere.number).exists()
    client.force_login(agent)

    response = merge(client, survivor, elsewhere.number)

    assert f"There is no conversation #{elsewhere.number} you can open in this workspace." in response.content.decode()
    assert fresh(elsewhere).status == Status.OPEN


def test_a_conversation_of_another_team_cannot_be_merged_by_an_agent(client, tenant, agent, teammate, pair):
    survivor, merged = pair
    Conversation.objects.filter(pk=merged.pk).update(team=TeamFactory(tenant=tenant, name="Billing"), assignee=teammate)
    client.force_login(agent)

    response = merge(client, survivor, merged.number)

    assert f"There is no conversation #{merged.number} you can open" in response.content.decode()
    assert fresh(merged).status == Status.OPEN


def test_merging_into_another_tenants_conversation_is_404(client, tenant, outsider, pair):
    survivor, merged = pair
    client.force_login(outsider)

    response = client.post(f"/app/conversations/{survivor.number}/merge/", {"other": merged.number})

    assert response.status_code == 404
    assert fresh(merged).status == Status.OPEN


def test_a_conversation_cannot_be_merged_into_itself(client, tenant, agent, pair):
    survivor, _ = pair
    client.force_login(agent)

    response = merge(client, survivor, survivor.number)

    assert "A conversation cannot be merged into itself." in response.content.decode()


def test_a_conversation_resolved_long_ago_is_refused(client, tenant, agent, pair):
    survivor, merged = pair
    Conversation.objects.filter(pk=merged.pk).update(status=Status.RESOLVED, resolved_at=timezone.now() - timedelta(days=30))
    client.force_login(agent)

    response = merge(client, survivor, merged.number)

    assert "only active or recently resolved conversations can be merged" in response.content.decode()


def test_a_recently_resolved_conversation_can_be_merged(client, tenant, agent, pair):
    survivor, merged = pair
    Conversation.objects.filter(pk=merged.pk).update(status=Status.RESOLVED, resolved_at=timezone.now() - timedelta(days=1))
    client.force_login(agent)

    merge(client, survivor, merged.number)

    assert fresh(merged).merged_into_id == survivor.pk


def test_a_bad_number_is_a_form_error(client, tenant, agent, pair):
    survivor, _ = pair
    client.force_login(agent)

    response = merge(client, survivor, "not-a-number")

    assert response.status_code == 200
    assert "Enter a whole number." in response.content.decode()


def test_the_page_offers_only_mergeable_conversations_of_the_customer(client, tenant, agent, sms_inbox, pair):
    survivor, merged = pair
    old = conversation_open(tenant=tenant, customer=survivor.customer, channel="sms")
    Conversation.objects.filter(pk=old.pk).update(status=Status.RESOLVED, resolved_at=timezone.now() - timedelta(days=30))
    client.force_login(agent)

    context = client.get(f"/app/conversations/{survivor.number}/").context

    assert [c.number for c in context["merge_candidates"]] == [merged.number]


def test_the_merge_partial_renders_the_candidates(rf, tenant, agent, pair):
    from django.template.loader import render_to_string

    survivor, merged = pair
    request = rf.get("/")
    request.user = agent

    html = render_to_string(
        "conversations/_merge.html", {"conversation": survivor, "merge_candidates": [merged]}, request=request
    )

    assert f'action="/app/conversations/{survivor.number}/merge/"' in html
    assert f'<option value="{merged.number}">#{merged.number}' in html


def test_the_service_refuses_conversations_of_another_tenant(tenant, other_tenant, pair):
    survivor, _ = pair
    customer, _ = customer_resolve_identity(tenant=other_tenant, kind="phone", value="+442079460000")
    elsewhere = conversation_open(tenant=other_tenant, customer=customer, channel="sms")

    with pytest.raises(ConversationError, match="Both conversations must belong to this workspace"):
        conversation_merge(tenant=tenant, survivor=survivor, merged=elsewhere)


@pytest.mark.django_db(transaction=True)
def test_merging_a_pair_both_ways_at_once_merges_it_one_way(tenant, sms_inbox, agent):
    from itertools import cycle

    from tests.conversations.conftest import run_in_threads

    first = sms(tenant, sms_inbox, "My order is late").conversation
    second = conversation_open(tenant=tenant, customer=first.customer, channel="email")
    directions = cycle([(first, second), (second, first)])

    def merge_one_way() -> str:
        survivor, merged = next(directions)
        try:
            conversation_merge(tenant=tenant, survivor=survivor, merged=merged, actor=agent)
        except ConversationError:
            return "refused"
        return "merged"

    results = run_in_threads(merge_one_way, 2)

    assert sorted(results) == ["merged", "refused"]
    pair = Conversation.objects.filter(pk__in=[first.pk, second.pk])
    [closed] = pair.filter(status=Status.CLOSED)
    [survivor] = pair.exclude(status=Status.CLOSED)
    assert closed.merged_into_id == survivor.pk
    assert AuditLog.objects.filter(action="conversation.merge").count() == 1
