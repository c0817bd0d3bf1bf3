"""Domain events: services emit them after commit; independent handlers subscribe by name.

Live updates, routing, analytics and outgoing webhooks each subscribe here without touching the
models or the services that emit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Every event a service may emit, with the payload keys it always carries.
EVENT_SCHEMAS: dict[str, frozenset[str]] = {
    "customer.created": frozenset({"customer_id"}),
    "customer.merged": frozenset({"customer_id", "merged_customer_id"}),
    "conversation.opened": frozenset({"conversation_id", "number", "customer_id", "channel"}),
    "conversation.reopened": frozenset({"conversation_id", "number", "customer_id"}),
    "conversation.assigned": frozenset({"conversation_id", "number", "assignee_id", "team_id"}),
    "conversation.status_changed": frozenset({"conversation_id", "number", "old_status", "new_status"}),
    "conversation.channel_switched": frozenset({"conversation_id", "number", "from_channel", "to_channel"}),
    "conversation.updated": frozenset({"conversation_id", "number", "changed"}),
    # started_waiting: this customer message started a wait for a reply in a conversation the agent had
    # answered (False for the message that opened it: conversation.opened says so).
    "message.created": frozenset({"conversation_id", "number", "entry_id", "kind", "direction", "channel", "started_waiting"}),
    "note.created": frozenset({"conversation_id", "number", "entry_id"}),
    # An outbound message moved on (sent, delivered, read, failed): the workspace updates its ticks.
    "message.status_changed": frozenset({"conversation_id", "number", "entry_id", "delivery_status"}),
    # Send later: a reply stored to go out at scheduled_at, cancelled before, or refused at its time.
    "message.scheduled": frozenset({"conversation_id", "number", "entry_id", "scheduled_at"}),
    "message.cancelled": frozenset({"conversation_id", "number", "entry_id"}),
    "message.failed": frozenset({"conversation_id", "number", "entry_id", "reason"}),
    "conversation.merged": frozenset({"conversation_id", "number", "merged_conversation_id", "merged_number"}),
    "mention.created": frozenset({"conversation_id", "number", "entry_id", "notify_user_ids"}),
    "sla.at_risk": frozenset({"conversation_id", "number", "metric", "due_at", "policy_id", "assignee_id", "team_id", "notify_user_ids"}),
    "sla.breached": frozenset({"conversation_id", "number", "metric", "due_at", "policy_id", "assignee_id", "team_id", "notify_user_ids"}),
    # A survey answer was recorded or changed (previous_score: None the first time; the same score when only
    # the comment changed). The comment itself never travels in an event.
    "csat.received": frozenset({"conversation_id", "number", "survey_id", "customer_id", "score", "previous_score",
                                "has_comment", "channel", "via"}),
    "agent.presence_changed": frozenset({"membership_id", "presence"}),
    "agent.capacity_changed": frozenset({"membership_id"}),
}

Handler = Callable[["DomainEvent"], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


@dataclass(frozen=True)
class DomainEvent:
    name: str
    tenant_id: int
    payload: dict[str, Any]
    occurred_at: Any = field(default_factory=timezone.now)
    # (assignee id, team id) of the event's conversation when it was emitted, if the emitter had it: live
    # updates address the event by it instead of reading the conversation again. Not part of the payload.
    owner: tuple[int | None, int | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "tenant_id": self.tenant_id,
            "occurred_at": self.occurred_at.isoformat(),
            **self.payload,
        }


def subscribe(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for event names ("*" for every event)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if name != "*" and name not in EVENT_SCHEMAS:
                raise ValueError(f"Unknown domain event {name!r}")
            if handler not in _handlers[name]:
                _handlers[name].append(handler)
        return handler

    return register


def unsubscribe(handler: Handler) -> None:
    for handlers in _handlers.values():
        if handler in handlers:
            handlers.remove(handler)


def emit_on_commit(
    name: str, *, tenant_id: int, owner: tuple[int | None, int | None] | None = None, **payload: Any
) -> DomainEvent:
    schema = EVENT_SCHEMAS.get(name)
    if schema is None:
        raise ValueError(f"Unknown domain event {name!r}")
    missing = schema - payload.keys()
    if missing:
        raise ValueError(f"Event {name} is missing {sorted(missing)}")
    event = DomainEvent(name=name, tenant_id=tenant_id, payload=payload, owner=owner)
    transaction.on_commit(lambda: dispatch(event))
    return event


def dispatch(event: DomainEvent) -> None:
    for handler in [*_handlers.get(event.name, ()), *_handlers.get("*", ())]:
        # One failing subscriber (say, Redis down for live updates) must not stop the others;
        # the state is already committed, and each subscriber has its own catch-up path.
        try:
            handler(event)
        except Exception:
            logger.exception("Handler %s failed for %s", getattr(handler, "__name__", handler), event.name)
