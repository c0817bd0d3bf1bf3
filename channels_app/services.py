"""Outbound replies on any channel: check, store as queued, deliver from Celery exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_app.adapters.base import AdapterError, FileSpec, SendRefused, get_adapter
from channels_app.models import CHANNEL_IDENTITY_KIND, DeliveryAttempt, Inbox
from conversations.models import Conversation, DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import (
    OutgoingFile,
    check_schedule_time,
    message_fail_scheduled,
    message_record_outbound,
    message_release_scheduled,
    message_set_delivery_status,
    scheduled_due_ids,
)
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
    data: dict[str, Any] | None = None, files: Sequence[OutgoingFile] = (), send_at: datetime | None = None,
) -> TimelineEntry:
    """Check the reply may go out, store it as queued, and hand it to Celery after commit.

    With `send_at` it is stored as scheduled and `scheduled_send` sends it then (checking the channel again).
    Raises SendRefused (nothing stored) with a reason the agent can act on.
    """
    from channels_app.tasks import deliver_message, send_scheduled_message

    data = dict(data or {})
    if send_at is not None:
        check_schedule_time(send_at)
    inbox = inbox or inbox_for_reply(tenant=tenant, conversation=conversation, channel=channel)
    if inbox.tenant_id != tenant.pk or inbox.channel != channel:
        raise SendRefused("That inbox does not send on this channel.")
    recipient = recipient_for(tenant=tenant, conversation=conversation, channel=channel)
    adapter = get_adapter(channel)
    adapter.check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
    if send_at is not None:
        adapter.check_can_send_at(conversation=conversation, inbox=inbox, recipient=recipient, send_at=send_at, data=data)
    adapter.check_attachments(
        inbox=inbox, files=[FileSpec(f.name, f.size, f.content_type) for f in files], data=data
    )
    data["to"] = recipient.value
    with transaction.atomic():
        entry = message_record_outbound(
            tenant=tenant, conversation=conversation, author=author, channel=channel, inbox=inbox,
            body=body or data.get("template", {}).get("preview", ""), data=data, files=files, scheduled_at=send_at,
        )
        if send_at is None:
            # robust: the reply is committed as queued; a broker outage must not answer the agent with a 500
            # (the sweeper hands it over once the broker is back, see queued_requeue).
            transaction.on_commit(lambda: deliver_message.delay(entry.pk), robust=True)
        elif send_at - timezone.now() <= SCHEDULE_TIMER_HORIZON:
            # robust: a broker outage must not fail the agent's request; the sweeper arms the timer later.
            transaction.on_commit(
                lambda: send_scheduled_message.apply_async((tenant.pk, entry.pk), eta=send_at), robust=True
            )
    return entry


# Scheduled replies due within this get a Celery ETA timer at once; later ones get theirs from the
# sweeper shortly before they are due. Redis hands an unacknowledged task to another worker after its
# visibility timeout (1 hour), so timers far ahead would pile up as copies (harmless: sending claims
# the message once, but wasteful).
SCHEDULE_TIMER_HORIZON = timedelta(minutes=50)


def scheduled_send(*, tenant_id: int, entry_id: int) -> bool:
    """Send a scheduled reply whose time has come: the channel checks it again (the WhatsApp window may
    have closed, the customer may have opted out); a refusal marks it failed with the reason. Then it
    goes through the same queue as any reply. True when it was handed to delivery; safe to run twice."""
    from channels_app.tasks import deliver_message

    entry = (
        TimelineEntry.objects.for_tenant(tenant_id).select_related("tenant", "inbox", "conversation")
        .filter(pk=entry_id, delivery_status=DeliveryStatus.SCHEDULED).first()
    )
    if entry is None or entry.scheduled_at > timezone.now():
        return False
    tenant = entry.tenant
    try:
        _check_still_sendable(entry)
    except SendRefused as exc:
        reason = " ".join(exc.messages)
        logger.info("Scheduled message %s refused at send time: %s", entry.pk, reason)
        message_fail_scheduled(tenant=tenant, entry_id=entry.pk, reason=f"Not sent at its time: {reason}")
        return False
    with transaction.atomic():
        released = message_release_scheduled(tenant=tenant, entry_id=entry.pk)
        if released is not None:
            # robust: a lost hand-over is picked up by the sweeper (queued_requeue).
            transaction.on_commit(lambda: deliver_message.delay(released.pk), robust=True)
    return released is not None


def _check_still_sendable(entry: TimelineEntry) -> None:
    conversation, inbox = entry.conversation, entry.inbox
    if inbox is None or not inbox.is_active:
        raise SendRefused("the inbox it was to go from is no longer active; write the reply again on another inbox.")
    recipient = recipient_for(tenant=entry.tenant, conversation=conversation, channel=entry.channel)
    if recipient.value != entry.data.get("to"):
        # The address it was written for may be gone (unlinked, merged); send to what the customer has now.
        entry.data["to"] = recipient.value
        TimelineEntry.objects.filter(pk=entry.pk, delivery_status=DeliveryStatus.SCHEDULED).update(data=entry.data)
    adapter = get_adapter(entry.channel)
    adapter.check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=entry.body, data=entry.data)
    adapter.check_attachments(
        inbox=inbox, files=[FileSpec(a.filename, a.size, a.content_type) for a in entry.attachments.all()],
        data=entry.data,
    )


def scheduled_timers(*, now: datetime | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int, datetime]]]:
    """For the sweeper: scheduled replies already due (a lost timer, a broker outage) and those due before
    its next run, which get an ETA timer now."""
    now = now or timezone.now()
    upcoming = scheduled_due_ids(until=now + SWEEP_LOOKAHEAD)
    due = [(tenant_id, entry_id) for tenant_id, entry_id, at in upcoming if at <= now]
    soon = [(tenant_id, entry_id, at) for tenant_id, entry_id, at in upcoming if at > now]
    return due, soon


# A bit more than the sweeper's period (60 s), so every reply gets a timer before it is due.
SWEEP_LOOKAHEAD = timedelta(seconds=90)


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


def queued_requeue(*, older_than_seconds: int = 660, never_tried_after_seconds: int = 90) -> list[int]:
    """Queued messages nobody is delivering (the broker was down at commit, a task was lost): their ids.

    A message that was tried waits `older_than_seconds`, longer than the longest retry delay, so one waiting
    for its retry is left alone; one never tried (its hand-over was lost) needs no such wait and comes back
    after `never_tried_after_seconds`, so replies written during a broker outage go out soon after it.

    Enqueueing one twice is harmless: only one worker can claim it.
    """
    now = timezone.now()
    return list(
        TimelineEntry.objects.filter(
            kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND, delivery_status=DeliveryStatus.QUEUED,
        ).filter(
            Q(updated_at__lt=now - timedelta(seconds=older_than_seconds))
            | Q(updated_at__lt=now - timedelta(seconds=never_tried_after_seconds), delivery_attempts__isnull=True)
        ).values_list("pk", flat=True).distinct()[:1000]
    )
