"""The raw-mail webhook: an MTA pipe or a provider's raw forward posts one RFC 822 message per request."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.adapters.base import MalformedInbound, SignatureError
from channels_app.adapters.email.adapter import EmailAdapter, read_raw
from channels_app.adapters.email.services import email_accept
from channels_app.inbound import HOOK_INBOX_CACHE_SECONDS, InboundRejected, inbox_for_hook, storage_answers
from channels_app.receipts import receipts_pump_enqueue
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)


@csrf_exempt
def inbound(request: HttpRequest, key: str) -> JsonResponse:
    """Verify, parse, commit a receipt of the raw mail, answer 202; the worker stores it (channels_app.receipts)."""
    if request.method != "POST":
        return JsonResponse({"detail": "Use POST with the raw message as the body."}, status=405)
    adapter = EmailAdapter()
    try:
        inbox = inbox_for_hook(key, [adapter.channel], cache_seconds=HOOK_INBOX_CACHE_SECONDS)
        try:
            adapter.verify(request, inbox)
        except SignatureError as exc:
            logger.warning("Rejected e-mail webhook for inbox %s: %s", inbox.pk, exc)
            raise InboundRejected(403, str(exc)) from exc
        try:
            with storage_answers(adapter.channel, inbox):
                receipt_id = email_accept(inbox=inbox, raw=read_raw(request))
        except MalformedInbound as exc:
            logger.info("Refused an e-mail to inbox %s: %s", inbox.pk, exc)
            raise InboundRejected(exc.status, str(exc)) from exc
        except InvalidIdentity as exc:
            raise InboundRejected(400, " ".join(exc.messages)) from exc
    except InboundRejected as exc:
        return exc.response()
    if receipt_id is None:
        return JsonResponse({"outcome": "duplicate", "detail": "This message was received before."})
    transaction.on_commit(receipts_pump_enqueue)
    return JsonResponse(
        {"outcome": "accepted", "receipt_id": receipt_id, "detail": "Received; it goes on the timeline in a moment."},
        status=202,
    )
