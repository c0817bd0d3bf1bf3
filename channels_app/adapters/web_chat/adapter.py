"""The web-chat channel: visitors talk to Omnidesk directly (HTTP and a websocket, see PROTOCOL.md), so there
is no provider to verify or call. Inbound messages come from `services.visitor_message_send`; an agent's reply
goes through the normal outbound flow to `send`, which pushes it to the visitor's open sockets (the polling
endpoint reads the same stored message)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from channels_app.adapters.base import AdapterError, ChannelAdapter, SendRefused
from channels_app.models import Channel

if TYPE_CHECKING:
    from channels_app.models import Inbox
    from conversations.models import Conversation, TimelineEntry
    from customers.models import Identity

logger = logging.getLogger(__name__)


class WebChatAdapter(ChannelAdapter):
    channel = Channel.CHAT
    secret_names = ("identity_secret",)
    setting_names = (
        "allowed_origins", "title", "greeting", "color", "prechat_enabled", "prechat_fields", "prechat_required",
        "offline_message", "team_id", "calendar_id", "max_message_length", "rate_limit_per_minute",
    )
    max_body_length = 20000
    # Files go as links the widget downloads (signed, expiring); inline display only for harmless types.
    max_attachments = 5
    max_attachment_bytes = 20_000_000
    max_attachments_total_bytes = 50_000_000

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        super().check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
        if not inbox.is_active:
            raise SendRefused(f"The chat inbox {inbox.name!r} is switched off; reply by e-mail or SMS instead.")
        from conversations.models import Direction, EntryKind, TimelineEntry

        last_inbound = (
            TimelineEntry.objects.for_tenant(conversation.tenant_id)
            .filter(conversation=conversation, kind=EntryKind.MESSAGE, channel=Channel.CHAT, direction=Direction.INBOUND)
            .order_by("-created_at", "-id").values_list("data", flat=True).first()
        )
        if isinstance(last_inbound, dict) and last_inbound.get("offline"):
            address = last_inbound.get("reply_to") or "their e-mail address"
            raise SendRefused(
                f"The visitor left this as an offline message and was told the answer comes by e-mail; "
                f"reply by e-mail to {address}."
            )

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        from channels_app.adapters.web_chat.live import visitor_push
        from channels_app.adapters.web_chat.payloads import message_payload
        from channels_app.adapters.web_chat.selectors import visitor_for_identity_value

        visitor = visitor_for_identity_value(tenant_id=entry.tenant_id, value=recipient)
        if visitor is None:
            raise AdapterError("The chat visitor this reply was for no longer exists.", permanent=True, code="no_visitor")
        try:
            visitor_push(tenant_id=entry.tenant_id, visitor_id=visitor.pk,
                         event={"type": "message", "message": message_payload(entry)})
        except (OSError, ConnectionError) as exc:
            # Stored already: a visitor who polls or reconnects reads it; retrying only restores the live copy.
            raise AdapterError(f"The live channel is unavailable: {exc}", code="layer_unavailable") from exc
        return f"chat-{entry.pk}"
