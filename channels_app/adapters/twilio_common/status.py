"""Twilio's status callbacks move an outbound message forward: sent, delivered, read, or failed."""

from __future__ import annotations

import logging

from django.db.models import Q

from channels_app.models import Inbox
from conversations.models import DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import message_set_delivery_status

from .errors import twilio_error_explanation

logger = logging.getLogger(__name__)

# Twilio's MessageStatus -> ours. queued/accepted/scheduled/sending say nothing we do not know yet.
TWILIO_STATUS = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
IGNORED_STATUSES = {"queued", "accepted", "scheduled", "sending", "receiving", "received", "partially_delivered"}


def _outbound_entry(inbox: Inbox, message_sid: str, entry_hint: str) -> TimelineEntry | None:
    """The inbox's own outbound message with this SID; another inbox's or tenant's is never found."""
    entries = TimelineEntry.objects.for_tenant(inbox.tenant_id).filter(
        inbox=inbox, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND
    )
    entry = entries.filter(external_id=message_sid).first()
    if entry is None and entry_hint.isdigit():
        # The callback overtook the worker recording the SID; the URL we gave Twilio names the entry.
        entry = entries.filter(Q(external_id__isnull=True) | Q(external_id=message_sid), pk=int(entry_hint)).first()
    return entry


def twilio_status_record(
    *, inbox: Inbox, message_sid: str, status: str, error_code: str = "", error_message: str = "", entry_hint: str = ""
) -> TimelineEntry | None:
    """Apply one status callback; returns the message it moved, or None when it was ignored."""
    new_status = TWILIO_STATUS.get(status)
    if new_status is None:
        if status not in IGNORED_STATUSES:
            logger.info("Ignoring unknown Twilio status %r for %s", status, message_sid)
        return None
    entry = _outbound_entry(inbox, message_sid, entry_hint)
    if entry is None:
        logger.info("Status %r for unknown MessageSid %s on inbox %s ignored", status, message_sid, inbox.pk)
        return None
    reason = twilio_error_explanation(error_code, error_message) if new_status == DeliveryStatus.FAILED else ""
    return message_set_delivery_status(
        tenant=inbox.tenant, entry=entry, status=new_status, external_id=message_sid,
        error_code=error_code if new_status == DeliveryStatus.FAILED else "", reason=reason,
    )
