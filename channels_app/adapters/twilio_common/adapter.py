"""The behaviour Twilio SMS and Twilio WhatsApp share; each channel's adapter overrides a few hooks."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from channels_app.adapters.base import AdapterError, ChannelAdapter, MalformedInbound, SignatureError
from channels_app.adapters.twilio_common.client import twilio_client
from channels_app.adapters.twilio_common.errors import twilio_error_explanation
from conversations.services import InboundMessage
from customers.identities import InvalidIdentity, normalize_identity

if TYPE_CHECKING:
    from channels_app.models import InboundReceipt, Inbox
    from channels_app.receipts import ReceiptOutcome
    from conversations.models import TimelineEntry
    from conversations.services import InboundResult

logger = logging.getLogger(__name__)

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
# Twilio caps inbound bodies at 1600 characters; anything far beyond that is not from Twilio.
MAX_INBOUND_BODY = 10_000
# MMS carries at most 10 media items.
MAX_MEDIA = 10
# Twilio fetches media when it sends; a link made for an attempt need not outlive that attempt by much.
MEDIA_LINK_TTL = timedelta(hours=2)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def public_url(request: HttpRequest) -> str:
    """The URL Twilio signed: the public base URL, never the Host header (proxies rewrite it)."""
    return f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"


def status_callback_url(inbox: Inbox, entry_id: int) -> str:
    # The entry id lets a callback that overtakes our own record of the MessageSid still find the message.
    path = reverse("twilio:status", kwargs={"key": inbox.key})
    return f"{settings.PUBLIC_BASE_URL}{path}?{urlencode({'entry': entry_id})}"


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when the request provably never reached Twilio, so sending again cannot duplicate it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError | ConnectTimeoutError)


class TwilioAdapter(ChannelAdapter):
    identity_kind: ClassVar[str]
    address_prefix: ClassVar[str] = ""
    secret_names = ("twilio_auth_token",)
    setting_names = ("account_sid", "from_number", "messaging_service_sid")
    max_body_length = 1600

    # --- inbound -------------------------------------------------------------------------------

    def verify(self, request: HttpRequest, inbox: Inbox) -> None:
        token = inbox.get_secret("twilio_auth_token")
        if not token:
            raise SignatureError("This inbox has no Twilio auth token; set it in admin.")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise SignatureError("Missing X-Twilio-Signature header.")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER, ""))
        if not RequestValidator(token).validate(public_url(request), request.POST, signature, algorithm):
            raise SignatureError("Bad X-Twilio-Signature.")
        account_sid = inbox.setting("account_sid")
        if account_sid and request.POST.get("AccountSid", account_sid) != account_sid:
            raise SignatureError("This message belongs to another Twilio account.")

    def address(self, raw: str, inbox: Inbox, *, field: str) -> str:
        """A sender or recipient address in its stored form (E.164), or MalformedInbound."""
        text = raw.strip()
        if self.address_prefix and not text.lower().startswith(self.address_prefix):
            raise MalformedInbound(f"{field} {raw[:40]!r} is not a {self.channel} address ({self.address_prefix}+E.164).")
        try:
            return normalize_identity(self.identity_kind, text, region=inbox.tenant.default_region)
        except InvalidIdentity as exc:
            raise MalformedInbound(f"{field} is not a valid number: {' '.join(exc.messages)}") from exc

    def parse_inbound(self, request: HttpRequest, inbox: Inbox) -> InboundMessage:
        form = request.POST
        sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
        if not MESSAGE_SID.fullmatch(sid):
            raise MalformedInbound("MessageSid is missing or is not a Twilio message SID.")
        if not form.get("From", "").strip():
            raise MalformedInbound("From is missing.")
        sender = self.address(form["From"], inbox, field="From")
        # To is one of our own numbers (or a short code); kept as sent, without the channel prefix.
        recipient = form.get("To", "").strip().removeprefix(self.address_prefix)[:64] or inbox.address
        body = form.get("Body", "")
        if len(body) > MAX_INBOUND_BODY:
            raise MalformedInbound(f"Body is longer than {MAX_INBOUND_BODY} characters.", status=413)
        data: dict[str, Any] = {"from": sender, "to": recipient, "media": self.parse_media(form)}
        data.update(self.extra_data(form, body))
        return InboundMessage(
            channel=self.channel, sender_kind=self.identity_kind, sender_value=sender, body=body,
            sender_name=form.get("ProfileName", "")[:200], external_id=sid, data=data,
        )

    def parse_media(self, form) -> list[dict[str, str]]:
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError as exc:
            raise MalformedInbound("NumMedia is not a number.") from exc
        if not 0 <= count <= MAX_MEDIA:
            raise MalformedInbound(f"NumMedia must be between 0 and {MAX_MEDIA}.")
        media = []
        for index in range(count):
            url = form.get(f"MediaUrl{index}", "").strip()
            if not url.startswith("https://") or len(url) > 1000:
                raise MalformedInbound(f"MediaUrl{index} is missing or not an https URL.")
            media.append({"url": url, "content_type": form.get(f"MediaContentType{index}", "")[:127]})
        return media

    def extra_data(self, form, body: str) -> dict[str, Any]:
        """Channel-specific fields worth keeping on the stored message."""
        return {}

    def inbound_recorded(self, inbox: Inbox, result: InboundResult) -> None:
        """Side effects of a newly stored message (opt-out keywords…); runs after it is committed."""

    def inbound_response(self, result: InboundResult | None) -> HttpResponse:
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")

    def receipt_record(self, receipt: InboundReceipt) -> ReceiptOutcome:
        from channels_app.adapters.twilio_common.receipts import twilio_receipt_record

        return twilio_receipt_record(receipt, self)

    # --- outbound ------------------------------------------------------------------------------

    def provider_address(self, number: str) -> str:
        bare = number.strip()
        if self.address_prefix and bare.lower().startswith(self.address_prefix):
            bare = bare[len(self.address_prefix):]
        return f"{self.address_prefix}{bare}"

    def content_params(self, entry: TimelineEntry) -> dict[str, Any]:
        return {"body": entry.body, **self.media_params(entry)}

    def media_params(self, entry: TimelineEntry) -> dict[str, Any]:
        """Files go as MediaUrl: signed links to Omnidesk that Twilio fetches while it sends."""
        from conversations.attachments import attachment_public_link

        urls = [attachment_public_link(a, ttl=MEDIA_LINK_TTL).url for a in entry.attachments.all()]
        return {"media_url": urls} if urls else {}

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        params: dict[str, Any] = {
            "to": self.provider_address(recipient),
            "status_callback": status_callback_url(inbox, entry.pk),
            **self.content_params(entry),
        }
        service_sid = inbox.setting("messaging_service_sid")
        if service_sid:
            params["messaging_service_sid"] = service_sid
        else:
            params["from_"] = self.provider_address(inbox.setting("from_number") or inbox.address)
        client = twilio_client(inbox)
        try:
            message = client.messages.create(**params)
        except TwilioRestException as exc:
            retryable = exc.status == 429 or exc.status >= 500
            raise AdapterError(
                twilio_error_explanation(exc.code, exc.msg if not retryable else f"Twilio answered {exc.status}."),
                permanent=not retryable, code=str(exc.code or ""), status_code=exc.status,
                response_snippet=str(exc.msg)[:500],
            ) from exc
        except requests.ConnectionError as exc:
            if _connection_never_made(exc):
                raise AdapterError(f"Could not reach Twilio: {exc}", code="connect") from exc
            raise self._maybe_sent(exc) from exc
        except requests.Timeout as exc:
            raise self._maybe_sent(exc) from exc
        except (TwilioException, requests.RequestException, ValueError) as exc:
            raise AdapterError(f"Twilio client error: {exc}", permanent=True, code="client") from exc
        return message.sid

    def _maybe_sent(self, exc: Exception) -> AdapterError:
        # Twilio has no idempotency key for messages: after a lost answer, sending again could reach the
        # customer twice, so the message is marked failed with an honest reason instead of retried.
        return AdapterError(
            "Twilio did not answer in time; the message may or may not have gone out. "
            "Check with the customer before sending it again.",
            permanent=True, code="timeout", response_snippet=str(exc)[:500],
        )
