"""Twilio Voice shares Twilio's signatures and number handling with SMS; it carries calls, not text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels_app.adapters.base import AdapterError, SendRefused
from channels_app.adapters.twilio_common.adapter import TwilioAdapter
from channels_app.models import Channel
from customers.models import IdentityKind

if TYPE_CHECKING:
    from channels_app.models import Inbox
    from conversations.models import Conversation, TimelineEntry
    from customers.models import Identity


class TwilioVoiceAdapter(TwilioAdapter):
    channel = Channel.VOICE
    identity_kind = IdentityKind.PHONE
    secret_names = ("twilio_auth_token", "twilio_api_key_secret")
    setting_names = (
        "account_sid", "api_key_sid", "twiml_app_sid", "team_id", "calendar_id", "greeting", "out_of_hours_greeting", "voicemail_prompt",
        "offer_timeout", "max_wait", "voicemail_max_length", "language",
        "record_calls",
    )
    max_body_length = None
    sends_text = False  # the composer offers SMS/WhatsApp for the same number instead

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        raise SendRefused("A call cannot carry a written reply; answer by SMS, WhatsApp or e-mail instead.")

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        raise AdapterError("Voice inboxes do not send messages.", permanent=True, code="voice")
