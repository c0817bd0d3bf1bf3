"""Persist-first ingest of Twilio messages: the webhook stores a receipt, the worker stores the message.

A webhook used to resolve the customer, apply the continuity rule and insert the timeline entry before
answering: ~10 SQL statements and ~13 ms of CPU per request, which a 2-core machine cannot do 100 times a
second with room to spare. Now the webhook verifies and parses (so 403 and 400 still answer at once), does
one INSERT of the parsed message and answers; `twilio_receipt_process` does the rest from Celery, and the
sweeper picks up receipts whose task was lost (a broker outage). Processing is safe to run twice: the
receipt row is locked and marked processed in the transaction that stores the message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from channels_app.adapters.base import get_adapter
from channels_app.models import InboundReceipt, Inbox
from conversations.services import ConversationError, InboundMessage, InboundResult, message_record_inbound
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)

# How old an unprocessed receipt must be before the sweeper takes it (its own task is normally faster).
SWEEP_AFTER = timedelta(seconds=60)
SWEEP_BATCH = 1000

_INSERT = (
    f"INSERT INTO {InboundReceipt._meta.db_table} (tenant_id, inbox_id, provider_id, message, received_at, error) "  # noqa: S608 - table name from the model
    "VALUES (%s, %s, %s, %s::jsonb, %s, '') "
    "ON CONFLICT (tenant_id, inbox_id, provider_id) DO NOTHING RETURNING id"
)


def _without_nul(value: Any) -> Any:
    # Postgres text and jsonb cannot hold NUL characters; senders put them in anyway.
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def twilio_receipt_store(*, inbox: Inbox, message: InboundMessage) -> int | None:
    """Store the receipt in one statement; its id, or None when this message was received before."""
    fields = _without_nul({k: v for k, v in asdict(message).items() if k != "received_at"})
    if connection.vendor != "postgresql":  # the SQLite fallback of `make run`
        try:
            with transaction.atomic():
                return InboundReceipt.objects.create(
                    tenant_id=inbox.tenant_id, inbox=inbox, provider_id=message.external_id, message=fields,
                    received_at=timezone.now(),
                ).pk
        except IntegrityError:
            return None
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [inbox.tenant_id, inbox.pk, message.external_id, json.dumps(fields), timezone.now()])
        row = cursor.fetchone()
    return row[0] if row else None


def twilio_receipt_enqueue(tenant_id: int, receipt_id: int) -> None:
    from channels_app.adapters.twilio_common.tasks import ingest_twilio_message

    try:
        ingest_twilio_message.delay(tenant_id, receipt_id)
    except BrokerError:
        # The receipt is committed; the sweeper stores the message once the broker is back.
        logger.error("Could not enqueue receipt %s: broker unavailable; the sweeper will take it", receipt_id)


def _enqueue_media(tenant_id: int, entry_id: int, count: int) -> None:
    from channels_app.adapters.twilio_common.tasks import fetch_twilio_media

    for index in range(count):
        try:
            fetch_twilio_media.delay(tenant_id, entry_id, index)
        except BrokerError:
            # The message is stored with its media URLs; only the copy is missing.
            logger.error("Could not enqueue media %s of entry %s: broker unavailable", index, entry_id)


def _refuse(receipt: InboundReceipt, reason: str) -> None:
    logger.error("Receipt %s of inbox %s not stored: %s", receipt.pk, receipt.inbox_id, reason)
    receipt.processed_at = timezone.now()
    receipt.error = reason[:500]
    receipt.save(update_fields=["processed_at", "error"])


def twilio_receipt_process(*, tenant_id: int, receipt_id: int) -> InboundResult | None:
    """Store a receipt's message on the customer's timeline, with its side effects (opt-out, media).

    Returns None when there is nothing to do: already processed, being processed by another worker, or
    refused. A database outage raises, and the receipt stays pending for a retry or the sweeper.
    """
    with transaction.atomic():
        receipt = (
            InboundReceipt.objects.for_tenant(tenant_id).select_for_update(skip_locked=True, of=("self",))
            .select_related("inbox__tenant").filter(pk=receipt_id, processed_at__isnull=True).first()
        )
        if receipt is None:
            return None
        inbox = receipt.inbox
        adapter = get_adapter(inbox.channel)
        message = InboundMessage(**receipt.message, received_at=receipt.received_at)
        try:
            with transaction.atomic():
                result = message_record_inbound(tenant=inbox.tenant, inbox=inbox, message=message)
                if result.created:
                    adapter.inbound_recorded(inbox, result)
        except (InvalidIdentity, ConversationError) as exc:
            _refuse(receipt, " ".join(exc.messages))
            return None
        except DataError as exc:
            # A value the database refuses (too long for its column…): retrying would not help.
            _refuse(receipt, f"The message has a value that cannot be stored: {exc}")
            return None
        receipt.processed_at = timezone.now()
        receipt.entry = result.entry
        receipt.save(update_fields=["processed_at", "entry"])
        media_count = len(result.entry.data.get("media") or []) if result.created else 0
        if media_count:
            tenant_id, entry_id = inbox.tenant_id, result.entry.pk
            transaction.on_commit(lambda: _enqueue_media(tenant_id, entry_id, media_count))
    return result


def twilio_receipts_pending(*, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_BATCH) -> list[tuple[int, int]]:
    """(tenant id, receipt id) of receipts nobody has processed for a while, oldest first (a lost task, a
    broker outage). Every tenant's: the sweeper is a maintenance job, like the outbound sweep."""
    cutoff = timezone.now() - older_than
    return list(
        InboundReceipt.objects.filter(processed_at__isnull=True, received_at__lte=cutoff)
        .order_by("received_at", "pk").values_list("tenant_id", "pk")[:limit]
    )


def twilio_receipts_sweep(*, older_than: timedelta = SWEEP_AFTER) -> int:
    """Process the pending receipts in arrival order; how many were stored."""
    stored = 0
    for tenant_id, receipt_id in twilio_receipts_pending(older_than=older_than):
        try:
            stored += twilio_receipt_process(tenant_id=tenant_id, receipt_id=receipt_id) is not None
        except (OperationalError, InterfaceError):
            logger.error("Database unavailable; receipts stay pending for the next sweep")
            break
        except DatabaseError:
            # One receipt the code cannot store (a bug, a missing migration) must not hold up the others.
            logger.exception("Receipt %s of tenant %s could not be stored; it stays pending", receipt_id, tenant_id)
    return stored
