"""Twilio SMS: E.164 phone numbers, 1600 characters, and the STOP/START/HELP keywords carriers require."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from channels_app.adapters.base import FileSpec, SendRefused
from channels_app.adapters.twilio_common.adapter import TwilioAdapter
from channels_app.models import Channel
from conversations.services import timeline_add_event
from customers.models import Identity, IdentityKind

if TYPE_CHECKING:
    from channels_app.models import Inbox
    from conversations.models import Conversation
    from conversations.services import InboundResult

# Twilio's default opt-out keywords; a message that is exactly one of them (any case) counts.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}


def sms_keyword(body: str, opt_out_type: str = "") -> str:
    """"stop", "start", "help" or "" for an ordinary message."""
    if opt_out_type.strip().upper() in {"STOP", "START", "HELP"}:
        # Twilio's Advanced Opt-Out already classified it, with the account's own keywords.
        return opt_out_type.strip().lower()
    word = body.strip().rstrip(".!").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return ""


class TwilioSmsAdapter(TwilioAdapter):
    channel = Channel.SMS
    identity_kind = IdentityKind.PHONE
    # Files go as MMS: up to 10 media, 5 MB in all (Twilio's limits).
    max_attachments = 10
    max_attachment_bytes = 5_000_000
    max_attachments_total_bytes = 5_000_000

    def check_attachments(self, *, inbox: Inbox, files: Sequence[FileSpec], data: dict) -> None:
        super().check_attachments(inbox=inbox, files=files, data=data)
        sender = inbox.setting("from_number") or inbox.address
        if files and not inbox.setting("messaging_service_sid") and not sender.startswith("+1"):
            # Twilio sends MMS only from US and Canadian numbers; elsewhere the files would be dropped.
            raise SendRefused(
                f"Picture messages (MMS) go only from US and Canadian numbers, and this inbox sends from {sender}; "
                "send the files by e-mail or WhatsApp instead."
            )

    def extra_data(self, form, body: str) -> dict[str, Any]:
        keyword = sms_keyword(body, form.get("OptOutType", ""))
        return {"keyword": keyword} if keyword else {}

    def inbound_recorded(self, inbox: Inbox, result: InboundResult) -> None:
        entry = result.entry
        keyword = entry.data.get("keyword")
        if not keyword:
            return
        identities = Identity.objects.for_tenant(inbox.tenant_id).filter(kind=IdentityKind.PHONE, value=entry.data["from"])
        if keyword == "stop":
            identities.filter(opted_out_at__isnull=True).update(opted_out_at=timezone.now())
        elif keyword == "start":
            identities.update(opted_out_at=None)
        timeline_add_event(
            tenant=inbox.tenant, customer=entry.customer, conversation=result.conversation,
            event={"stop": "sms_opted_out", "start": "sms_opted_in", "help": "sms_help_requested"}[keyword],
            data={"number": entry.data["from"], "entry_id": entry.pk},
        )

    def check_can_send(self, *, conversation: Conversation, inbox: Inbox, recipient: Identity, body: str,
                       data: dict) -> None:
        if data.get("template"):
            raise SendRefused("Templates are a WhatsApp feature; write the SMS as plain text.")
        super().check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
