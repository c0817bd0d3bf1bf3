"""The one small interface every channel adapter implements, and the registry that finds them.

An adapter knows its provider's quirks (signatures, payload shapes, error codes) and nothing else:
storing, continuity and events are the job of `conversations.services`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from channels_app.models import Inbox
    from conversations.models import TimelineEntry
    from conversations.services import InboundMessage


class SignatureError(Exception):
    """The request did not come from the provider (bad or missing signature or secret)."""


class AdapterError(Exception):
    """Sending failed. `permanent` errors are not retried (a bad number); the others are (a timeout)."""

    def __init__(self, message: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class ChannelAdapter:
    channel: str

    def verify(self, request: HttpRequest, inbox: Inbox) -> None:
        """Raise SignatureError unless the request provably comes from the provider."""
        raise NotImplementedError

    def parse_inbound(self, request: HttpRequest, inbox: Inbox) -> InboundMessage:
        """Turn the provider's request into a plain InboundMessage (raise ValueError on a malformed one)."""
        raise NotImplementedError

    def send(self, entry: TimelineEntry, inbox: Inbox) -> str:
        """Send an outbound message; return the provider's id or raise AdapterError."""
        raise NotImplementedError


# channel -> dotted path of its adapter class; adding a channel adds one line here and one package.
ADAPTERS: dict[str, str] = {}


def get_adapter(channel: str) -> ChannelAdapter:
    try:
        dotted = ADAPTERS[channel]
    except KeyError as exc:
        raise LookupError(f"No adapter for channel {channel!r}") from exc
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)()
