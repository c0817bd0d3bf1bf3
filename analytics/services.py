from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from analytics.models import AnalyticsEvent

if TYPE_CHECKING:
    from conversations.models import Conversation


def analytics_event_build(
    *,
    conversation: Conversation,
    name: str,
    channel: str = "",
    agent_id: int | None = None,
    inbox_id: int | None = None,
    value_seconds: float | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AnalyticsEvent:
    """An unsaved analytics event with the conversation's dimensions as they are now (bulk writers save many)."""
    return AnalyticsEvent(
        tenant_id=conversation.tenant_id,
        name=name,
        occurred_at=occurred_at or timezone.now(),
        conversation=conversation,
        customer_id_snapshot=conversation.customer_id,
        channel=channel or conversation.last_channel,
        inbox_id_snapshot=inbox_id,
        team_id_snapshot=conversation.team_id,
        agent_id_snapshot=agent_id if agent_id is not None else conversation.assignee_id,
        customer_tier=conversation.customer.tier,
        value_seconds=value_seconds,
        data=data or {},
    )


def analytics_event_record(
    *,
    conversation: Conversation,
    name: str,
    channel: str = "",
    agent_id: int | None = None,
    inbox_id: int | None = None,
    value_seconds: float | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AnalyticsEvent:
    """Append one reportable moment of a conversation, with its dimensions as they are now."""
    event = analytics_event_build(
        conversation=conversation, name=name, channel=channel, agent_id=agent_id, inbox_id=inbox_id,
        value_seconds=value_seconds, occurred_at=occurred_at, data=data,
    )
    event.save(force_insert=True)
    return event
