"""Persist-first ingest: a webhook commits a receipt and answers; the worker stores the message.

Storing a message (the customer, the continuity rule, the timeline entry, its events) takes ~10 SQL
statements and several ms of CPU, more than a 2-core machine can do 100 times a second beside answering. So
the Twilio (SMS, WhatsApp) and e-mail webhooks verify and parse (403 and 400 still answer at once), do one
INSERT of a receipt and answer; a pump task (`receipts_pump`) does the rest from Celery, taking every pending
receipt in turn, and the sweeper picks up receipts whose pump was lost (a broker outage). The inbox's adapter
turns a receipt into timeline rows (`ChannelAdapter.receipt_record`): Twilio's receipts hold the parsed
message, e-mail's the raw mail. Processing is safe to run twice: the receipt row is locked and marked
processed in the transaction that stores the message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from celery import current_app
from django.conf import settings
from django.core.cache import cache
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

from channels_app.adapters.base import MalformedInbound, get_adapter
from channels_app.models import InboundReceipt, Inbox
from conversations.services import ConversationError
from customers.identities import InvalidIdentity
from omnidesk.lib.text import strip_nul

if TYPE_CHECKING:
    from conversations.models import TimelineEntry

logger = logging.getLogger(__name__)

# How old an unprocessed receipt must be before the sweeper takes it (a pump is normally faster).
SWEEP_AFTER = timedelta(seconds=60)
SWEEP_BATCH = 1000
# Under load one task stores many receipts. A Celery task cost ~3 ms of the 2-core machine's CPU around its
# work (bench/README.md), a quarter of what storing a message costs; so a webhook enqueues the pump only when
# none is waiting to start, and a pump goes on while receipts are pending. Idle, each receipt still starts
# a pump at once. The mark's expiry bounds how long a pump lost before starting can hold up new receipts.
PUMP_BATCH = 200
PUMP_MARK_SECONDS = 5

_INSERT = (
    f"INSERT INTO {InboundReceipt._meta.db_table} "  # noqa: S608 - table name from the model
    "(tenant_id, inbox_id, provider_id, message, raw, received_at, error, outcome, detail) "
    "VALUES (%s, %s, %s, %s::jsonb, %s, %s, '', '', '') "
    "ON CONFLICT (tenant_id, inbox_id, provider_id) DO NOTHING RETURNING id"
)


@dataclass(frozen=True)
class ReceiptOutcome:
    """What storing a receipt did: "stored", "duplicate", or a channel's own word ("bounce", "auto_reply",
    "ignored" for e-mail), a sentence for people, and the timeline entry it stored or found."""

    outcome: str
    detail: str = ""
    entry: TimelineEntry | None = None


def receipt_store(*, inbox: Inbox, provider_id: str, message: dict, raw: bytes | None = None) -> int | None:
    """Commit a receipt in one statement; its id, or None when this provider id was received before.

    `message` is what the adapter parsed (JSON), `raw` the request body when the worker parses it."""
    message = strip_nul(message)
    if connection.vendor != "postgresql":  # the SQLite fallback of `make run`
        try:
            with transaction.atomic():
                return InboundReceipt.objects.create(
                    tenant_id=inbox.tenant_id, inbox=inbox, provider_id=provider_id, message=message, raw=raw,
                    received_at=timezone.now(),
                ).pk
        except IntegrityError:
            return None
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [inbox.tenant_id, inbox.pk, provider_id, json.dumps(message), raw, timezone.now()])
        row = cursor.fetchone()
    return row[0] if row else None


def _pump_mark() -> str:
    # Per task queue, so test runs (each on its own queue) and deployments sharing a Redis do not meet.
    return f"receipt-pump:{getattr(settings, 'CELERY_TASK_DEFAULT_QUEUE', 'celery')}"


def _pump_mark_clear() -> None:
    try:
        cache.delete(_pump_mark())
    except Exception as exc:  # the cache is Redis: down, the mark is gone with it or expires
        logger.warning("Could not clear the receipt pump's mark: %s", exc)


def receipts_pump_enqueue() -> None:
    """Have a pump store the pending receipts, unless one is already waiting to start (it will find them)."""
    from channels_app.tasks import pump_inbound_receipts

    try:
        if not cache.add(_pump_mark(), "queued", timeout=PUMP_MARK_SECONDS):
            return
    except Exception as exc:  # no cache: enqueue anyway (with the broker on the same Redis, that fails too)
        logger.warning("Receipt pump mark unavailable (%s); enqueuing a pump", exc)
    try:
        pump_inbound_receipts.delay()
    except BrokerError:
        # The receipts are committed; the next webhook tries again, the sweeper stores them in any case.
        _pump_mark_clear()
        logger.error("Could not enqueue the receipt pump: broker unavailable; the sweeper will take the receipts")


def _refuse(receipt: InboundReceipt, reason: str) -> None:
    logger.error("Receipt %s of inbox %s not stored: %s", receipt.pk, receipt.inbox_id, reason)
    receipt.processed_at = timezone.now()
    receipt.outcome = "refused"
    receipt.error = reason[:500]
    receipt.save(update_fields=["processed_at", "outcome", "error"])


def _pending_locked():
    """Unprocessed receipts, each locked by the transaction that takes it; ones another worker holds are skipped."""
    return (
        InboundReceipt.objects.select_for_update(skip_locked=True, of=("self",)).select_related("inbox__tenant")
        .filter(processed_at__isnull=True)
    )


def receipt_process(*, tenant_id: int, receipt_id: int) -> ReceiptOutcome | None:
    """Store one receipt's message on the customer's timeline, with its side effects.

    Returns None when there is nothing to do: already processed, being processed by another worker, or
    refused. A database outage raises, and the receipt stays pending for a retry or the sweeper.
    """
    with transaction.atomic():
        receipt = _pending_locked().filter(tenant_id=tenant_id, pk=receipt_id).first()
        if receipt is None:
            return None
        return _store_locked(receipt)


def _store_locked(receipt: InboundReceipt) -> ReceiptOutcome | None:
    """Inside the transaction holding the receipt's lock: its message stored and the receipt marked done.

    A refusal (a sender nobody could answer, a value the database refuses) marks the receipt refused and is
    never retried; the savepoint keeps what the adapter wrote before it out."""
    adapter = get_adapter(receipt.inbox.channel)
    try:
        with transaction.atomic():
            done = adapter.receipt_record(receipt)
    except (InvalidIdentity, ConversationError) as exc:
        _refuse(receipt, " ".join(exc.messages))
        return None
    except MalformedInbound as exc:
        _refuse(receipt, str(exc))
        return None
    except DataError as exc:
        # A value the database refuses (too long for its column…): retrying would not help.
        _refuse(receipt, f"The message has a value that cannot be stored: {exc}")
        return None
    receipt.processed_at = timezone.now()
    receipt.entry = done.entry
    receipt.outcome = done.outcome
    receipt.detail = done.detail[:300]
    receipt.save(update_fields=["processed_at", "entry", "outcome", "detail"])
    return done


def receipts_pump(*, limit: int = PUMP_BATCH) -> int:
    """Store pending receipts of every tenant, oldest first, each in its own transaction, until none is left
    (or `limit`, then a fresh pump goes on so other tasks get a turn). How many were taken.

    The mark is cleared first: a receipt committed from now on enqueues another pump, so none waits for a pump
    that already looked. While receipts are pending, a pump also keeps one more queued, which a free worker
    process starts beside it (the row locks keep them apart): a backlog is worked by every process. A
    receipt that fails with a non-transient database error is left for the sweeper.
    """
    _pump_mark_clear()
    # Tasks run inline (tests, CELERY_TASK_ALWAYS_EAGER) have no other process to help.
    helpers = not current_app.conf.task_always_eager
    taken, failed = 0, set()
    while taken < limit:
        with transaction.atomic():
            receipt = _pending_locked().exclude(pk__in=failed).order_by("received_at", "pk").first()
            if receipt is None:
                return taken
            receipt_id = receipt.pk
            try:
                # No savepoint of its own: the adapter's writes have one (`_store_locked`), and an error after
                # them leaves this transaction marked for rollback, which releases the receipt untouched.
                _store_locked(receipt)
            except (OperationalError, InterfaceError):
                raise
            except DatabaseError:
                logger.exception("Receipt %s could not be stored; it stays pending", receipt_id)
                failed.add(receipt_id)
            else:
                # Not after a failure: a helper would only fail on the same receipt, and enqueue the next.
                if helpers:
                    transaction.on_commit(receipts_pump_enqueue)
        taken += 1
    receipts_pump_enqueue()
    return taken


def receipts_pending(*, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_BATCH) -> list[tuple[int, int]]:
    """(tenant id, receipt id) of receipts nobody has processed for a while, oldest first (a lost task, a
    broker outage). Every tenant's: the sweeper is a maintenance job, like the outbound sweep."""
    cutoff = timezone.now() - older_than
    return list(
        InboundReceipt.objects.filter(processed_at__isnull=True, received_at__lte=cutoff)
        .order_by("received_at", "pk").values_list("tenant_id", "pk")[:limit]
    )


def receipts_sweep(*, older_than: timedelta = SWEEP_AFTER) -> int:
    """Process the pending receipts in arrival order; how many were stored."""
    stored = 0
    for tenant_id, receipt_id in receipts_pending(older_than=older_than):
        try:
            stored += receipt_process(tenant_id=tenant_id, receipt_id=receipt_id) is not None
        except (OperationalError, InterfaceError):
            logger.error("Database unavailable; receipts stay pending for the next sweep")
            break
        except DatabaseError:
            # One receipt the code cannot store (a bug, a missing migration) must not hold up the others.
            logger.exception("Receipt %s of tenant %s could not be stored; it stays pending", receipt_id, tenant_id)
    return stored
