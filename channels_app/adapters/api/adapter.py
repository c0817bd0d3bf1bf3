"""The generic API channel: any system (a bot, a bridge, a mobile app) posts signed JSON in, and agent
replies are POSTed as signed JSON to the URL the inbox names.

Inbound contract (`POST /hooks/api/<key>/messages/`)::

    {"external_id": "m-1", "customer": {"identifier": "u-42", "name": "", "email": "", "phone": ""},
     "text": "Hello", "attachments": [{"filename": "a.png", "content_type": "image/png",
                                        "content_base64": "..."} | {"url": "https://...", "filename": "..."}]}

`external_id` must be unique per inbox for the sender's messages: a re-delivery with the same id
stores nothing new. URL attachments are recorded as links, never fetched by us (the URL is the sender's
choice, and fetching it from inside our network would let a sender probe that network).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest, HttpResponse, JsonResponse

from channels_app.adapters.api.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_for,
    signature_matches,
)
from channels_app.adapters.base import (
    AdapterError,
    ChannelAdapter,
    MalformedInbound,
    SendRefused,
    SignatureError,
)
from channels_app.models import Channel
from customers.identities import InvalidIdentity, normalize_email, normalize_identity, normalize_phone
from customers.models import IdentityKind
from omnidesk.lib.http import post_once

if TYPE_CHECKING:
    from channels_app.models import Inbox
    from conversations.models import Conversation, TimelineEntry
    from conversations.services import InboundMessage, InboundResult
    from customers.models import Identity

logger = logging.getLogger(__name__)
_SURROGATE = re.compile("[\ud800-\udfff]")

# Whole request body; checked from Content-Length before anything is read.
MAX_BODY_BYTES = 1024 * 1024
# One decoded attachment (base64 grows by a third, so one such file fits in a maximal body).
MAX_ATTACHMENT_BYTES = 700 * 1024
MAX_ATTACHMENTS = 10
DEFAULT_TIMEOUT_SECONDS = 10
# Enough of a receiver's answer to explain a failure in admin; the rest is not read.
# How long the links to a reply's files work; receivers may be queues that process hours later.
OUTBOUND_LINK_TTL = timedelta(days=7)
_url_validator = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class ApiAttachment:
    filename: str
    content_type: str
    content: bytes | None = None
    url: str = ""


@dataclass(frozen=True)
class ApiPayload:
    external_id: str
    identifier: str
    name: str
    email: str
    phone: str
    text: str
    attachments: tuple[ApiAttachment, ...]


def _optional_str(obj: dict, key: str, path: str, *, max_length: int) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedInbound(f"{path} must be a string, not {type(value).__name__}.")
    if len(value) > max_length:
        raise MalformedInbound(f"{path} is longer than {max_length} characters.")
    if "\x00" in value:
        # Postgres text cannot hold NUL; refusing here keeps it a 400 instead of a storage error.
        raise MalformedInbound(f"{path} contains a NUL character.")
    if _SURROGATE.search(value):
        # JSON may escape half a UTF-16 pair ("\ud800"): not text, and not encodable for Postgres.
        raise MalformedInbound(f"{path} contains an unpaired surrogate (\\ud800-\\udfff), which is not text.")
    return value.strip()


def _required_str(obj: dict, key: str, path: str, *, max_length: int) -> str:
    value = _optional_str(obj, key, path, max_length=max_length)
    if not value:
        raise MalformedInbound(f"{path} is required (a non-empty string).")
    return value


def _parse_attachment(item: Any, index: int) -> ApiAttachment:
    path = f"attachments[{index}]"
    if not isinstance(item, dict):
        raise MalformedInbound(f"{path} must be an object.")
    filename = _optional_str(item, "filename", f"{path}.filename", max_length=255) or "attachment"
    content_type = _optional_str(item, "content_type", f"{path}.content_type", max_length=127)
    encoded = _optional_str(item, "content_base64", f"{path}.content_base64", max_length=MAX_BODY_BYTES)
    url = _optional_str(item, "url", f"{path}.url", max_length=1000)
    if bool(encoded) == bool(url):
        raise MalformedInbound(f"{path} needs exactly one of content_base64 or url.")
    if url:
        try:
            _url_validator(url)
        except ValidationError as exc:
            raise MalformedInbound(f"{path}.url is not an http(s) URL.") from exc
        return ApiAttachment(filename=filename, content_type=content_type, url=url)
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInbound(f"{path}.content_base64 is not valid base64.") from exc
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise MalformedInbound(
            f"{path} is {len(content)} bytes; one attachment may have at most {MAX_ATTACHMENT_BYTES}.", status=413
        )
    return ApiAttachment(filename=filename, content_type=content_type, content=content)


def _parse_attachments(value: Any) -> tuple[ApiAttachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedInbound("attachments must be a list.")
    if len(value) > MAX_ATTACHMENTS:
        raise MalformedInbound(f"attachments has {len(value)} items; at most {MAX_ATTACHMENTS} are allowed.", status=413)
    return tuple(_parse_attachment(item, index) for index, item in enumerate(value))


def _normalized(path: str, normalize, *args: Any, **kwargs: Any) -> str:
    try:
        return normalize(*args, **kwargs)
    except InvalidIdentity as exc:
        raise MalformedInbound(f"{path}: {' '.join(exc.messages)}") from exc


def parse_payload(body: bytes, *, region: str) -> ApiPayload:
    """Validate the JSON contract; raise MalformedInbound naming the first bad field."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedInbound(f"The body is larger than {MAX_BODY_BYTES} bytes.", status=413)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedInbound("The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise MalformedInbound("The body must be a JSON object.")
    external_id = _required_str(data, "external_id", "external_id", max_length=255)
    customer = data.get("customer")
    if not isinstance(customer, dict):
        raise MalformedInbound("customer is required (an object with at least an identifier).")
    identifier = _required_str(customer, "identifier", "customer.identifier", max_length=255)
    name = _optional_str(customer, "name", "customer.name", max_length=200)
    email = _optional_str(customer, "email", "customer.email", max_length=320)
    phone = _optional_str(customer, "phone", "customer.phone", max_length=64)
    identifier = _normalized("customer.identifier", normalize_identity, IdentityKind.EXTERNAL, identifier, region=region)
    email = _normalized("customer.email", normalize_email, email) if email else ""
    phone = _normalized("customer.phone", normalize_phone, phone, region=region) if phone else ""
    text = _optional_str(data, "text", "text", max_length=MAX_BODY_BYTES)
    attachments = _parse_attachments(data.get("attachments"))
    if not text and not attachments:
        raise MalformedInbound("text is required (a non-empty string) unless the message has attachments.")
    return ApiPayload(
        external_id=external_id, identifier=identifier, name=name, email=email, phone=phone, text=text,
        attachments=attachments,
    )


def _receiver_id(content: bytes) -> str:
    try:
        answer = json.loads(content)
    except (ValueError, RecursionError):
        return ""
    value = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    return str(value).strip()[:255]


class ApiAdapter(ChannelAdapter):
    channel = Channel.API
    secret_names = ("secret",)
    setting_names = ("outbound_url", "timeout_seconds")
    # Files go as signed links in the JSON, which the receiver downloads within OUTBOUND_LINK_TTL.
    max_attachments = MAX_ATTACHMENTS
    max_attachment_bytes = 25_000_000
    max_attachments_total_bytes = 100_000_000

    def verify(self, request: HttpRequest, inbox: Inbox) -> None:
        secret = inbox.get_secret("secret")
        if not secret:
            raise SignatureError("This inbox has no signing secret; set one before sending messages to it.")
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not header:
            raise SignatureError(f"Missing {SIGNATURE_HEADER} header.")
        if not signature_matches(secret, request.body, header):
            raise SignatureError(f"Bad {SIGNATURE_HEADER}: sign the raw body with HMAC-SHA256 and the inbox secret.")

    def parse_inbound(self, request: HttpRequest, inbox: Inbox) -> InboundMessage:
        from conversations.services import InboundMessage

        payload = parse_payload(request.body, region=inbox.tenant.default_region)
        customer = {"identifier": payload.identifier, "name": payload.name, "email": payload.email, "phone": payload.phone}
        links = [{"url": a.url, "filename": a.filename, "content_type": a.content_type} for a in payload.attachments if a.url]
        data: dict[str, Any] = {"from": payload.identifier, "customer": customer}
        if links:
            data["attachment_links"] = links
        return InboundMessage(
            channel=self.channel, sender_kind=IdentityKind.EXTERNAL, sender_value=payload.identifier,
            sender_name=payload.name, body=payload.text, external_id=payload.external_id, data=data,
        )

    def inbound_response(self, result: InboundResult | None) -> HttpResponse:
        entry = result.entry
        return JsonResponse(
            {"message_id": entry.pk, "conversation": result.conversation.number, "customer_id": entry.customer_id},
            status=201 if result.created else 200,
        )

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        super().check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
        url = inbox.setting("outbound_url")
        if not url:
            raise SendRefused(f"The API inbox {inbox.name!r} has no outbound URL, so replies have nowhere to go; "
                              "an admin can set outbound_url in its settings.")
        try:
            _url_validator(url)
        except ValidationError as exc:
            raise SendRefused(f"The API inbox {inbox.name!r} has an outbound URL that is not http(s): {url!r}.") from exc
        if not inbox.get_secret("secret"):
            raise SendRefused(f"The API inbox {inbox.name!r} has no signing secret; an admin must set one.")

    def outbound_payload(self, entry: TimelineEntry, recipient: str, timestamp: int) -> dict[str, Any]:
        author = entry.author
        author_name = author.get_full_name() if author is not None else ""
        payload = {
            "event": "message.created",
            "message_id": entry.pk,
            "conversation": entry.conversation.number,
            "customer": {"id": entry.customer_id, "identifier": recipient},
            "text": entry.body,
            "author": {"id": author.pk if author is not None else None, "name": author_name},
            "created_at": entry.created_at.isoformat(),
            # Inside the signed body too, so a receiver can refuse replays of old deliveries.
            "timestamp": timestamp,
        }
        attachments = self.outbound_attachments(entry)
        if attachments:
            payload["attachments"] = attachments
        return payload

    def outbound_attachments(self, entry: TimelineEntry) -> list[dict[str, Any]]:
        from conversations.attachments import attachment_public_link

        described = []
        for attachment in entry.attachments.all():
            link = attachment_public_link(attachment, ttl=OUTBOUND_LINK_TTL)
            described.append({
                "filename": attachment.filename, "content_type": attachment.content_type, "size": attachment.size,
                "url": link.url, "expires_at": link.expires_at,
            })
        return described

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        url = inbox.setting("outbound_url")
        secret = inbox.get_secret("secret")
        if not url or not secret:
            raise AdapterError("The inbox has no outbound URL or signing secret.", permanent=True, code="not_configured")
        timestamp = int(time.time())
        body = json.dumps(self.outbound_payload(entry, recipient, timestamp), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Omnidesk-Webhook/1",
            SIGNATURE_HEADER: signature_for(secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            # Stable across retries: a receiver that saw this id already can drop the repeat.
            DELIVERY_HEADER: str(entry.pk),
        }
        try:
            timeout = min(max(float(inbox.setting("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)), 1.0), 30.0)
        except (TypeError, ValueError):
            timeout = DEFAULT_TIMEOUT_SECONDS
        try:
            status, content = post_once(url, body, headers, timeout)
        except ValueError as exc:
            raise AdapterError(f"The outbound URL {url!r} is unusable: {exc}", permanent=True, code="bad_url") from exc
        except (OSError, HTTPException) as exc:
            raise AdapterError(f"Could not reach {url}: {exc}", code="unreachable") from exc
        snippet = content[:500].decode("utf-8", errors="replace")
        if 200 <= status < 300:
            return self._provider_id(entry, inbox, content)
        retryable = status in (408, 429) or status >= 500
        raise AdapterError(
            f"The receiver answered HTTP {status}." + ("" if retryable else " It will not be retried."),
            permanent=not retryable, code=f"http_{status}", status_code=status, response_snippet=snippet,
        )

    def _provider_id(self, entry: TimelineEntry, inbox: Inbox, content: bytes) -> str:
        from conversations.models import TimelineEntry

        fallback = f"api-{entry.pk}"
        receiver_id = _receiver_id(content)
        if not receiver_id:
            return fallback
        # External ids are unique per inbox; a receiver answering the same id twice must not break recording.
        taken = (
            TimelineEntry.objects.for_tenant(entry.tenant_id).filter(inbox=inbox, external_id=receiver_id)
            .exclude(pk=entry.pk).exists()
        )
        if taken:
            logger.warning("Receiver id %r for message %s is already used in inbox %s", receiver_id, entry.pk, inbox.pk)
            return fallback
        return receiver_id
