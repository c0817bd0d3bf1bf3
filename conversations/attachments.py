"""Reaching stored attachments: signed, expiring public links (for providers that fetch media by URL)
and the member-checked lookup behind the workspace's download links.

A public link names one attachment of one tenant and an expiry, signed with SECRET_KEY; it is the only
way to a file without a session. Twilio fetches MediaUrl when it sends, so its links live for hours;
an API receiver may download later, so its links live for days.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from conversations.models import Attachment
from conversations.selectors import conversation_list
from customers.models import Membership, Tenant

SALT = "omnidesk.attachment.public"
# Types a browser may show in place; anything else is downloaded, so an uploaded HTML or SVG file cannot
# run script on Omnidesk's origin.
INLINE_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "audio/mpeg", "audio/ogg",
    "video/mp4", "text/plain",
})


class LinkInvalid(Exception):
    """The link was tampered with, has expired, or its file is gone. -> 404"""


@dataclass(frozen=True)
class PublicLink:
    url: str
    expires_at: int


def attachment_public_link(attachment: Attachment, *, ttl: timedelta) -> PublicLink:
    expires_at = int(time.time() + ttl.total_seconds())
    token = signing.dumps([attachment.tenant_id, attachment.pk, expires_at], salt=SALT)
    path = reverse("workspace:attachment_public", kwargs={"token": token, "filename": attachment.filename})
    return PublicLink(url=f"{settings.PUBLIC_BASE_URL}{path}", expires_at=expires_at)


def attachment_from_link(token: str) -> Attachment:
    try:
        tenant_id, attachment_id, expires_at = signing.loads(token, salt=SALT)
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise LinkInvalid("Bad link.") from exc
    if not isinstance(expires_at, int) or expires_at < time.time():
        raise LinkInvalid("This link has expired.")
    attachment = Attachment.objects.for_tenant(tenant_id).filter(pk=attachment_id).first()
    if attachment is None:
        raise LinkInvalid("No such file.")
    return attachment


def attachment_get(*, tenant: Tenant, membership: Membership, attachment_id: int) -> Attachment:
    """An attachment of a conversation this member may open (Attachment.DoesNotExist otherwise, also for
    another tenant's)."""
    attachment = (
        Attachment.objects.for_tenant(tenant).select_related("entry").get(pk=attachment_id)
    )
    conversation_id = attachment.entry.conversation_id
    if conversation_id is not None and not conversation_list(tenant=tenant, membership=membership).filter(
        pk=conversation_id
    ).exists():
        raise Attachment.DoesNotExist("No such attachment.")
    return attachment


def is_inline(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in INLINE_TYPES
