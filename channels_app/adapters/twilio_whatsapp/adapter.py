"""Twilio WhatsApp: `whatsapp:+E.164` addresses, the 24-hour customer-service window and templates."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from channels_app.adapters.base import FileSpec, SendRefused
from channels_app.adapters.twilio_common.adapter import TwilioAdapter
from channels_app.models import Channel
from conversations.models import Direction, TimelineEntry
from customers.models import IdentityKind

if TYPE_CHECKING:
    from datetime import datetime

    from channels_app.models import Inbox
    from conversations.models import Conversation
    from customers.models import Identity

SERVICE_WINDOW = timedelta(hours=24)
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


def template_problem(template: Any) -> str:
    """Why a template reply is unusable, or "" when it is fine."""
    if not isinstance(template, dict) or not CONTENT_SID.fullmatch(str(template.get("content_sid", ""))):
        return "A template needs the content SID of an approved template (HX followed by 32 hex digits)."
    variables = template.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in variables.items()
    ):
        return 'Template variables are a mapping of placeholder to text, e.g. {"1": "Maria"}.'
    return ""


class TwilioWhatsAppAdapter(TwilioAdapter):
    channel = Channel.WHATSAPP
    identity_kind = IdentityKind.WHATSAPP
    address_prefix = "whatsapp:"
    # WhatsApp takes one media file per message, of the types Twilio lists for it.
    max_attachments = 1
    max_attachment_bytes = 16_000_000
    max_attachments_total_bytes = 16_000_000
    attachment_types = frozenset({
        "image/jpeg", "image/png", "audio/ogg", "audio/mpeg", "audio/amr", "audio/mp4", "video/mp4", "application/pdf",
    })

    def check_attachments(self, *, inbox: Inbox, files: Sequence[FileSpec], data: dict) -> None:
        if files and data.get("template"):
            raise SendRefused("A template reply cannot carry files; send the template first, the file once they answer.")
        super().check_attachments(inbox=inbox, files=files, data=data)

    def extra_data(self, form, body: str) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field, name in (("ButtonPayload", "button_payload"), ("Latitude", "latitude"), ("Longitude", "longitude")):
            if form.get(field):
                data[name] = form[field][:200]
        return data

    def last_inbound_at(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity):
        """When the customer last wrote to this WhatsApp sender from this number (the window is per pair)."""
        return (
            TimelineEntry.objects.for_tenant(conversation.tenant_id)
            .filter(customer_id=conversation.customer_id, channel=Channel.WHATSAPP, direction=Direction.INBOUND,
                    inbox=inbox, data__from=recipient.value)
            .order_by("-created_at").values_list("created_at", flat=True).first()
        )

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        template = data.get("template")
        if template is not None:
            problem = template_problem(template)
            if problem:
                raise SendRefused(problem)
            if not (body.strip() or str(template.get("preview", "")).strip()):
                raise SendRefused("Give the template reply a preview text, so the timeline shows what was sent.")
        super().check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
        if template is not None:
            return
        last = self.last_inbound_at(conversation=conversation, inbox=inbox, recipient=recipient)
        if last is None or timezone.now() - last > SERVICE_WINDOW:
            since = "has never written to this number" if last is None else f"last wrote {last:%Y-%m-%d %H:%M} UTC"
            raise SendRefused(
                f"WhatsApp allows free-form replies only within 24 hours of the customer's last message; "
                f"the customer {since}. Send an approved template instead, or reply by SMS or e-mail."
            )

    def check_can_send_at(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, send_at: datetime,
                          data: dict) -> None:
        if data.get("template"):
            return
        last = self.last_inbound_at(conversation=conversation, inbox=inbox, recipient=recipient)
        if last is not None and send_at > last + SERVICE_WINDOW:
            raise SendRefused(
                f"WhatsApp's 24-hour window with this customer closes at {last + SERVICE_WINDOW:%Y-%m-%d %H:%M} UTC, "
                "before the time you chose. Schedule it earlier, send an approved template, or reply by SMS or e-mail."
            )

    def content_params(self, entry) -> dict[str, Any]:
        template = entry.data.get("template")
        if not template:
            return {"body": entry.body, **self.media_params(entry)}
        variables = {str(k): str(v) for k, v in (template.get("variables") or {}).items()}
        return {"content_sid": template["content_sid"], "content_variables": json.dumps(variables)}
