"""Outbound replies on any channel: check, store as queued, deliver from Celery exactly once."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from channels_app.adapters.base import AdapterError, SendRefused, get_adapter
from channels_app.models import CHANNEL_IDENTITY_KIND, DeliveryAttempt, Inbox
from conversations.models import Conversation, DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import message_record_outbound, message_set_delivery_status
from customers.models import Identity, Tenant

logger = logging.getLogger(__name__)

# Retries of a transient failure: 10 s, 20 s, 40 s … capped at 10 minutes, for about a day in all.
MAX_DELIVERY_ATTEMPTS = 12


def retry_delay(attempt: int) -> int:
    return min(10 * 2 ** (attempt - 1), 600)


def recipient_for(*, tenant: Tenant, conversation: Conversation, channel: str) -> Identity:
    kind = CHANNEL_IDENTITY_KIND.get(channel)
    identities = Identity.objects.for_tenant(tenant).filter(customer_id=conversation.customer_id, kind=kind)
    # The address the customer last wrote from on this channel, if several.
    last_inbound = (
        TimelineEntry.objects.for_tenant(tenant)
        .filter(customer_id=conversation.customer_id, channel=channel, direction=Direction.INBOUND)
        .order_by("-created_at").values_list("data__from", flat=True).first()
    )
    identity = identities.filter(value=last_inbound).first() if last_inbound else None
    identity = identity or identities.order_by("created_at").first()
    if identity is None:
        raise SendRefused(f"{conversation.customer} has no {channel} address; reply on another channel or add one.")
    return identity


def inbox_for_reply(*, tenant: Tenant, conversation: Conversation, channel: str) -> Inbox:
    """The inbox the customer last wrote to on this channel, else the tenant's first one for it."""
    last_inbox_id = (
        TimelineEntry.objects.for_tenant(tenant)
        .filter(conversation=conversation, channel=channel, inbox__isnull=False, inbox__is_active=True)
        .order_by("-created_at").values_list("inbox_id", flat=True).first()
    )
    inboxes = Inbox.objects.for_tenant(tenant).filter(channel=channel, is_active=True)
    inbox = inboxes.filter(pk=last_inbox_id).first() if last_inbox_id else None
    inbox = inbox or inboxes.order_by("created_at").first()
    if inbox is None:
        raise SendRefused(f"This workspace has no active {channel} inbox to send from.")
    return inbox


def reply_send(
    *, tenant: Tenant, conversation: Conversation, author, channel: str, body: str, inbox: Inbox | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Check the reply may go out, store it as queued, and hand it to Celery after commit.

    Raises SendRefused (nothing stored) with a reason the agent can act on.
    """
    from channels_app.tasks import deliver_message

    data = dict(data or {})
    inbox = inbox or inbox_for_reply(tenant=tenant, conversation=conversation, channel=channel)
    if inbox.tenant_id != tenant.pk or inbox.channel != channel:
        raise SendRefused("That inbox does not send on this channel.")
    recipient = recipient_for(tenant=tenant, conversation=conversation, channel=channel)
    get_adapter(channel).check_can_send(
        conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data
    )
    data["to"] = recipient.value
    with transaction.atomic():
        entry = message_record_outbound(
            tenant=tenant, conversation=conversation, author=author, channel=channel, inbox=inbox,
            body=body or data.get("template", {}).get("preview", ""), data=data,
        )
        transaction.on_commit(lambda: deliver_message.delay(entry.pk))
    return entry


def _claim(entry_id: int) -> TimelineEntry | None:
    """Move a queued message to `sending`; only one worker can win, so nothing is sent twice."""
    claimed = TimelineEntry.objects.filter(
        pk=entry_id, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND, delivery_status=DeliveryStatus.QUEUED
    ).update(delivery_status=DeliveryStatus.SENDING, updated_at=timezone.now())
    if not claimed:
        return None
    return TimelineEntry.objects.select_related("tenant", "inbox", "conversation").get(pk=entry_id)


def message_deliver(*, entry_id: int) -> int | None:
    """Try to send one queued message. Returns seconds until a retry, or None when done (sent or failed).

    If the process dies after the provider accepted and before we record it, the message stays in
    `sending` and is not resent automatically (at most once); `sending_sweep` reports those.
    """
    entry = _claim(entry_id)
    if entry is None:
        return None
    attempt = DeliveryAttempt.objects.filter(entry=entry).count() + 1
    adapter = get_adapter(entry.channel)
    started = time.monotonic()
    try:
        provider_id = adapter.send(entry, entry.inbox, entry.data.get("to", ""))
    except AdapterError as exc:
        latency = int((time.monotonic() - started) * 1000)
        give_up = exc.permanent or attempt >= MAX_DELIVERY_ATTEMPTS
        DeliveryAttempt.objects.create(
            tenant_id=entry.tenant_id, entry=entry, inbox=entry.inbox, number=attempt, permanent_failure=exc.permanent,
            status_code=exc.status_code, error=str(exc)[:500], response_snippet=exc.response_snippet[:500],
            latency_ms=latency,
        )
        if give_up:
            logger.warning("Giving up on message %s after attempt %s: %s", entry.pk, attempt, exc)
            message_set_delivery_status(
                tenant=entry.tenant, entry=entry, status=DeliveryStatus.FAILED, error_code=exc.code, reason=str(exc)
            )
            return None
        logger.info("Message %s attempt %s failed (%s); retrying", entry.pk, attempt, exc)
        TimelineEntry.objects.filter(pk=entry.pk, delivery_status=DeliveryStatus.SENDING).update(
            delivery_status=DeliveryStatus.QUEUED, updated_at=timezone.now()
        )
        return retry_delay(attempt)
    latency = int((time.monotonic() - started) * 1000)
    DeliveryAttempt.objects.create(
        tenant_id=entry.tenant_id, entry=entry, inbox=entry.inbox, number=attempt, succeeded=True,
        provider_id=provider_id[:255], latency_ms=latency,
    )
    message_set_delivery_status(tenant=entry.tenant, entry=entry, status=DeliveryStatus.SENT, external_id=provider_id)
    return None


def sending_sweep(*, older_than_seconds: int = 600) -> int:
    """Messages stuck in `sending` (a worker died mid-send) are marked failed with an honest reason."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    stuck = TimelineEntry.objects.filter(delivery_status=DeliveryStatus.SENDING, updated_at__lt=cutoff)
    return stuck.update(
        delivery_status=DeliveryStatus.FAILED,
        failure_reason="The sender stopped while handing this message to the provider; it may not have arrived. "
        "Check with the customer before resending.",
        updated_at=timezone.now(),
    )


def queued_requeue(*, older_than_seconds: int = 660) -> list[int]:
    """Queued messages nobody is delivering (the broker was down at commit, a task was lost): their ids.

    The threshold is longer than the longest retry delay, so a message waiting for its retry is left alone.

    Enqueueing one twice is harmless: only one worker can claim it.
    """
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        TimelineEntry.objects.filter(
            kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND, delivery_status=DeliveryStatus.QUEUED,
            updated_at__lt=cutoff,
        ).values_list("pk", flat=True)[:1000]
    )
