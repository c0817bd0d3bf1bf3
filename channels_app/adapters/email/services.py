"""Receiving one e-mail, whichever way it came in (the raw webhook or IMAP polling).

A person's mail goes through the shared `message_record_inbound` with its thread as a hint;
auto-replies and bounces never do (they would open conversations and invite replies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from channels_app.adapters.base import MalformedInbound
from channels_app.adapters.email.noise import auto_reply_reason, bounce_details, is_bounce
from channels_app.adapters.email.parsing import EmailParseError, ParsedEmail, parse_email
from channels_app.adapters.email.threads import thread_find
from channels_app.models import Channel, Inbox
from conversations.models import Conversation, DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import (
    InboundMessage,
    attachment_store,
    message_record_inbound,
    message_set_delivery_status,
    timeline_add_event,
)
from customers.models import IdentityKind

logger = logging.getLogger(__name__)

# The raw webhook refuses bigger messages with 413; providers cap mail at 25 MB as well.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class EmailReceipt:
    outcome: str  # "stored", "duplicate", "bounce", "auto_reply" or "ignored"
    detail: str
    entry: TimelineEntry | None = None


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


def email_inbound_message(*, inbox: Inbox, parsed: ParsedEmail) -> InboundMessage:
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
        conversation_hint=thread.conversation_id,
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


def _bounce_record(*, inbox: Inbox, parsed: ParsedEmail) -> EmailReceipt:
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
        return EmailReceipt("bounce", "A bounce for no message we know; ignored.")
    if not bounce.permanent:
        return EmailReceipt("bounce", "A delay notice; the message may still arrive.", outbound)
    reason = f"Bounced by {bounce.recipient or 'the recipient server'}: {bounce.diagnostic}".strip()
    message_set_delivery_status(
        tenant=inbox.tenant, entry=outbound, status=DeliveryStatus.FAILED, error_code=bounce.status or "bounce",
        reason=reason,
    )
    return EmailReceipt("bounce", "The bounced message was marked failed.", outbound)


def _auto_reply_record(*, inbox: Inbox, parsed: ParsedEmail, reason: str) -> EmailReceipt:
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
        return EmailReceipt("ignored", f"An automatic reply ({reason}) to no conversation; dropped.")
    events = TimelineEntry.objects.for_tenant(inbox.tenant).filter(conversation=conversation, event="email_auto_reply")
    existing = events.filter(data__message_id=parsed.message_id).first()
    if existing is not None:
        return EmailReceipt("auto_reply", "Already recorded.", existing)
    entry = timeline_add_event(
        tenant=inbox.tenant, customer=conversation.customer, conversation=conversation, event="email_auto_reply",
        data={"message_id": parsed.message_id, "from": parsed.from_address, "subject": parsed.subject,
              "reason": reason, "body": parsed.body[:2000]},
    )
    return EmailReceipt("auto_reply", "Recorded as an automatic reply; no conversation was opened.", entry)


@transaction.atomic
def email_receive(*, inbox: Inbox, raw: bytes, parsed: ParsedEmail | None = None) -> EmailReceipt:
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
        tenant=inbox.tenant, inbox=inbox, message=email_inbound_message(inbox=inbox, parsed=parsed)
    )
    if not result.created:
        return EmailReceipt("duplicate", "Already stored.", result.entry)
    _store_files(inbox=inbox, entry=result.entry, parsed=parsed, raw=raw)
    return EmailReceipt("stored", f"Stored in conversation #{result.conversation.number} ({result.continuity}).", result.entry)
