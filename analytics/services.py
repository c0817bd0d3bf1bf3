"""Writing analytics events: dimensions copied in, durations in wall-clock and business seconds, rollups
updated in the same transaction (see analytics/rollups.py for why)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Max, Sum
from django.db.models.functions import Least
from django.utils import timezone

from analytics.models import AnalyticsEvent, AnalyticsSettings, EventName, PresenceSpan
from analytics.rollups import rollups_apply
from routing.business_hours import business_seconds_between

if TYPE_CHECKING:
    from conversations.models import Conversation
    from customers.models import Membership, Tenant
    from routing.models import BusinessCalendar

# A customer coming back on another channel within this long of the previous conversation counts as a
# cross-channel return (and, for context continuity, as a switch that did not stay in one conversation).
CROSS_CHANNEL_WINDOW = timedelta(days=7)
# Active agent time of one reply in messaging: the time since the message it answers, at most this long
# (past it we assume the agent was doing something else while the customer waited).
ACTIVE_REPLY_CAP_SECONDS = 600.0

_NO_CALENDAR: Any = object()


def analytics_calendar_for(conversation: Conversation) -> BusinessCalendar | None:
    """The calendar business-hours durations of a conversation count on: its SLA policy's (the policy's own
    calendar, else its team's, as the SLA engine counts), else the tenant's analytics calendar, else none (24/7)."""
    cached = conversation.__dict__.get("_analytics_calendar", _NO_CALENDAR)
    if cached is not _NO_CALENDAR:
        return cached
    analytics_calendars_load([conversation])
    return conversation.__dict__["_analytics_calendar"]


def analytics_calendars_load(conversations: list[Conversation]) -> None:
    """analytics_calendar_for for many conversations of one tenant in at most three queries (a routing batch
    builds an event per assignment: per conversation this was two or three queries each). Cached on each."""
    todo = [c for c in conversations if "_analytics_calendar" not in c.__dict__]
    if not todo:
        return
    from routing.models import ConversationSla, Team

    tenant_id = todo[0].tenant_id
    slas = {
        sla.conversation_id: sla
        for sla in ConversationSla.objects.for_tenant(tenant_id)
        .filter(conversation_id__in=[c.pk for c in todo], policy__isnull=False).select_related("policy__calendar")
    }
    calendars: dict[int, BusinessCalendar | None] = {}
    team_ids = set()
    for conversation in todo:
        sla = slas.get(conversation.pk)
        if sla is None:
            continue
        if sla.policy.calendar_id:
            calendars[conversation.pk] = sla.policy.calendar
        elif conversation.team_id:
            team_ids.add(conversation.team_id)
    if team_ids:
        team_calendars = {
            team.pk: team.calendar
            for team in Team.objects.for_tenant(tenant_id).filter(pk__in=team_ids).select_related("calendar")
        }
        for conversation in todo:
            if conversation.pk in slas and conversation.pk not in calendars:
                calendars[conversation.pk] = team_calendars.get(conversation.team_id)
    fallback: Any = _NO_CALENDAR
    for conversation in todo:
        calendar = calendars.get(conversation.pk)
        if calendar is None:
            if fallback is _NO_CALENDAR:
                settings = (
                    AnalyticsSettings.objects.for_tenant(tenant_id).select_related("default_calendar").first()
                )
                fallback = settings.default_calendar if settings is not None else None
            calendar = fallback
        conversation.__dict__["_analytics_calendar"] = calendar


def analytics_event_build(
    *,
    conversation: Conversation,
    name: str,
    channel: str = "",
    agent_id: int | None = None,
    inbox_id: int | None = None,
    value_seconds: float | None = None,
    business_seconds: float | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AnalyticsEvent:
    """An unsaved analytics event with the conversation's dimensions as they are now (bulk writers save many).

    A duration ends at `occurred_at`; its business seconds are counted on `analytics_calendar_for` unless given.
    """
    occurred_at = occurred_at or timezone.now()
    if value_seconds is not None and business_seconds is None:
        calendar = analytics_calendar_for(conversation)
        business_seconds = business_seconds_between(
            calendar, occurred_at - timedelta(seconds=max(value_seconds, 0)), occurred_at
        )
    return AnalyticsEvent(
        tenant_id=conversation.tenant_id,
        name=name,
        occurred_at=occurred_at,
        conversation=conversation,
        customer_id_snapshot=conversation.customer_id,
        channel=channel or conversation.last_channel,
        inbox_id_snapshot=inbox_id if inbox_id is not None else conversation.first_inbox_id,
        team_id_snapshot=conversation.team_id,
        agent_id_snapshot=agent_id if agent_id is not None else conversation.assignee_id,
        customer_tier=conversation.customer.tier,
        value_seconds=value_seconds,
        business_seconds=business_seconds,
        data=data or {},
    )


def analytics_events_save(events: list[AnalyticsEvent]) -> list[AnalyticsEvent]:
    """Append events and add them to the rollups, in one transaction."""
    if not events:
        return events
    with transaction.atomic():
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AnalyticsEvent.objects.bulk_create(events)
        rollups_apply(event_ids=[e.pk for e in events], tenant_ids=[e.tenant_id for e in events])
    return events


def analytics_event_record(
    *,
    conversation: Conversation,
    name: str,
    channel: str = "",
    agent_id: int | None = None,
    inbox_id: int | None = None,
    value_seconds: float | None = None,
    business_seconds: float | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AnalyticsEvent:
    """Append one reportable moment of a conversation, with its dimensions as they are now."""
    event = analytics_event_build(
        conversation=conversation, name=name, channel=channel, agent_id=agent_id, inbox_id=inbox_id,
        value_seconds=value_seconds, business_seconds=business_seconds, occurred_at=occurred_at, data=data,
    )
    return analytics_events_save([event])[0]


def analytics_event_revise(*, event: AnalyticsEvent, data: dict[str, Any]) -> AnalyticsEvent:
    """Correct an event in place (a CSAT score changed by the customer): its old facts leave the rollups,
    the new ones enter them, in one transaction. Events are otherwise append-only; use this, never save()."""
    with transaction.atomic():
        event = AnalyticsEvent.objects.for_tenant(event.tenant_id).select_for_update().get(pk=event.pk)
        rollups_apply(event_ids=[event.pk], tenant_ids=[event.tenant_id], sign=-1)
        event.data = data
        event.save(update_fields=["data"])
        rollups_apply(event_ids=[event.pk], tenant_ids=[event.tenant_id])
    return event


def _events_of(conversation: Conversation):
    return AnalyticsEvent.objects.for_tenant(conversation.tenant_id).filter(conversation_id=conversation.pk)


def analytics_conversation_opened(*, conversation: Conversation, at: datetime) -> AnalyticsEvent:
    """A new conversation; notes whether the customer came back on another channel than their previous one."""
    from conversations.models import Conversation as ConversationModel

    previous = (
        ConversationModel.objects.for_tenant(conversation.tenant_id)
        .filter(customer_id=conversation.customer_id, created_at__lte=at).exclude(pk=conversation.pk)
        .order_by("-created_at", "-pk").values("pk", "last_channel", "resolved_at", "updated_at").first()
    )
    data: dict[str, Any] = {}
    if previous is not None:
        other_channel = previous["last_channel"] != conversation.first_channel
        last_seen = previous["resolved_at"] or previous["updated_at"]
        data = {
            "previous_conversation_id": previous["pk"], "previous_channel": previous["last_channel"],
            "switched_channel": other_channel and at - last_seen <= CROSS_CHANNEL_WINDOW,
            "cross_channel_return": bool(
                other_channel and previous["resolved_at"] and at - previous["resolved_at"] <= CROSS_CHANNEL_WINDOW
            ),
        }
    return analytics_event_record(
        conversation=conversation, name=EventName.CONVERSATION_OPENED, channel=conversation.first_channel,
        occurred_at=at, data=data,
    )


def analytics_resolution_record(*, conversation: Conversation, at: datetime) -> AnalyticsEvent:
    """A resolution, with resolution time and what first-contact resolution and handle time need.

    `first`: never reopened before; `fcr`: first and every agent reply came from one agent;
    `active_seconds`: the replies of this cycle (since the previous resolution), each capped.
    """
    from conversations.models import Direction, EntryKind, TimelineEntry

    reply_agents = (
        TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(conversation_id=conversation.pk, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND, author__isnull=False)
        .values("author_id").distinct().count()
    )
    events = _events_of(conversation)
    previous_resolution = events.filter(name=EventName.RESOLUTION, occurred_at__lt=at).aggregate(at=Max("occurred_at"))["at"]
    replies = events.filter(name=EventName.REPLY, occurred_at__lte=at, value_seconds__isnull=False)
    if previous_resolution is not None:
        replies = replies.filter(occurred_at__gt=previous_resolution)
    active = replies.aggregate(s=Sum(Least(F("value_seconds"), ACTIVE_REPLY_CAP_SECONDS)))["s"] or 0.0
    first = conversation.reopen_count == 0
    return analytics_event_record(
        conversation=conversation, name=EventName.RESOLUTION, occurred_at=at,
        value_seconds=(at - conversation.created_at).total_seconds(),
        data={"first": first, "reply_agents": reply_agents, "fcr": first and reply_agents == 1,
              "active_seconds": float(active)},
    )


def analytics_reopen_record(*, conversation: Conversation, at: datetime, reason: str = "") -> AnalyticsEvent:
    """A reopen; when it follows a first-contact resolution, that resolution stops counting as one."""
    data: dict[str, Any] = {"reason": reason}
    last = _events_of(conversation).filter(name=EventName.RESOLUTION, occurred_at__lte=at).order_by("-occurred_at", "-pk").first()
    if last is not None and last.data.get("fcr") is True:
        data["lost_fcr_resolved_at"] = last.occurred_at.isoformat()
        # Where the spoiled resolution counted (missing ids are 0, as on rollup rows).
        data["lost_fcr"] = {
            "channel": last.channel, "inbox_id": last.inbox_id_snapshot or 0, "team_id": last.team_id_snapshot or 0,
            "agent_id": last.agent_id_snapshot or 0, "tier": last.customer_tier,
        }
    if last is not None:
        # A reopen on another channel is a cross-channel return only this soon after the resolution (a tenant's
        # reopen window may be longer).
        data["within_cross_channel_window"] = at - last.occurred_at <= CROSS_CHANNEL_WINDOW
    return analytics_event_record(conversation=conversation, name=EventName.REOPEN, occurred_at=at, data=data)


def _unassigned_since(conversations: list[Conversation]) -> dict[int, datetime]:
    """When each conversation last lost its assignee (or was created): where its queue wait starts."""
    if not conversations:
        return {}
    tenant_id = conversations[0].tenant_id
    latest = dict(
        AnalyticsEvent.objects.for_tenant(tenant_id)
        .filter(conversation_id__in=[c.pk for c in conversations], name=EventName.ASSIGNMENT, agent_id_snapshot__isnull=True)
        .values_list("conversation_id").annotate(at=Max("occurred_at"))
    )
    return {c.pk: max(c.created_at, latest.get(c.pk, c.created_at)) for c in conversations}


def analytics_assignments_build(
    *, assignments: list[tuple[Conversation, int | None, int | None]], at: datetime
) -> list[AnalyticsEvent]:
    """Assignment events for (conversation, previous assignee id, new assignee id) triples; a first
    assignee after a wait carries the queue wait (since arrival or since the conversation was unassigned)."""
    waiting = [c for c, before, after in assignments if before is None and after is not None]
    since = _unassigned_since(waiting)
    analytics_calendars_load(waiting)
    events = []
    for conversation, _before, after in assignments:
        start = since.get(conversation.pk)
        events.append(analytics_event_build(
            conversation=conversation, name=EventName.ASSIGNMENT, occurred_at=at, agent_id=after,
            value_seconds=(at - start).total_seconds() if start is not None else None,
        ))
    return events


def analytics_assignment_record(
    *, conversation: Conversation, at: datetime, previous_agent_id: int | None, agent_id: int | None
) -> AnalyticsEvent:
    events = analytics_assignments_build(assignments=[(conversation, previous_agent_id, agent_id)], at=at)
    return analytics_events_save(events)[0]


def presence_span_record(*, tenant: Tenant, membership: Membership, presence: str, at: datetime) -> PresenceSpan:
    """Close the agent's running presence span and open one for the new presence (caller holds the profile lock)."""
    PresenceSpan.objects.for_tenant(tenant).filter(membership=membership, ended_at__isnull=True).update(ended_at=at)
    return PresenceSpan.objects.create(
        tenant=tenant, membership=membership, user_id=membership.user_id, presence=presence, started_at=at
    )
