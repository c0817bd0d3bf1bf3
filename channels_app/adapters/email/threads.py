"""Which conversation an e-mail continues, and the headers that make our replies continue it.

Inbound: `In-Reply-To`/`References` against the Message-IDs we stored (inbound and outbound) first,
then a `[#123]` token in the subject, then the shared continuity rule. Both only ever pick one of the
sender's own conversations: a forwarded Message-ID or a typed token never reaches another customer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conversations.models import Conversation, EntryKind, TimelineEntry
from customers.identities import InvalidIdentity, normalize_email
from customers.models import Identity, IdentityKind, Tenant

SUBJECT_TOKEN = re.compile(r"\[#(\d{1,9})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# How many earlier Message-IDs a reply's References carries; mail clients cope with long lists badly.
MAX_REFERENCES = 20


@dataclass(frozen=True)
class Thread:
    conversation_id: int | None
    matched_by: str  # "headers", "subject" or "" (the continuity rule decides)


NO_THREAD = Thread(None, "")


def sender_customer_id(*, tenant: Tenant, address: str) -> int | None:
    try:
        value = normalize_email(address)
    except InvalidIdentity:
        return None
    return (
        Identity.objects.for_tenant(tenant).filter(kind=IdentityKind.EMAIL, value=value)
        .values_list("customer_id", flat=True).first()
    )


def thread_find(*, tenant: Tenant, sender: str, in_reply_to: list[str], references: list[str], subject: str) -> Thread:
    # The direct parent first, then the newest reference.
    candidates = list(dict.fromkeys([*in_reply_to, *reversed(references)]))[: MAX_REFERENCES * 2]
    numbers = SUBJECT_TOKEN.findall(subject or "")
    if not candidates and not numbers:
        return NO_THREAD  # a new mail, not a reply: nothing to look up
    customer_id = sender_customer_id(tenant=tenant, address=sender)
    if customer_id is None:
        return NO_THREAD
    if candidates:
        found = dict(
            TimelineEntry.objects.for_tenant(tenant)
            .filter(external_id__in=candidates, kind=EntryKind.MESSAGE, customer_id=customer_id, conversation__isnull=False)
            .values_list("external_id", "conversation_id")
        )
        for message_id in candidates:
            if message_id in found:
                return Thread(found[message_id], "headers")
    for number in numbers:
        conversation_id = (
            Conversation.objects.for_tenant(tenant).filter(number=int(number), customer_id=customer_id)
            .values_list("pk", flat=True).first()
        )
        if conversation_id is not None:
            return Thread(conversation_id, "subject")
    return NO_THREAD


def reply_subject(subject: str, number: int) -> str:
    """'Re: <subject> [#123]', without piling up prefixes or tokens over a long thread."""
    base = SUBJECT_TOKEN.sub("", _REPLY_PREFIX.sub("", subject or "")).strip()
    base = re.sub(r"\s{2,}", " ", base)
    return f"Re: {base} [#{number}]" if base else f"Re: your message [#{number}]"


def reply_headers(*, entry: TimelineEntry) -> tuple[str, list[str]]:
    """In-Reply-To and References for an outbound message: the conversation's earlier e-mails."""
    earlier = list(
        TimelineEntry.objects.for_tenant(entry.tenant_id)
        .filter(conversation_id=entry.conversation_id, kind=EntryKind.MESSAGE, channel="email", external_id__isnull=False,
                created_at__lte=entry.created_at)
        .exclude(pk=entry.pk).order_by("-created_at", "-id").values_list("external_id", "direction")[: MAX_REFERENCES]
    )
    if not earlier:
        return "", []
    # Answer the customer's latest mail if there is one, else our own latest.
    parent = next((mid for mid, direction in earlier if direction == "inbound"), earlier[0][0])
    references = [mid for mid, _ in reversed(earlier)]
    return parent, references
