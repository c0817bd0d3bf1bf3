"""Domain-event subscribers of the SLA engine. Each recomputes the conversation's SLA in a Celery task, off
the webhook's request; when the broker cannot take the task, in place (so a stored conversation always gets
its clock). sla_apply is idempotent, so repeats are harmless, and the sweeper gives an SLA to any active
conversation whose event was lost."""

from __future__ import annotations

import logging

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from omnidesk.lib.events import DomainEvent, subscribe
from routing import sla

logger = logging.getLogger(__name__)


def _reapply(event: DomainEvent) -> None:
    conversation_id = event.payload["conversation_id"]
    try:
        sla.sla_apply_task.delay(event.tenant_id, conversation_id)
        return
    except BrokerUnavailable as exc:
        logger.warning("Broker unavailable (%s); applying the SLA of conversation %s in place", exc, conversation_id)
    with transaction.atomic():
        conversation = sla._locked_conversation(event.tenant_id, conversation_id)
        if conversation is not None:
            sla.sla_apply(conversation=conversation)


@subscribe("conversation.opened", "conversation.reopened", "conversation.status_changed", "message.created")
def sla_on_conversation_change(event: DomainEvent) -> None:
    if event.name == "message.created" and event.payload["direction"] == "inbound" and not event.payload["started_waiting"]:
        return  # the customer was already waiting: no clock changes (and chatty customers cost nothing)
    # Opened: the default policy (a routing rule's explicit policy, set before or after, sticks).
    # Status: pending/snoozed pause, open resumes, resolved meets the resolution target.
    # Message: an agent reply meets first/next response; a customer message starts the next-response clock.
    _reapply(event)


@subscribe("conversation.updated")
def sla_on_priority_change(event: DomainEvent) -> None:
    if "priority" in event.payload["changed"]:
        _reapply(event)


@subscribe("conversation.assigned")
def sla_on_team_change(event: DomainEvent) -> None:
    # A policy without its own calendar counts the team's hours, so a new team can move the due times.
    _reapply(event)
