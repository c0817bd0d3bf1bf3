"""Building raw test messages the way mail clients write them."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.message import EmailMessage

from django.test import Client

from channels_app.adapters.email.parsing import parse_email

WEBHOOK_SECRET = "s3cret-webhook-token"



def mail(
    *, sender: str = "Jane Doe <jane@example.org>", to: str = "support@acme.test", subject: str = "Printer on fire",
    text: str | None = "My printer is on fire.", html: str | None = None, message_id: str | None = "<m1@example.org>",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if text is not None:
        message.set_content(text)
    if html is not None and text is not None:
        message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    return message


def webhook_only(raw: bytes, inbox, *, secret: str | None = WEBHOOK_SECRET):
    """The webhook alone: it commits a receipt of the raw mail and answers 202, without the worker's part."""
    headers = {"HTTP_X_OMNIDESK_SECRET": secret} if secret is not None else {}
    return Client().post(f"/hooks/email/{inbox.key}/", data=raw, content_type="message/rfc822", **headers)


def post_raw(raw: bytes, inbox, *, secret: str | None = WEBHOOK_SECRET):
    """The webhook, then the worker's part, as the pump would run it. The webhook's own answer is the
    response; `.outcome` and `.entry_id` say what the worker made of the mail (None when it was refused)."""
    from channels_app.adapters.email.services import email_receipt_key
    from channels_app.models import InboundReceipt
    from channels_app.receipts import receipts_sweep

    response = webhook_only(raw, inbox, secret=secret)
    response.outcome = response.entry_id = None
    if response.status_code not in (200, 202):
        return response
    receipts_sweep(older_than=timedelta(0))
    if response.status_code == 202:
        receipt = InboundReceipt.objects.get(pk=response.json()["receipt_id"])
        response.outcome, response.entry_id = receipt.outcome, receipt.entry_id
    else:  # a re-delivery: the receipt of the first delivery
        key = email_receipt_key(parse_email(raw).message_id)
        receipt = InboundReceipt.objects.get(tenant_id=inbox.tenant_id, inbox=inbox, provider_id=key)
        response.outcome, response.entry_id = "duplicate", receipt.entry_id
    return response
