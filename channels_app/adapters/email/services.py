"""Receiving one e-mail, whichever way it came in (the raw webhook or IMAP polling).

The webhook commits a receipt holding the raw mail (`email_accept`) and the worker stores it
(`email_receipt_record`); IMAP polling runs in the worker already and stores at once (`email_receive`).
A person's mail goes through the shared `message_record_inbound` with its thread as a hint;
auto-replies and bounces never do (they would open conversations and invite replies).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from django.db import transaction

from channels_app.adapters.base import MalformedInbound
from channels_app.adapters.email.noise import auto_reply_reason, bounce_details, is_bounce
from channels_app.adapters.email.parsing import EmailParseError, ParsedEmail, parse_email
from channels_app.adapters.email.threads import thread_find
from channels_app.models import Channel, InboundReceipt, Inbox
from channels_app.receipts import ReceiptOutcome, receipt_store
from conversations.models import Conversation, DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import (
    InboundMessage,
    attachment_store,
    message_record_inbound,
    message_set_delivery_status,
    timeline_add_event,
)
from customers.identities import normalize_identity
from customers.models import IdentityKind

logger = logging.getLogger(__name__)

# The raw webhook refuses bigger messages with 413; providers cap mail at 25 MB as well.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def email_parse(raw: bytes) -> ParsedEmail:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedInbound(f"The message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}.", status=413)
    try:
        parsed = parse_email(raw)
    except EmailParseError as exc:
        raise MalformedInbound(f"Not an e-mail message: {exc}") from exc
    if not parsed.from_address:
        raise MalformedInbound("The message has no From address, so nobody could be answered.")
    return parsed


def email_inbound_message(*, inbox: Inbox, parsed: ParsedEmail, received_at: datetime | None = None) -> InboundMessage:
    thread = thread_find(
        tenant=inbox.tenant, sender=parsed.from_address, in_reply_to=parsed.in_reply_to, references=parsed.references,
        subject=parsed.subject,
    )
    data = {
        "from": parsed.from_address, "to": parsed.to, "cc": parsed.cc, "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to, "references": parsed.references[-50:],
        "text": parsed.text, "html": parsed.html, "threaded_by": thread.matched_by or "continuity",
    }
    if parsed.warnings:
        data["parse_warnings"] = parsed.warnings
    return InboundMessage(
        channel=Channel.EMAIL, sender_kind=IdentityKind.EMAIL, sender_value=parsed.from_address, body=parsed.body,
        sender_name=parsed.from_name, external_id=parsed.message_id, subject=parsed.subject, data=data,
        conversation_hint=thread.conversation_id, received_at=received_at,
    )


def _store_files(*, inbox: Inbox, entry: TimelineEntry, parsed: ParsedEmail, raw: bytes) -> None:
    inline: dict[str, int] = {}
    for attachment in parsed.attachments:
        stored = attachment_store(
            tenant=inbox.tenant, entry=entry, filename=attachment.filename, content=attachment.content,
            content_type=attachment.content_type,
        )
        if attachment.content_id:
            inline[attachment.content_id] = stored.pk
    # The message exactly as it arrived: what was stripped or sanitized for display is never lost.
    original = attachment_store(
        tenant=inbox.tenant, entry=entry, filename="original.eml", content=raw, content_type="message/rfc822"
    )
    entry.data = {**entry.data, "original_attachment_id": original.pk, **({"inline": inline} if inline else {})}
    entry.save(update_fields=["data"])


def _bounce_record(*, inbox: Inbox, parsed: ParsedEmail) -> ReceiptOutcome:
    bounce = bounce_details(parsed)
    outbound = None
    if bounce.original_message_id:
        outbound = (
            TimelineEntry.objects.for_tenant(inbox.tenant)
            .filter(external_id=bounce.original_message_id, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND,
                    channel=Channel.EMAIL).first()
        )
    if outbound is None:
        logger.info("Bounce %s in inbox %s matches no message we sent", parsed.message_id, inbox.pk)
        return ReceiptOutcome("bounce", "A bounce for no message we know; ignored.")
    if not bounce.permanent:
        return ReceiptOutcome("bounce", "A delay notice; the message may still arrive.", outbound)
    reason = f"Bounced by {bounce.recipient or 'the recipient server'}: {bounce.diagnostic}".strip()
    message_set_delivery_status(
        tenant=inbox.tenant, entry=outbound, status=DeliveryStatus.FAILED, error_code=bounce.status or "bounce",
        reason=reason,
    )
    return ReceiptOutcome("bounce", "The bounced message was marked failed.", outbound)


def _auto_reply_record(*, inbox: Inbox, parsed: ParsedEmail, reason: str) -> ReceiptOutcome:
    """An auto-reply to one of our mails shows as a quiet event in that conversation; any other is dropped."""
    thread = thread_find(
        tenant=inbox.tenant, sender=parsed.from_address, in_reply_to=parsed.in_reply_to, references=parsed.references,
        subject=parsed.subject,
    )
    conversation = (
        Conversation.objects.for_tenant(inbox.tenant).select_related("customer").filter(pk=thread.conversation_id).first()
        if thread.conversation_id else None
    )
    if conversation is None:
        return ReceiptOutcome("ignored", f"An automatic reply ({reason}) to no conversation; dropped.")
    events = TimelineEntry.objects.for_tenant(inbox.tenant).filter(conversation=conversation, event="email_auto_reply")
    existing = events.filter(data__message_id=parsed.message_id).first()
    if existing is not None:
        return ReceiptOutcome("auto_reply", "Already recorded.", existing)
    entry = timeline_add_event(
        tenant=inbox.tenant, customer=conversation.customer, conversation=conversation, event="email_auto_reply",
        data={"message_id": parsed.message_id, "from": parsed.from_address, "subject": parsed.subject,
              "reason": reason, "body": parsed.body[:2000]},
    )
    return ReceiptOutcome("auto_reply", "Recorded as an automatic reply; no conversation was opened.", entry)


def email_receipt_key(message_id: str) -> str:
    """The receipt's provider id: the Message-ID, or a digest of one longer than the column."""
    if len(message_id) <= InboundReceipt._meta.get_field("provider_id").max_length:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()[:56]


def email_accept(*, inbox: Inbox, raw: bytes) -> int | None:
    """The webhook's part: refuse at once what could never be stored, commit the raw mail as a receipt.

    Raises MalformedInbound (not a mail, too big, no From) or InvalidIdentity (a person's mail from an address
    nobody could answer; bounces and auto-replies are not answered, so their sender is not checked). Returns the
    receipt's id, or None when this Message-ID was received before.
    """
    parsed = email_parse(raw)
    if not is_bounce(parsed) and not auto_reply_reason(parsed):
        normalize_identity(IdentityKind.EMAIL, parsed.from_address, region=inbox.tenant.default_region)
    summary = {"from": parsed.from_address, "subject": parsed.subject[:200], "message_id": parsed.message_id}
    return receipt_store(inbox=inbox, provider_id=email_receipt_key(parsed.message_id), message=summary, raw=raw)


def email_receipt_record(receipt: InboundReceipt) -> ReceiptOutcome:
    """The worker's part: the receipt's mail stored as if it had just arrived (at the time it did)."""
    return email_receive(inbox=receipt.inbox, raw=bytes(receipt.raw or b""), received_at=receipt.received_at)


@transaction.atomic
def email_receive(
    *, inbox: Inbox, raw: bytes, parsed: ParsedEmail | None = None, received_at: datetime | None = None
) -> ReceiptOutcome:
    """Store one inbound e-mail for `inbox`. Safe to call again with the same message.

    Raises MalformedInbound (nothing stored) or InvalidIdentity for a sender nobody could answer.
    """
    parsed = parsed or email_parse(raw)
    if is_bounce(parsed):
        return _bounce_record(inbox=inbox, parsed=parsed)
    reason = auto_reply_reason(parsed)
    if reason:
        return _auto_reply_record(inbox=inbox, parsed=parsed, reason=reason)
    result = message_record_inbound(
        tenant=inbox.tenant, inbox=inbox, message=email_inbound_message(inbox=inbox, parsed=parsed, received_at=received_at)
    )
    if not result.created:
        return ReceiptOutcome("duplicate", "Already stored.", result.entry)
    _store_files(inbox=inbox, entry=result.entry, parsed=parsed, raw=raw)
    return ReceiptOutcome("stored", f"Stored in conversation #{result.conversation.number} ({result.continuity}).", result.entry)
