"""Which domain event becomes which webhook event, and what its `data` carries.

Data is ids and states only (a receiver fetches text through the API), read within the event's tenant.
"""

from __future__ import annotations

from typing import Any

from channels_app.models import WebhookEvent
from omnidesk.lib.events import EVENT_SCHEMAS, DomainEvent

# conversation.reopened is left out on purpose: a reopen also emits status_changed, which says it.
DOMAIN_TO_WEBHOOK: dict[str, str] = {
    "conversation.opened": WebhookEvent.CONVERSATION_CREATED,
    "conversation.updated": WebhookEvent.CONVERSATION_UPDATED,
    "conversation.channel_switched": WebhookEvent.CONVERSATION_UPDATED,
    "conversation.status_changed": WebhookEvent.CONVERSATION_STATUS_CHANGED,
    "conversation.assigned": WebhookEvent.CONVERSATION_ASSIGNED,
    "message.created": WebhookEvent.MESSAGE_CREATED,
    "customer.created": WebhookEvent.CUSTOMER_CREATED,
    "customer.merged": WebhookEvent.CUSTOMER_MERGED,
    "sla.at_risk": WebhookEvent.SLA_AT_RISK,
    "sla.breached": WebhookEvent.SLA_BREACHED,
    "csat.received": WebhookEvent.CSAT_RECEIVED,
}
MAPPED_DOMAIN_EVENTS = tuple(name for name in DOMAIN_TO_WEBHOOK if name in EVENT_SCHEMAS)

# Payload keys passed through; anything else a service adds (notify_user_ids: who inside the tenant is
# paged) stays internal.
_PASSED_KEYS = frozenset({
    "conversation_id", "number", "customer_id", "merged_customer_id", "channel", "old_status", "new_status",
    "assignee_id", "team_id", "changed", "entry_id", "kind", "direction", "started_waiting", "from_channel",
    "to_channel", "metric", "due_at", "policy_id", "survey_id", "score", "previous_score", "has_comment", "via",
})


def webhook_event_for(domain_event: str) -> str | None:
    return DOMAIN_TO_WEBHOOK.get(domain_event)


def conversation_snapshot(*, tenant_id: int, conversation_id: int) -> dict[str, Any] | None:
    from conversations.models import Conversation

    row = (
        Conversation.objects.for_tenant(tenant_id).filter(pk=conversation_id)
        .values("pk", "number", "status", "priority", "assignee_id", "team_id", "customer_id", "last_channel")
        .first()
    )
    if row is None:
        return None
    return {
        "id": row["pk"], "number": row["number"], "status": row["status"], "priority": row["priority"],
        "assignee_id": row["assignee_id"], "team_id": row["team_id"], "customer_id": row["customer_id"],
        "channel": row["last_channel"],
    }


def event_data(event: DomainEvent) -> dict[str, Any]:
    data = {key: value for key, value in event.payload.items() if key in _PASSED_KEYS}
    if event.name == "conversation.channel_switched":
        data["changed"] = ["channel"]
    conversation_id = event.payload.get("conversation_id")
    if conversation_id is not None:
        snapshot = conversation_snapshot(tenant_id=event.tenant_id, conversation_id=conversation_id)
        if snapshot is not None:
            data["conversation"] = snapshot
    return data
