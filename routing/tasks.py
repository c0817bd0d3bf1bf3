"""Celery entry points of the routing engine: they take ids, re-fetch, and call a service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from customers.models import Tenant
from routing import selectors, services
from routing.models import Team

logger = logging.getLogger(__name__)

# Routing waits for the database, never gives up on it: the sweeper is the last resort, not the plan.
_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 2, "retry_backoff_max": 60,
    "max_retries": 10, "ignore_result": True,
}
SWEEP_GRACE_SECONDS = 30


@shared_task(**_RETRY)
def route_conversation(conversation_id: int) -> None:
    tenant_id = selectors.tenant_id_of_conversation(conversation_id)
    if tenant_id is None:
        return
    tenant = Tenant.objects.get(pk=tenant_id)
    # A burst of new conversations is routed in batches: this one with the oldest others still unrouted.
    services.conversation_route_with_others(tenant=tenant, conversation_id=conversation_id)


@shared_task(**_RETRY)
def drain_queue(team_id: int) -> None:
    tenant_id = selectors.tenant_id_of_team(team_id)
    if tenant_id is None:
        return
    tenant = Tenant.objects.get(pk=tenant_id)
    services.queue_drain(tenant=tenant, team=Team.objects.for_tenant(tenant).get(pk=team_id))


@shared_task(**_RETRY)
def drain_unteamed_queue(tenant_id: int) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        services.queue_drain(tenant=tenant, team=None)


@shared_task(**_RETRY)
def drain_agent_queues(membership_id: int) -> None:
    tenant_id = selectors.tenant_id_of_membership(membership_id)
    if tenant_id is not None:
        services.queues_drain_for_agent(tenant=Tenant.objects.get(pk=tenant_id), membership_id=membership_id)


@shared_task(**_RETRY)
def drain_after_release(conversation_id: int) -> None:
    """A conversation stopped counting against its agent (resolved, pending…): their queues may move."""
    tenant_id = selectors.tenant_id_of_conversation(conversation_id)
    if tenant_id is None:
        return
    tenant = Tenant.objects.get(pk=tenant_id)
    membership = selectors.assignee_membership(tenant=tenant, conversation_id=conversation_id)
    if membership is not None:
        services.queues_drain_for_agent(tenant=tenant, membership_id=membership.pk)


@shared_task(**_RETRY)
def requeue_offline_agent(membership_id: int) -> None:
    tenant_id = selectors.tenant_id_of_membership(membership_id)
    if tenant_id is not None:
        services.agent_requeue_offline(tenant=Tenant.objects.get(pk=tenant_id), membership_id=membership_id)


@shared_task(ignore_result=True)
def sweep_unrouted(grace_seconds: float = SWEEP_GRACE_SECONDS) -> dict[str, int]:
    """Periodic (beat, every 30 s): whatever events or tasks were lost while the broker or the workers
    were down is found here and routed: unrouted conversations, queues, long-offline agents."""
    at = timezone.now()
    counts = {"unrouted": 0, "queues": 0, "offline": 0}
    for tenant in Tenant.objects.order_by("pk"):
        for conversation_id in selectors.unrouted_conversation_ids(
            tenant=tenant, updated_before=at - timedelta(seconds=grace_seconds)
        ):
            route_conversation.delay(conversation_id)
            counts["unrouted"] += 1
        for team_id in selectors.queued_team_ids(tenant=tenant):
            if team_id is None:
                drain_unteamed_queue.delay(tenant.pk)
            else:
                drain_queue.delay(team_id)
            counts["queues"] += 1
        for membership_id in selectors.agents_due_for_requeue(tenant=tenant, at=at):
            requeue_offline_agent.delay(membership_id)
            counts["offline"] += 1
    if any(counts.values()):
        logger.info("Routing sweep: %s", counts)
    return counts


# The SLA engine's tasks and event handlers, registered wherever routing tasks are.
from routing import sla_handlers  # noqa: E402,F401
