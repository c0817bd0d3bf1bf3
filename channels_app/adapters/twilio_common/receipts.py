"""Twilio's part of persist-first ingest (`channels_app.receipts`): the receipt holds the parsed message."""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from channels_app.models import InboundReceipt, Inbox
from channels_app.receipts import ReceiptOutcome, receipt_store
from conversations.services import InboundMessage, message_record_inbound

logger = logging.getLogger(__name__)


def twilio_receipt_store(*, inbox: Inbox, message: InboundMessage) -> int | None:
    """The webhook's part: the parsed message as a receipt; its id, or None for a re-delivered message."""
    fields = {k: v for k, v in asdict(message).items() if k != "received_at"}
    return receipt_store(inbox=inbox, provider_id=message.external_id, message=fields)


def twilio_receipt_record(receipt: InboundReceipt, adapter) -> ReceiptOutcome:
    """The worker's part: the message on the timeline, its side effects (opt-out keywords), its media fetched."""
    inbox = receipt.inbox
    message = InboundMessage(**receipt.message, received_at=receipt.received_at)
    result = message_record_inbound(tenant=inbox.tenant, inbox=inbox, message=message)
    if not result.created:
        return ReceiptOutcome("duplicate", "Already stored.", result.entry)
    adapter.inbound_recorded(inbox, result)
    media_count = len(result.entry.data.get("media") or [])
    if media_count:
        tenant_id, entry_id = inbox.tenant_id, result.entry.pk
        transaction.on_commit(lambda: _enqueue_media(tenant_id, entry_id, media_count))
    return ReceiptOutcome("stored", f"Stored in conversation #{result.conversation.number}.", result.entry)


def _enqueue_media(tenant_id: int, entry_id: int, count: int) -> None:
    from channels_app.adapters.twilio_common.tasks import fetch_twilio_media

    for index in range(count):
        try:
            fetch_twilio_media.delay(tenant_id, entry_id, index)
        except BrokerError:
            # The message is stored with its media URLs; only the copy is missing.
            logger.error("Could not enqueue media %s of entry %s: broker unavailable", index, entry_id)
