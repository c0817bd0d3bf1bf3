"""Tenant-scoped reads of the web-chat channel. A visitor reaches only their own messages: the key picks the
tenant and inbox, the token picks the visitor inside them, and nothing else from the request is trusted."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from channels_app.adapters.web_chat.identity import token_hash, token_is_well_formed
from channels_app.models import Channel, Inbox
from conversations.models import (
    ACTIVE_STATUSES,
    Conversation,
    DeliveryStatus,
    Direction,
    EntryKind,
    TimelineEntry,
)
from customers.models import ChatVisitor, IdentityKind
from routing.business_hours import CalendarNeverOpen, is_open, next_open
from routing.models import AgentProfile, BusinessCalendar, Presence, Team

HISTORY_LIMIT = 100
# Statuses of agent messages a visitor never sees: not sent yet by design, or withdrawn.
_HIDDEN_STATUSES = (DeliveryStatus.SCHEDULED, DeliveryStatus.CANCELLED, DeliveryStatus.FAILED)


def chat_inboxes(*, tenant_id: int) -> QuerySet[Inbox]:
    return Inbox.objects.for_tenant(tenant_id).filter(channel=Channel.CHAT, is_active=True)


def visitor_for_token(*, inbox: Inbox, token: str | None) -> ChatVisitor | None:
    """The visitor of this inbox holding `token`; None for a missing, malformed, unknown or other inbox's token."""
    if not token or not token_is_well_formed(token):
        return None
    return (
        ChatVisitor.objects.for_tenant(inbox.tenant_id).select_related("identity", "inbox")
        .filter(inbox=inbox, identity__kind=IdentityKind.CHAT_VISITOR, identity__value=token_hash(token)).first()
    )


def visitor_for_identity_value(*, tenant_id: int, value: str) -> ChatVisitor | None:
    return (
        ChatVisitor.objects.for_tenant(tenant_id).select_related("identity")
        .filter(identity__kind=IdentityKind.CHAT_VISITOR, identity__value=value).first()
    )


def _setting_id(inbox: Inbox, name: str) -> int | None:
    value = inbox.setting(name)
    if isinstance(value, bool):
        return None
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def chat_team(*, inbox: Inbox) -> Team | None:
    team_id = _setting_id(inbox, "team_id")
    if team_id is None:
        return None
    return Team.objects.for_tenant(inbox.tenant_id).select_related("calendar").filter(pk=team_id).first()


def chat_calendar(*, inbox: Inbox) -> BusinessCalendar | None:
    """The inbox's calendar, else its team's, else the tenant's when it has exactly one."""
    calendars = BusinessCalendar.objects.for_tenant(inbox.tenant_id)
    calendar_id = _setting_id(inbox, "calendar_id")
    if calendar_id is not None:
        calendar = calendars.filter(pk=calendar_id).first()
        if calendar is not None:
            return calendar
    team = chat_team(inbox=inbox)
    if team is not None and team.calendar is not None:
        return team.calendar
    only = list(calendars[:2])
    return only[0] if len(only) == 1 else None


def agents_online(*, inbox: Inbox) -> bool:
    """Someone (of the inbox's team, if it names one) is online and able to take chats."""
    profiles = AgentProfile.objects.for_tenant(inbox.tenant_id).filter(presence=Presence.ONLINE)
    team_id = _setting_id(inbox, "team_id")
    if team_id is not None:
        profiles = profiles.filter(membership__teams__pk=team_id)
    return any(profile.capacity_for(Channel.CHAT) > 0 for profile in profiles[:50])


def next_open_at(*, inbox: Inbox, online: bool, at: datetime | None = None) -> datetime | None:
    """When the team is back: None while someone is online, or when no calendar says (or it is open now)."""
    if online:
        return None
    at = at or timezone.now()
    calendar = chat_calendar(inbox=inbox)
    if calendar is None or is_open(calendar, at):
        return None
    try:
        return next_open(calendar, at)
    except CalendarNeverOpen:
        return None


def visitor_history(*, visitor: ChatVisitor) -> QuerySet[TimelineEntry]:
    """The visitor's chat messages, both ways. An anonymous visitor sees what went through their own token
    (a claimed e-mail joins them to a customer whose other messages are not theirs to read); a verified one
    sees every chat message of their customer on this inbox."""
    value = visitor.identity.value
    mine = Q(data__from=value) | Q(data__to=value)
    if visitor.verified_user_id:
        mine |= Q(inbox_id=visitor.inbox_id)
    return (
        TimelineEntry.objects.for_tenant(visitor.tenant_id)
        .filter(customer_id=visitor.identity.customer_id, kind=EntryKind.MESSAGE, channel=Channel.CHAT)
        .filter(mine).exclude(delivery_status__in=_HIDDEN_STATUSES)
        .select_related("author").prefetch_related("attachments")
    )


def visitor_recent_messages(*, visitor: ChatVisitor, limit: int = HISTORY_LIMIT) -> list[TimelineEntry]:
    """The last `limit` messages, oldest first."""
    newest = list(visitor_history(visitor=visitor).order_by("-created_at", "-id")[:limit])
    return newest[::-1]


def visitor_messages_after(*, visitor: ChatVisitor, after: int, limit: int = HISTORY_LIMIT) -> list[TimelineEntry]:
    return list(visitor_history(visitor=visitor).filter(pk__gt=after).order_by("pk")[:limit])


def visitor_unread_count(*, visitor: ChatVisitor) -> int:
    return (
        visitor_history(visitor=visitor)
        .filter(direction=Direction.OUTBOUND, pk__gt=visitor.last_read_entry_id).count()
    )


def visitor_active_conversation(*, visitor: ChatVisitor) -> Conversation | None:
    return (
        Conversation.objects.for_tenant(visitor.tenant_id)
        .filter(customer_id=visitor.identity.customer_id, status__in=ACTIVE_STATUSES).order_by("-updated_at").first()
    )
