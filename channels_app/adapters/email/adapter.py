"""E-mail: raw RFC 822 in by webhook or IMAP, SMTP out with threading headers."""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.http import HttpRequest

from channels_app.adapters.base import (
    AdapterError,
    ChannelAdapter,
    MalformedInbound,
    SendRefused,
    SignatureError,
)
from channels_app.adapters.email.services import (
    MAX_MESSAGE_BYTES,
    email_inbound_message,
    email_parse,
    email_receipt_record,
)
from channels_app.adapters.email.threads import reply_headers, reply_subject
from channels_app.models import InboundReceipt, Inbox
from channels_app.receipts import ReceiptOutcome
from conversations.models import TimelineEntry
from conversations.services import InboundMessage

logger = logging.getLogger(__name__)

SECRET_HEADER = "HTTP_X_OMNIDESK_SECRET"
SMTP_TIMEOUT_SECONDS = 20


def read_raw(request: HttpRequest) -> bytes:
    """The posted message, read from the stream: `request.body` stops at DATA_UPLOAD_MAX_MEMORY_SIZE."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_MESSAGE_BYTES:
        raise MalformedInbound(f"The message is {declared} bytes; the limit is {MAX_MESSAGE_BYTES}.", status=413)
    raw = request.read(MAX_MESSAGE_BYTES + 1)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedInbound(f"The message is over the limit of {MAX_MESSAGE_BYTES} bytes.", status=413)
    return raw


def message_id_for(entry: TimelineEntry, domain: str) -> str:
    """The same Message-ID on every attempt at one reply, so a retry after a lost answer is one mail to clients."""
    token = hmac.new(settings.SECRET_KEY.encode(), f"{entry.tenant_id}.{entry.pk}".encode(), hashlib.sha256).hexdigest()
    return f"omnidesk.{entry.pk}.{token[:20]}@{domain}"


def _smtp_error(exc: Exception) -> AdapterError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                           for rcpt, (code, msg) in exc.recipients.items())
        permanent = all(code >= 500 for code in codes)
        return AdapterError(f"Recipient refused: {detail}", permanent=permanent, code=str(codes[0]) if codes else "",
                            status_code=codes[0] if codes else None, response_snippet=detail)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # Retried: an administrator fixing the password should not lose the queued replies.
        return AdapterError("The SMTP server refused the inbox's username or password.", code=str(exc.smtp_code),
                            status_code=exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return AdapterError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500, code=str(exc.smtp_code),
                            status_code=exc.smtp_code, response_snippet=text)
    # Connection refused, timeouts, dropped connections: the server may be back in a minute.
    return AdapterError(f"Could not talk to the SMTP server: {exc}", code="smtp_connection")


class EmailAdapter(ChannelAdapter):
    channel = "email"
    secret_names = ("webhook_secret", "smtp_password", "imap_password")
    setting_names = (
        "smtp_host", "smtp_port", "smtp_username", "smtp_use_tls", "smtp_use_ssl",
        "imap_host", "imap_port", "imap_username", "imap_use_ssl", "imap_folder",
    )
    # Base64 grows files by a third; 20 MB of files stays under the 25 MB most mail servers accept.
    max_attachments = 10
    max_attachment_bytes = 20_000_000
    max_attachments_total_bytes = 20_000_000

    def verify(self, request: HttpRequest, inbox: Inbox) -> None:
        expected = inbox.get_secret("webhook_secret")
        given = request.META.get(SECRET_HEADER, "")
        if not expected:
            raise SignatureError("This inbox has no webhook secret; set one before posting mail to it.")
        if not given:
            raise SignatureError("Missing X-Omnidesk-Secret header.")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("Wrong X-Omnidesk-Secret.")

    def parse_inbound(self, request: HttpRequest, inbox: Inbox) -> InboundMessage:
        return email_inbound_message(inbox=inbox, parsed=email_parse(read_raw(request)))

    def receipt_record(self, receipt: InboundReceipt) -> ReceiptOutcome:
        return email_receipt_record(receipt)

    def check_can_send(self, *, conversation, inbox, recipient, body, data) -> None:
        super().check_can_send(conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data)
        if not inbox.address or not inbox.setting("smtp_host"):
            raise SendRefused(f"The inbox {inbox.name} has no from-address or SMTP server; an admin must set them up.")

    def send(self, entry: TimelineEntry, inbox: Inbox, recipient: str) -> str:
        domain = inbox.address.rpartition("@")[2] or "omnidesk.invalid"
        message_id = message_id_for(entry, domain)
        parent, references = reply_headers(entry=entry)
        author = entry.author
        display_name = (author.get_full_name() or author.get_username()) if author else inbox.name
        subject = reply_subject(entry.conversation.subject, entry.conversation.number)
        headers = {"Message-ID": f"<{message_id}>", "Auto-Submitted": "no"}
        if parent:
            headers["In-Reply-To"] = f"<{parent}>"
            headers["References"] = " ".join(f"<{mid}>" for mid in references)
        mail = EmailMessage(
            subject=subject, body=entry.body, from_email=formataddr((display_name, inbox.address)),
            to=[recipient], headers=headers, connection=self._connection(inbox),
        )
        for attachment in entry.attachments.all():
            with attachment.file.open("rb") as stored:
                mail.attach(attachment.filename, stored.read(), attachment.content_type or None)
        try:
            mail.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_error(exc) from exc
        return message_id

    def _connection(self, inbox: Inbox):
        use_ssl = bool(inbox.setting("smtp_use_ssl", False))
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend", fail_silently=False,
            host=inbox.setting("smtp_host"), port=int(inbox.setting("smtp_port", 465 if use_ssl else 587)),
            username=inbox.setting("smtp_username") or None, password=inbox.get_secret("smtp_password") or None,
            use_tls=bool(inbox.setting("smtp_use_tls", False)), use_ssl=use_ssl, timeout=SMTP_TIMEOUT_SECONDS,
        )
