"""Domain-event subscribers: after commit, hand routing work to Celery. A lost hand-off (broker down)
is caught by the periodic sweeper, so these only log and move on."""

from __future__ import annotations

from customers.models import Tenant
from omnidesk.lib.events import DomainEvent, subscribe
from routing import selectors, tasks
from routing.models import Presence

RELEASING_STATUSES = {"resolved", "closed", "pending", "snoozed"}


@subscribe("conversation.opened", "conversation.reopened")
def route_new_conversation(event: DomainEvent) -> None:
    tasks.route_conversation.delay(event.payload["conversation_id"])


@subscribe("conversation.assigned")
def route_unassigned_conversation(event: DomainEvent) -> None:
    if event.payload["assignee_id"] is None:
        tasks.route_conversation.delay(event.payload["conversation_id"])


@subscribe("conversation.status_changed")
def route_or_drain_on_status(event: DomainEvent) -> None:
    if event.payload["new_status"] in RELEASING_STATUSES:
        tasks.drain_after_release.delay(event.payload["conversation_id"])
    elif event.payload["new_status"] == "open":
        tasks.route_conversation.delay(event.payload["conversation_id"])


@subscribe("agent.presence_changed")
def drain_or_schedule_requeue(event: DomainEvent) -> None:
    membership_id = event.payload["membership_id"]
    if event.payload["presence"] == Presence.ONLINE:
        tasks.drain_agent_queues.delay(membership_id)
        return
    # Exact timing for the re-queue of a long-offline agent; the sweeper is the backstop.
    delay = selectors.requeue_delay_seconds(tenant=Tenant(pk=event.tenant_id), membership_id=membership_id)
    if delay is not None:
        tasks.requeue_offline_agent.apply_async(args=[membership_id], countdown=delay)


@subscribe("agent.capacity_changed")
def drain_on_capacity(event: DomainEvent) -> None:
    tasks.drain_agent_queues.delay(event.payload["membership_id"])
