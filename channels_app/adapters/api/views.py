from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.adapters.api.adapter import MAX_BODY_BYTES, ApiAdapter, parse_payload
from channels_app.adapters.api.services import api_inbound_complete
from channels_app.inbound import HOOK_INBOX_CACHE_SECONDS, InboundRejected, inbound_accept, inbox_for_hook
from channels_app.models import Channel

logger = logging.getLogger(__name__)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
def messages(request: HttpRequest, key: str) -> HttpResponse:
    """Verify, parse and store one message; attachments and address links commit with it or not at all."""
    if request.method != "POST":
        return JsonResponse({"detail": "Use POST."}, status=405)
    adapter = ApiAdapter()
    try:
        inbox = inbox_for_hook(key, [Channel.API], cache_seconds=HOOK_INBOX_CACHE_SECONDS)
        # Refused before the body is read (Django would also refuse past DATA_UPLOAD_MAX_MEMORY_SIZE, as a 400).
        if _declared_length(request) > MAX_BODY_BYTES:
            raise InboundRejected(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
        with transaction.atomic():
            result = inbound_accept(request, inbox, adapter)
            if result.created:
                payload = parse_payload(request.body, region=inbox.tenant.default_region)
                api_inbound_complete(tenant=inbox.tenant, entry=result.entry, payload=payload)
    except InboundRejected as exc:
        return exc.response()
    except (OperationalError, InterfaceError) as exc:
        logger.error("Database unavailable completing an API message: %s", exc)
        return InboundRejected(503, "Storage is unavailable; retry later.").response()
    return adapter.inbound_response(result)
