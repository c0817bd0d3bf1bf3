"""Twilio webhooks. SMS and WhatsApp inboxes share the routes; the inbox's channel picks the adapter."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from kombu.exceptions import OperationalError as BrokerError

from channels_app.adapters.base import SignatureError, get_adapter
from channels_app.adapters.twilio_common.adapter import TwilioAdapter
from channels_app.adapters.twilio_common.status import twilio_status_record
from channels_app.adapters.twilio_common.tasks import fetch_twilio_media
from channels_app.inbound import InboundRejected, inbound_accept, inbox_for_hook
from channels_app.models import Channel, Inbox
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
    inbox = inbox_for_hook(key, TWILIO_CHANNELS)
    return inbox, get_adapter(inbox.channel)


def _enqueue_media(inbox: Inbox, entry_id: int, count: int) -> None:
    for index in range(count):
        try:
            fetch_twilio_media.delay(inbox.tenant_id, entry_id, index)
        except BrokerError:
            # The message is stored with its media URLs; only the copy is missing.
            logger.error("Could not enqueue media %s of entry %s: broker unavailable", index, entry_id)


@csrf_exempt
def messages_hook(request: HttpRequest, key: str) -> HttpResponse:
    try:
        inbox, adapter = _twilio_inbox(request, key)
        result = inbound_accept(request, inbox, adapter)
    except InboundRejected as exc:
        return exc.response()
    if result.created:
        try:
            adapter.inbound_recorded(inbox, result)
        except DatabaseError:
            logger.exception("Stored message %s but could not apply its side effects", result.entry.pk)
            return InboundRejected(503, "Storage is unavailable; retry later.").response()
        media_count = len(result.entry.data.get("media") or [])
        if media_count:
            transaction.on_commit(lambda: _enqueue_media(inbox, result.entry.pk, media_count))
    return adapter.inbound_response(result)


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
