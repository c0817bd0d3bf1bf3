"""Building raw test messages the way mail clients write them."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

from django.test import Client

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


def post_raw(raw: bytes, inbox, *, secret: str | None = WEBHOOK_SECRET):
    headers = {"HTTP_X_OMNIDESK_SECRET": secret} if secret is not None else {}
    return Client().post(f"/hooks/email/{inbox.key}/", data=raw, content_type="message/rfc822", **headers)
