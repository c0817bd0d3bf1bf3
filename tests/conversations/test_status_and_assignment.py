"""Status changes, assignment, notes and delivery receipts on a conversation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.models import Conversation, DeliveryStatus, EntryKind, Status, TimelineEntry
from conversations.services import (
    ConversationError,
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    conversation_update,
    message_record_inbound,
    message_record_outbound,
    message_set_delivery_status,
    note_add,
)
from tests.factories import TeamFactory


@pytest.fixture
def conversation(tenant, sms_inbox):
    message = InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="Help")
    return message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).conversation


@pytest.fixture
def reply(tenant, conversation, agent, sms_inbox):
    return message_record_outbound(
        tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, inbox=sms_inbox, body="On it"
    )


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def events_named(conversation: Conversation, event: str) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.filter(conversation=conversation, kind=EntryKind.EVENT, event=event))


def test_it_resolves_with_resolved_at_and_stops_the_waiting_clock(tenant, conversation, agent):
    assert fresh(conversation).waiting_since is not None

    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED, actor=agent)

    resolved = fresh(conversation)
    assert resolved.status == Status.RESOLVED
    assert resolved.resolved_at is not None
    assert resolved.waiting_since is None


def test_it_records_who_changed_the_status(tenant, conversation, agent):
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.PENDING, actor=agent)

    [entry] = events_named(conversation, "status_changed")
    assert (entry.author, entry.data) == (agent, {"from": "open", "to": "pending"})


def test_it_snoozes_until_a_future_time(tenant, conversation, agent):
    wake_at = timezone.now() + timedelta(hours=3)

    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.SNOOZED, actor=agent, snoozed_until=wake_at)

    snoozed = fresh(conversation)
    assert (snoozed.status, snoozed.snoozed_until) == (Status.SNOOZED, wake_at)
    assert events_named(conversation, "status_changed")[0].data["snoozed_until"] == wake_at.isoformat()


def test_it_refuses_to_snooze_without_a_wake_up_time(tenant, conversation, agent):
    with pytest.raises(ConversationError, match="future"):
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.SNOOZED, actor=agent)
    assert fresh(conversation).status == Status.OPEN


def test_it_refuses_to_snooze_until_a_past_time(tenant, conversation, agent):
    with pytest.raises(ConversationError, match="future"):
        conversation_set_status(
            tenant=tenant, conversation=conversation, status=Status.SNOOZED, actor=agent,
            snoozed_until=timezone.now() - timedelta(minutes=1),
        )
    assert fresh(conversation).status == Status.OPEN


def test_it_refuses_an_unknown_status(tenant, conversation, agent):
    with pytest.raises(ConversationError, match="not a status"):
        conversation_set_status(tenant=tenant, conversation=conversation, status="archived", actor=agent)
    assert fresh(conversation).status == Status.OPEN


def test_it_writes_nothing_when_the_status_does_not_change(
    tenant, conversation, agent, django_capture_on_commit_callbacks, captured_events
):
    updated_at = fresh(conversation).updated_at

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.OPEN, actor=agent)

    assert events_named(conversation, "status_changed") == []
    assert callbacks == []
    assert fresh(conversation).updated_at == updated_at


def test_it_assigns_to_a_member_and_records_it_on_the_timeline(tenant, conversation, agent, supervisor):
    team = TeamFactory(tenant=tenant, name="Billing")

    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, team=team, actor=supervisor)

    assigned = fresh(conversation)
    assert (assigned.assignee, assigned.team) == (agent, team)
    [entry] = events_named(conversation, "assigned")
    assert entry.author == supervisor
    assert entry.data == {"from_assignee_id": None, "to_assignee_id": agent.pk, "from_team_id": None, "to_team_id": team.pk}
    assert AnalyticsEvent.objects.get(name=EventName.ASSIGNMENT).agent_id_snapshot == agent.pk


def test_it_reassigns_from_one_agent_to_another(tenant, conversation, agent, teammate, supervisor):
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, actor=supervisor)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate, actor=supervisor)

    assert fresh(conversation).assignee == teammate
    assert events_named(conversation, "assigned")[-1].data["from_assignee_id"] == agent.pk


def test_it_writes_nothing_when_assigning_to_the_current_assignee(tenant, conversation, agent, supervisor):
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, actor=supervisor)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, actor=supervisor)

    assert len(events_named(conversation, "assigned")) == 1
    assert AnalyticsEvent.objects.filter(name=EventName.ASSIGNMENT).count() == 1


def test_it_refuses_an_assignee_from_another_tenant(tenant, conversation, outsider, supervisor):
    with pytest.raises(ConversationError, match="not a member"):
        conversation_assign(tenant=tenant, conversation=conversation, assignee=outsider, actor=supervisor)
    assert fresh(conversation).assignee is None
    assert events_named(conversation, "assigned") == []


def test_it_refuses_a_team_of_another_tenant(tenant, other_tenant, conversation, agent, supervisor):
    foreign_team = TeamFactory(tenant=other_tenant, name="Billing")

    with pytest.raises(ConversationError, match="another tenant"):
        conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, team=foreign_team, actor=supervisor)
    assert (fresh(conversation).assignee, fresh(conversation).team) == (None, None)


def test_it_emits_conversation_assigned_only_after_commit(
    tenant, conversation, agent, supervisor, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, actor=supervisor)
        seen_before_commit = [e.name for e in captured_events]

    assert seen_before_commit == []
    assert [(e.name, e.tenant_id, e.payload) for e in captured_events] == [
        (
            "conversation.assigned",
            tenant.pk,
            {"conversation_id": conversation.pk, "number": conversation.number, "assignee_id": agent.pk, "team_id": None},
        )
    ]


def test_it_adds_an_internal_note(tenant, conversation, agent, django_capture_on_commit_callbacks, captured_events):
    with django_capture_on_commit_callbacks(execute=True):
        note = note_add(tenant=tenant, conversation=conversation, author=agent, body="Customer is a VIP")

    assert (note.kind, note.author, note.body, note.conversation_id) == (
        EntryKind.NOTE, agent, "Customer is a VIP", conversation.pk
    )
    assert note.direction == ""
    assert [(e.name, e.payload["entry_id"]) for e in captured_events] == [("note.created", note.pk)]


def test_it_refuses_an_empty_note(tenant, conversation, agent):
    with pytest.raises(ConversationError):
        note_add(tenant=tenant, conversation=conversation, author=agent, body="   ")
    assert not TimelineEntry.objects.filter(kind=EntryKind.NOTE).exists()


def test_it_stores_an_agent_reply_as_queued(reply):
    assert (reply.delivery_status, reply.direction) == (DeliveryStatus.QUEUED, "outbound")


def test_it_moves_delivery_status_forward_and_records_the_provider_id(tenant, reply):
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.SENT, external_id="SM-out-1")
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.DELIVERED)

    stored = TimelineEntry.objects.get(pk=reply.pk)
    assert (stored.delivery_status, stored.external_id) == (DeliveryStatus.DELIVERED, "SM-out-1")


def test_it_ignores_a_late_sent_after_delivered(tenant, reply):
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.DELIVERED)
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.SENT)

    assert TimelineEntry.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.DELIVERED


def test_it_stores_the_error_code_and_reason_of_a_failure(tenant, reply):
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.SENT)
    message_set_delivery_status(
        tenant=tenant, entry=reply, status=DeliveryStatus.FAILED, error_code="30007", reason="Carrier filtered"
    )

    stored = TimelineEntry.objects.get(pk=reply.pk)
    assert (stored.delivery_status, stored.error_code, stored.failure_reason) == (
        DeliveryStatus.FAILED, "30007", "Carrier filtered"
    )


def test_it_refuses_an_unknown_delivery_status(tenant, reply):
    with pytest.raises(ConversationError):
        message_set_delivery_status(tenant=tenant, entry=reply, status="bounced")
    assert TimelineEntry.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.QUEUED


def test_it_refuses_a_provider_id_already_used_in_the_inbox(tenant, conversation, agent, sms_inbox, reply):
    other_reply = message_record_outbound(
        tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, inbox=sms_inbox, body="More"
    )
    message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.SENT, external_id="SM-out-1")

    with pytest.raises(ConversationError, match="already used"):
        message_set_delivery_status(tenant=tenant, entry=other_reply, status=DeliveryStatus.SENT, external_id="SM-out-1")
    assert TimelineEntry.objects.get(pk=other_reply.pk).external_id is None


def test_it_keeps_the_team_when_only_the_assignee_changes_and_clears_it_when_asked(
    tenant, conversation, agent, teammate, supervisor
):
    support = TeamFactory(tenant=tenant, name="Support")
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, team=support, actor=supervisor)

    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate, actor=supervisor)
    kept = fresh(conversation).team
    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate, team=None, actor=supervisor)

    assert kept == support
    assert fresh(conversation).team is None


def test_it_changes_priority_and_tags_records_both_and_emits_one_update(
    tenant, conversation, agent, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation_update(tenant=tenant, conversation=conversation, actor=agent, priority="urgent", tags=[" Refund", "vip", ""])

    assert (fresh(conversation).priority, fresh(conversation).tags) == ("urgent", ["refund", "vip"])
    [event] = events_named(conversation, "updated")
    assert event.data == {"priority": {"from": "normal", "to": "urgent"}, "tags": {"from": [], "to": ["refund", "vip"]}}
    assert [(e.name, e.payload["changed"]) for e in captured_events if e.name == "conversation.updated"] == [
        ("conversation.updated", ["priority", "tags"])
    ]


def test_it_writes_nothing_when_nothing_changes(tenant, conversation, agent):
    conversation_update(tenant=tenant, conversation=conversation, actor=agent, priority="normal", tags=[])

    assert events_named(conversation, "updated") == []


def test_it_refuses_an_unknown_priority(tenant, conversation, agent):
    with pytest.raises(ConversationError, match="not a priority"):
        conversation_update(tenant=tenant, conversation=conversation, actor=agent, priority="meh")


def test_a_note_mentioning_teammates_records_them_and_tells_them(
    tenant, conversation, agent, teammate, supervisor, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        note = note_add(
            tenant=tenant, conversation=conversation, author=agent,
            body="@teammate can you check? cc @Supervisor. Not me: @agent, nobody: @ghost, mail: x@teammate",
        )

    assert note.data == {"mentions": sorted([teammate.pk, supervisor.pk])}
    assert [e.payload["notify_user_ids"] for e in captured_events if e.name == "mention.created"] == [
        sorted([teammate.pk, supervisor.pk])
    ]
