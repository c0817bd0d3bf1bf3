"""The raw-mail webhook: an MTA pipe or a provider's raw forward posts one RFC 822 message per request."""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.adapters.base import MalformedInbound, SignatureError
from channels_app.adapters.email.adapter import EmailAdapter, read_raw
from channels_app.adapters.email.services import email_receive
from channels_app.inbound import HOOK_INBOX_CACHE_SECONDS, InboundRejected, inbox_for_hook
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)


@csrf_exempt
def inbound(request: HttpRequest, key: str) -> JsonResponse:
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
            receipt = email_receive(inbox=inbox, raw=read_raw(request))
        except MalformedInbound as exc:
            logger.info("Refused an e-mail to inbox %s: %s", inbox.pk, exc)
            raise InboundRejected(exc.status, str(exc)) from exc
        except InvalidIdentity as exc:
            raise InboundRejected(400, " ".join(exc.messages)) from exc
        except (OperationalError, InterfaceError, DatabaseError) as exc:
            logger.error("Storage failed for an e-mail to inbox %s: %s", inbox.pk, exc)
            raise InboundRejected(503, "Storage is unavailable; retry later.") from exc
    except InboundRejected as exc:
        return exc.response()
    return JsonResponse({
        "outcome": receipt.outcome, "detail": receipt.detail, "entry_id": receipt.entry.pk if receipt.entry else None,
    })
