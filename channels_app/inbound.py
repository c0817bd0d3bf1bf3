"""The inbound flow every webhook shares: find the inbox, verify, parse, store, acknowledge.

The provider is answered only after the message is committed, so an acknowledged message is never lost;
a database outage answers 503 so the provider retries. Most channels store with `message_record_inbound`
before answering; Twilio commits a receipt and stores the message from the worker
(`channels_app.adapters.twilio_common.receipts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from channels_app.adapters.base import ChannelAdapter, MalformedInbound, SignatureError
from channels_app.models import Inbox
from conversations.services import ConversationError, InboundMessage, InboundResult, message_record_inbound
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)

INBOX_CACHE_SIZE = 1000
# How long a process may answer a provider's webhooks with an inbox it looked up before. A change to an inbox
# (deactivated, a new secret) reaches the other processes within this time; the process that saved it
# forgets its copy at once (inbox_changed).
HOOK_INBOX_CACHE_SECONDS = 5.0
_inbox_cache: dict[str, tuple[float, Inbox]] = {}


class InboundRejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> JsonResponse:
        response = JsonResponse({"detail": self.detail}, status=self.status)
        if self.status == 503:
            response["Retry-After"] = "30"
        return response


def inbox_for_hook(key: str, channels: Iterable[str], *, cache_seconds: float = 0) -> Inbox:
    """The inbox a webhook URL names. The key alone selects the tenant; unknown keys are a 404.

    With `cache_seconds`, a found inbox is remembered by this process for that long (busy webhooks: the
    lookup was a fifth of a Twilio request's CPU); changes to it (deactivation, a new token) then take up
    to that long to apply. Unknown keys are never remembered.
    """
    cached = _inbox_cache.get(key) if cache_seconds else None
    if cached is not None and time.monotonic() - cached[0] < cache_seconds:
        inbox = cached[1]
    else:
        try:
            inbox = Inbox.objects.select_related("tenant").filter(key=key, is_active=True).first()
        except (OperationalError, InterfaceError) as exc:
            logger.error("Database unavailable looking up inbox: %s", exc)
            raise InboundRejected(503, "Storage is unavailable; retry later.") from exc
        if inbox is not None and cache_seconds:
            if len(_inbox_cache) >= INBOX_CACHE_SIZE:
                _inbox_cache.clear()
            _inbox_cache[key] = (time.monotonic(), inbox)
    if inbox is None or inbox.channel not in set(channels):
        raise InboundRejected(404, "Unknown inbox.")
    return inbox


def inbox_cache_clear() -> None:
    _inbox_cache.clear()


@receiver(post_save, sender=Inbox, dispatch_uid="inbound-inbox-changed-save")
@receiver(post_delete, sender=Inbox, dispatch_uid="inbound-inbox-changed-delete")
def inbox_changed(sender, instance: Inbox, **kwargs) -> None:
    for key in [key for key, (_, cached) in _inbox_cache.items() if cached.pk == instance.pk or key == instance.key]:
        _inbox_cache.pop(key, None)


def inbound_message(request: HttpRequest, inbox: Inbox, adapter: ChannelAdapter) -> InboundMessage:
    """Verify and parse one inbound message; raise InboundRejected with the HTTP answer."""
    try:
        adapter.verify(request, inbox)
    except SignatureError as exc:
        logger.warning("Rejected %s webhook for inbox %s: %s", adapter.channel, inbox.pk, exc)
        raise InboundRejected(403, str(exc) or "Bad signature.") from exc
    try:
        return adapter.parse_inbound(request, inbox)
    except MalformedInbound as exc:
        logger.info("Malformed %s webhook for inbox %s: %s", adapter.channel, inbox.pk, exc)
        raise InboundRejected(exc.status, str(exc)) from exc


@contextmanager
def storage_answers(channel: str, inbox: Inbox) -> Iterator[None]:
    """Database failures while storing, as the HTTP answers providers understand: 503 retries, 400 does not."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        logger.error("Database unavailable storing a %s message: %s", channel, exc)
        raise InboundRejected(503, "Storage is unavailable; retry later.") from exc
    except DataError as exc:
        # A value the database refuses (too long for its column…): retrying would not help.
        logger.exception("Unstorable %s message for inbox %s", channel, inbox.pk)
        raise InboundRejected(400, "The message has a value that cannot be stored (too long or malformed).") from exc
    except DatabaseError as exc:
        logger.exception("Database error storing a %s message", channel)
        raise InboundRejected(503, "Storage failed; retry later.") from exc


def inbound_accept(request: HttpRequest, inbox: Inbox, adapter: ChannelAdapter) -> InboundResult:
    """Verify, parse and store one inbound message; raise InboundRejected with the HTTP answer."""
    message = inbound_message(request, inbox, adapter)
    with storage_answers(adapter.channel, inbox):
        try:
            return message_record_inbound(tenant=inbox.tenant, inbox=inbox, message=message)
        except InvalidIdentity as exc:
            raise InboundRejected(400, " ".join(exc.messages)) from exc
        except ConversationError as exc:
            raise InboundRejected(400, " ".join(exc.messages)) from exc


def inbound_webhook(request: HttpRequest, *, key: str, channels: Iterable[str], adapter: ChannelAdapter) -> HttpResponse:
    """A whole webhook view body for channels whose answer depends only on the stored result."""
    if request.method != "POST":
        return JsonResponse({"detail": "Use POST."}, status=405)
    try:
        inbox = inbox_for_hook(key, channels)
        result = inbound_accept(request, inbox, adapter)
    except InboundRejected as exc:
        return exc.response()
    return adapter.inbound_response(result)
