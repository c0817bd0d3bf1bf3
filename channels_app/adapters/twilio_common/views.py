"""Twilio webhooks. SMS and WhatsApp inboxes share the routes; the inbox's channel picks the adapter."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.adapters.base import SignatureError, get_adapter
from channels_app.adapters.twilio_common.adapter import TwilioAdapter
from channels_app.adapters.twilio_common.receipts import twilio_receipt_store
from channels_app.adapters.twilio_common.status import twilio_status_record
from channels_app.inbound import (
    HOOK_INBOX_CACHE_SECONDS,
    InboundRejected,
    inbound_message,
    inbox_for_hook,
    storage_answers,
)
from channels_app.models import Channel, Inbox
from channels_app.receipts import receipts_pump_enqueue
from conversations.services import ConversationError

logger = logging.getLogger(__name__)

TWILIO_CHANNELS = (Channel.SMS, Channel.WHATSAPP)


def _twilio_inbox(request: HttpRequest, key: str) -> tuple[Inbox, TwilioAdapter]:
    if request.method != "POST":
        raise InboundRejected(405, "Use POST.")
    try:
        request.POST  # noqa: B018 - parse now, so size limits answer 413 rather than fail later
    except (RequestDataTooBig, TooManyFieldsSent) as exc:
        raise InboundRejected(413, "The request is too large.") from exc
    inbox = inbox_for_hook(key, TWILIO_CHANNELS, cache_seconds=HOOK_INBOX_CACHE_SECONDS)
    return inbox, get_adapter(inbox.channel)


@csrf_exempt
def messages_hook(request: HttpRequest, key: str) -> HttpResponse:
    """Verify, parse, commit a receipt, answer; the worker stores the message (see `receipts`)."""
    try:
        inbox, adapter = _twilio_inbox(request, key)
        message = inbound_message(request, inbox, adapter)
        with storage_answers(adapter.channel, inbox):
            receipt_id = twilio_receipt_store(inbox=inbox, message=message)
    except InboundRejected as exc:
        return exc.response()
    if receipt_id is not None:  # None: a re-delivery of a message already received
        transaction.on_commit(receipts_pump_enqueue)
    return adapter.inbound_response(None)


@csrf_exempt
def status_hook(request: HttpRequest, key: str) -> HttpResponse:
    try:
        inbox, adapter = _twilio_inbox(request, key)
        adapter.verify(request, inbox)
    except InboundRejected as exc:
        return exc.response()
    except SignatureError as exc:
        logger.warning("Rejected Twilio status callback for inbox %s: %s", inbox.pk, exc)
        return JsonResponse({"detail": str(exc)}, status=403)
    message_sid = request.POST.get("MessageSid", "").strip()
    status = request.POST.get("MessageStatus", "").strip().lower()
    if not message_sid or not status:
        return JsonResponse({"detail": "MessageSid and MessageStatus are required."}, status=400)
    try:
        twilio_status_record(
            inbox=inbox, message_sid=message_sid[:255], status=status,
            error_code=request.POST.get("ErrorCode", "").strip()[:32],
            error_message=request.POST.get("ErrorMessage", "")[:300], entry_hint=request.GET.get("entry", ""),
        )
    except ConversationError as exc:
        logger.warning("Twilio status %s for %s not applied: %s", status, message_sid, exc)
    except DatabaseError:
        logger.exception("Could not record Twilio status %s for %s", status, message_sid)
        return InboundRejected(503, "Storage is unavailable; retry later.").response()
    return HttpResponse(status=200)
