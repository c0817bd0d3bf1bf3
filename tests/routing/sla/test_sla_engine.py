from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.models import Priority, Status, TimelineEntry
from conversations.services import conversation_open, conversation_set_status, message_record_outbound
from customers.models import Tier
from routing.models import (
    BusinessCalendar,
    CalendarInterval,
    ConversationSla,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
)
from routing.sla import sla_apply, sla_policy_match, sla_sweep, sla_timer_check
from tests.factories import CustomerFactory, InboxFactory, TeamFactory

MINUTE = 60


def make_policy(tenant, name="Default", position=100, targets=None, business_hours=False, **fields):
    policy = SlaPolicy.objects.create(tenant=tenant, name=name, position=position, **fields)
    for (priority, metric), seconds in (targets or {}).items():
        SlaTarget.objects.create(
            tenant=tenant, policy=policy, priority=priority, metric=metric, seconds=seconds, business_hours=business_hours
        )
    return policy


def open_conversation(tenant, at=None, channel=Channel.SMS, priority=Priority.NORMAL, tier=Tier.STANDARD, inbox=None):
    customer = CustomerFactory(tenant=tenant, tier=tier)
    return conversation_open(tenant=tenant, customer=customer, channel=channel, inbox=inbox, priority=priority, at=at)


def sla_of(conversation) -> ConversationSla:
    return ConversationSla.objects.for_tenant(conversation.tenant).get(conversation=conversation)


def test_the_first_active_matching_policy_by_position_wins(tenant):
    vip_inbox = InboxFactory(tenant=tenant, channel=Channel.SMS)
    make_policy(tenant, "Inactive", position=1, is_active=False)
    make_policy(tenant, "Chat only", position=2, channels=[Channel.CHAT])
    make_policy(tenant, "Urgent only", position=3, priorities=[Priority.URGENT])
    vip = make_policy(tenant, "VIP on the VIP line", position=4, tiers=[Tier.VIP])
    vip.inboxes.add(vip_inbox)
    fallback = make_policy(tenant, "Everything else", position=5)
    assert sla_policy_match(conversation=open_conversation(tenant, tier=Tier.VIP, inbox=vip_inbox)) == vip
    assert sla_policy_match(conversation=open_conversation(tenant, tier=Tier.VIP)) == fallback
    assert sla_policy_match(conversation=open_conversation(tenant, priority=Priority.URGENT)).name == "Urgent only"
    assert sla_policy_match(conversation=open_conversation(tenant, channel=Channel.CHAT)).name == "Chat only"


def test_due_times_come_from_the_targets_of_the_conversation_priority(tenant):
    make_policy(tenant, targets={
        (Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE,
        (Priority.NORMAL, SlaMetric.RESOLUTION): 120 * MINUTE,
        (Priority.HIGH, SlaMetric.FIRST_RESPONSE): 5 * MINUTE,
    })
    conversation = open_conversation(tenant)
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.first_response_due_at == conversation.created_at + timedelta(minutes=10)
    assert conversation.resolution_due_at == conversation.created_at + timedelta(minutes=120)
    assert conversation.next_response_due_at is None
    conversation.priority = Priority.HIGH
    conversation.save(update_fields=["priority"])
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.first_response_due_at == conversation.created_at + timedelta(minutes=5)
    assert conversation.resolution_due_at is None


def test_business_hour_targets_count_only_the_policy_calendar(tenant):
    calendar = BusinessCalendar.objects.create(tenant=tenant, name="NY", time_zone="America/New_York")
    for weekday in range(5):
        CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=weekday, start=time(9), end=time(17))
    make_policy(tenant, calendar=calendar, business_hours=True, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 7200})
    make_policy(tenant, "Wall clock", position=200)
    friday_afternoon = datetime(2025, 3, 7, 21, 0, tzinfo=UTC)  # 16:00 in New York
    conversation = open_conversation(tenant, at=friday_afternoon)
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.first_response_due_at == datetime(2025, 3, 10, 14, 0, tzinfo=UTC)


def test_the_next_response_clock_starts_at_the_oldest_unanswered_customer_message(tenant, agent):
    make_policy(tenant, targets={
        (Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE,
        (Priority.NORMAL, SlaMetric.NEXT_RESPONSE): 30 * MINUTE,
    })
    conversation = open_conversation(tenant)
    message_record_outbound(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Hi")
    conversation.refresh_from_db()
    waiting_since = timezone.now() - timedelta(minutes=3)
    conversation.waiting_since = waiting_since
    conversation.save(update_fields=["waiting_since"])
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.first_response_due_at is None
    assert conversation.next_response_due_at == waiting_since + timedelta(minutes=30)


def test_pending_stops_the_clock_and_open_resumes_it_later_by_the_paused_time(tenant):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.RESOLUTION): 60 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=30))
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    first_due = conversation.resolution_due_at
    conversation = conversation_set_status(tenant=tenant, conversation=conversation, status=Status.PENDING)
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.resolution_due_at is None
    ConversationSla.objects.for_tenant(tenant).filter(conversation=conversation).update(
        paused_at=timezone.now() - timedelta(minutes=20)
    )
    conversation = conversation_set_status(tenant=tenant, conversation=conversation, status=Status.OPEN)
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert abs((conversation.resolution_due_at - first_due).total_seconds() - 20 * MINUTE) < 5
    assert sla_of(conversation).paused_seconds >= 20 * MINUTE


def test_a_snoozed_conversation_fires_no_timer(tenant):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=30))
    conversation = conversation_set_status(
        tenant=tenant, conversation=conversation, status=Status.SNOOZED, snoozed_until=timezone.now() + timedelta(hours=1)
    )
    sla_apply(conversation=conversation)
    assert sla_sweep()["fired"] == 0
    assert not TimelineEntry.objects.for_tenant(tenant).filter(event="sla_breached").exists()


def test_a_reply_in_time_records_the_first_response_as_met_with_both_durations(tenant, agent):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=4))
    sla_apply(conversation=conversation)
    message_record_outbound(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Hello")
    conversation.refresh_from_db()
    sla_apply(conversation=conversation)
    met = AnalyticsEvent.objects.for_tenant(tenant).get(name=EventName.SLA_MET)
    assert met.data["metric"] == SlaMetric.FIRST_RESPONSE
    assert 4 * MINUTE <= met.value_seconds < 5 * MINUTE
    assert 4 * MINUTE <= met.data["business_seconds"] < 5 * MINUTE
    assert conversation.first_response_due_at is None


def test_a_late_reply_records_the_first_response_as_missed(tenant, agent):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=25))
    sla_apply(conversation=conversation)
    message_record_outbound(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Sorry")
    conversation.refresh_from_db()
    sla_apply(conversation=conversation)
    sla_apply(conversation=conversation)
    missed = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.SLA_MISSED)
    assert [event.data["metric"] for event in missed] == [SlaMetric.FIRST_RESPONSE]
    assert 25 * MINUTE <= missed[0].value_seconds < 26 * MINUTE


def test_resolving_in_time_meets_the_resolution_target(tenant):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.RESOLUTION): 60 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=30))
    sla_apply(conversation=conversation)
    conversation = conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    sla_apply(conversation=conversation)
    met = AnalyticsEvent.objects.for_tenant(tenant).get(name=EventName.SLA_MET)
    assert met.data["metric"] == SlaMetric.RESOLUTION
    assert due_times(conversation) == (None, None, None)


def due_times(conversation):
    conversation.refresh_from_db()
    return conversation.first_response_due_at, conversation.next_response_due_at, conversation.resolution_due_at


def test_the_sweeper_fires_a_lost_at_risk_timer_without_breaching_early(tenant):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 40 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=35))
    sla_apply(conversation=conversation)  # its ETA task is never sent: on_commit does not run here
    assert sla_sweep()["fired"] == 1
    events = list(TimelineEntry.objects.for_tenant(tenant).filter(conversation=conversation, event__startswith="sla_"))
    assert [(e.event, e.data["metric"]) for e in events] == [("sla_at_risk", SlaMetric.FIRST_RESPONSE)]


def test_a_breach_escalates_once_raising_priority_reassigning_and_mailing(
    tenant, agent, supervisor, mailoutbox, captured_events, django_capture_on_commit_callbacks
):
    escalation = TeamFactory(tenant=tenant, name="Escalations")
    support = TeamFactory(tenant=tenant, name="Support")
    support.members.add(supervisor.membership, agent.membership)
    make_policy(
        tenant, escalate_raise_priority=True, escalate_to_team=escalation, escalate_notify_emails=["boss@acme.test"],
        targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE},
    )
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=15))
    conversation.assignee, conversation.team = agent, support
    conversation.save(update_fields=["assignee", "team"])
    sla_apply(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):
        sla_sweep()
    with django_capture_on_commit_callbacks(execute=True):
        sla_sweep()
    conversation.refresh_from_db()
    assert (conversation.priority, conversation.team, conversation.assignee) == (Priority.HIGH, escalation, None)
    assert [m.to for m in mailoutbox] == [["boss@acme.test"]]
    breached = [e for e in captured_events if e.name == "sla.breached"]
    assert len(breached) == 1
    assert breached[0].payload["notify_user_ids"] == sorted([agent.pk, supervisor.pk])
    assert breached[0].payload["metric"] == SlaMetric.FIRST_RESPONSE
    entry = TimelineEntry.objects.for_tenant(tenant).get(conversation=conversation, event="sla_breached")
    assert entry.data["escalation"] == ["priority raised to high", "reassigned to Escalations", "e-mail sent to boss@acme.test"]
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.SLA_MISSED).count() == 1


def test_a_stale_timer_is_ignored(tenant, agent):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=15))
    sla_apply(conversation=conversation)
    old_due = sla_of(conversation).state["metrics"][SlaMetric.FIRST_RESPONSE]["due"]
    message_record_outbound(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Hi")
    conversation.refresh_from_db()
    sla_apply(conversation=conversation)
    fired = sla_timer_check(
        tenant_id=tenant.pk, conversation_id=conversation.pk, metric=SlaMetric.FIRST_RESPONSE, kind="breach", moment=old_due
    )
    assert fired is False
    assert not TimelineEntry.objects.for_tenant(tenant).filter(event="sla_breached").exists()


def test_a_timer_for_a_moved_due_time_does_nothing(tenant):
    make_policy(tenant, targets={
        (Priority.NORMAL, SlaMetric.FIRST_RESPONSE): 10 * MINUTE, (Priority.LOW, SlaMetric.FIRST_RESPONSE): 60 * MINUTE,
    })
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=15))
    sla_apply(conversation=conversation)
    old_due = sla_of(conversation).state["metrics"][SlaMetric.FIRST_RESPONSE]["due"]
    conversation.priority = Priority.LOW
    conversation.save(update_fields=["priority"])
    sla_apply(conversation=conversation)
    fired = sla_timer_check(
        tenant_id=tenant.pk, conversation_id=conversation.pk, metric=SlaMetric.FIRST_RESPONSE, kind="breach", moment=old_due
    )
    assert fired is False
    assert sla_sweep()["fired"] == 0


def test_the_sweeper_gives_an_sla_to_a_conversation_whose_event_was_lost(tenant):
    make_policy(tenant, targets={(Priority.NORMAL, SlaMetric.RESOLUTION): 60 * MINUTE})
    conversation = open_conversation(tenant, at=timezone.now() - timedelta(minutes=1))
    assert sla_sweep()["applied"] == 1
    conversation.refresh_from_db()
    assert conversation.resolution_due_at == conversation.created_at + timedelta(minutes=60)


def test_an_explicit_policy_from_a_rule_sticks_when_the_default_is_applied_again(tenant):
    make_policy(tenant, "Default", position=1, targets={(Priority.NORMAL, SlaMetric.RESOLUTION): 60 * MINUTE})
    ruled = make_policy(tenant, "From a rule", position=2, targets={(Priority.NORMAL, SlaMetric.RESOLUTION): 5 * MINUTE})
    conversation = open_conversation(tenant)
    sla_apply(conversation=conversation, policy=ruled)
    sla_apply(conversation=conversation)
    conversation.refresh_from_db()
    assert sla_of(conversation).policy == ruled
    assert conversation.resolution_due_at == conversation.created_at + timedelta(minutes=5)


def test_a_conversation_opened_by_a_customer_message_gets_its_clocks_computed_once(
    tenant, agent, monkeypatch, django_capture_on_commit_callbacks
):
    """conversation.opened and the first message.created come from one transaction: one SLA task, not two."""
    from conversations.services import InboundMessage, message_record_inbound
    from routing import sla

    queued = []
    monkeypatch.setattr(sla.sla_apply_task, "delay", lambda *args: queued.append(args))
    sms = InboxFactory(tenant=tenant, channel=Channel.SMS)

    def customer_writes(body: str):
        message = InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body=body)
        with django_capture_on_commit_callbacks(execute=True):
            return message_record_inbound(tenant=tenant, inbox=sms, message=message)

    opened = customer_writes("Hello")
    assert queued == [(tenant.pk, opened.conversation.pk)]

    customer_writes("Anyone there?")  # still waiting: no clock changes
    assert len(queued) == 1

    with django_capture_on_commit_callbacks(execute=True):
        message_record_outbound(tenant=tenant, conversation=opened.conversation, author=agent, channel=Channel.SMS,
                                body="Hi!", inbox=sms)
    queued.clear()
    customer_writes("Thanks, one more thing")  # a new wait for the next response
    assert queued == [(tenant.pk, opened.conversation.pk)]
