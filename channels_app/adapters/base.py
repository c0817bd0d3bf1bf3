"""The one small interface every channel adapter implements, and the registry that finds them.

An adapter knows its provider's quirks (signatures, payload shapes, limits, error codes) and nothing
else: storing, continuity and events are the job of `conversations.services`, and the shared inbound
and outbound flows live in `channels_app.inbound` and `channels_app.services`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, ClassVar

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from datetime import datetime

    from channels_app.models import InboundReceipt, Inbox
    from channels_app.receipts import ReceiptOutcome
    from conversations.models import Conversation, TimelineEntry
    from conversations.services import InboundMessage, InboundResult
    from customers.models import Identity


class SignatureError(Exception):
    """The request did not come from the provider (bad or missing signature or secret). -> 403"""


class MalformedInbound(Exception):
    """The request is not a message we can read (missing fields, bad JSON, too large). -> 400"""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SendRefused(ValidationError):
    """The reply cannot go out on this channel now (outside WhatsApp's window, opted out, too long…).

    Raised before anything is stored, with a reason an agent can act on.
    """


class AdapterError(Exception):
    """Sending failed. `permanent` errors are not retried (a bad number); the others are (a timeout)."""

    def __init__(self, message: str, *, permanent: bool = False, code: str = "", status_code: int | None = None,
                 response_snippet: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.status_code = status_code
        self.response_snippet = response_snippet


@dataclass(frozen=True)
class FileSpec:
    """What the channel checks of a file before it is sent: name, size and type."""

    name: str
    size: int
    content_type: str


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


class ChannelAdapter:
    channel: ClassVar[str]
    # Names of the inbox's encrypted secrets and plain settings this adapter reads (admin shows these).
    secret_names: ClassVar[tuple[str, ...]] = ()
    setting_names: ClassVar[tuple[str, ...]] = ()
    # Whether agents write replies on this channel (voice carries calls, not written replies).
    sends_text: ClassVar[bool] = True
    # Longest body one outbound message may carry; longer replies are refused with a reason.
    max_body_length: ClassVar[int | None] = None
    # Files one outbound message may carry: how many (0: this channel carries none), the largest one,
    # all of them together, and the content types allowed (empty: any).
    max_attachments: ClassVar[int] = 0
    max_attachment_bytes: ClassVar[int] = 0
    max_attachments_total_bytes: ClassVar[int] = 0
    attachment_types: ClassVar[frozenset[str]] = frozenset()

    def verify(self, request: HttpRequest, inbox: Inbox) -> None:
        """Raise SignatureError unless the request provably comes from the provider."""
        raise NotImplementedError

    def parse_inbound(self, request: HttpRequest, inbox: Inbox) -> InboundMessage:
        """Turn the provider's request into a plain InboundMessage (raise MalformedInbound)."""
        raise NotImplementedError

    def inbound_response(self, result: InboundResult | None) -> HttpResponse:
        """What the provider expects back once the message is committed."""
        return HttpResponse(status=200)

    def receipt_record(self, receipt: InboundReceipt) -> ReceiptOutcome:
        """For channels whose webhook commits a receipt (`channels_app.receipts`): store what it holds.

        Called by the worker inside the transaction that holds the receipt's lock. Raise MalformedInbound,
        InvalidIdentity or ConversationError to refuse it for good; a database outage raises and it waits.
        """
        raise NotImplementedError

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        """Raise SendRefused when the reply may not go out; called before the reply is stored."""
        if not body.strip() and not data.get("template"):
            raise SendRefused("A reply needs some text.")
        if self.max_body_length is not None and len(body) > self.max_body_length:
            raise SendRefused(
                f"{self.channel} messages are at most {self.max_body_length} characters; this one has {len(body)}. "
                "Shorten it or split it into several replies."
            )
        if recipient.opted_out_at is not None:
            raise SendRefused(
                f"{recipient.value} opted out of messages on {recipient.opted_out_at:%Y-%m-%d}; "
                "they must send START before you can write to them here. Reply on another channel."
            )

    def check_can_send_at(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, send_at: datetime,
                          data: dict) -> None:
        """Raise SendRefused when a reply scheduled for `send_at` can already be seen to be refused then
        (it is checked again when it goes out)."""

    def check_attachments(self, *, inbox: Inbox, files: Sequence[FileSpec], data: dict) -> None:
        """Raise SendRefused when these files cannot go with a reply on this channel (before anything is stored)."""
        if not files:
            return
        label = self.channel_label()
        if not self.max_attachments:
            raise SendRefused(f"{label} cannot carry files; send them by e-mail, or write without them.")
        if len(files) > self.max_attachments:
            raise SendRefused(
                f"{label} carries at most {self.max_attachments} file{'s' if self.max_attachments > 1 else ''} "
                f"per message; this reply has {len(files)}. Send them in several replies or by e-mail."
            )
        for spec in files:
            if self.attachment_types and spec.content_type.split(";")[0].strip().lower() not in self.attachment_types:
                raise SendRefused(
                    f"{label} cannot carry {spec.name} ({spec.content_type or 'unknown type'}); it takes "
                    f"{', '.join(sorted(self.attachment_types))}. Send it by e-mail instead."
                )
            if spec.size > self.max_attachment_bytes:
                raise SendRefused(
                    f"{spec.name} is {_megabytes(spec.size)}; {label} carries files of at most "
                    f"{_megabytes(self.max_attachment_bytes)}. Send it by e-mail or share a link."
                )
        total = sum(spec.size for spec in files)
        if total > self.max_attachments_total_bytes:
            raise SendRefused(
                f"The files add up to {_megabytes(total)}; {label} carries at most "
                f"{_megabytes(self.max_attachments_total_bytes)} per message. Send fewer or smaller files."
            )

    def channel_label(self) -> str:
        from channels_app.models import Channel

        return Channel(self.channel).label

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        """Send an outbound message; return the provider's id or raise AdapterError."""
        raise NotImplementedError


# channel -> dotted path of its adapter class; adding a channel adds one line here and one package.
ADAPTERS: dict[str, str] = {
    "sms": "channels_app.adapters.twilio_sms.adapter.TwilioSmsAdapter",
    "whatsapp": "channels_app.adapters.twilio_whatsapp.adapter.TwilioWhatsAppAdapter",
    "voice": "channels_app.adapters.twilio_voice.adapter.TwilioVoiceAdapter",
    "email": "channels_app.adapters.email.adapter.EmailAdapter",
    "api": "channels_app.adapters.api.adapter.ApiAdapter",
    "chat": "channels_app.adapters.web_chat.adapter.WebChatAdapter",
}


def get_adapter(channel: str) -> ChannelAdapter:
    try:
        dotted = ADAPTERS[channel]
    except KeyError as exc:
        raise LookupError(f"No adapter for channel {channel!r}") from exc
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)()


def adapter_exists(channel: str) -> bool:
    return channel in ADAPTERS


def adapter_sends_text(channel: str) -> bool:
    """An adapter exists for the channel and agents can write replies on it."""
    return channel in ADAPTERS and get_adapter(channel).sends_text
