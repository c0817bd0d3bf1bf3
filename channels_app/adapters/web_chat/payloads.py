"""Timeline entries as the protocol's Message objects (PROTOCOL.md): plain text, author name and avatar or
initials, attachment links the widget can fetch without a session, and satisfaction surveys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings

from conversations.attachments import attachment_public_link
from conversations.models import Direction, TimelineEntry
from customers.models import Membership

# Long enough for a visitor who comes back tomorrow; every history load signs fresh links.
ATTACHMENT_LINK_TTL = timedelta(days=2)


def initials_of(name: str) -> str:
    words = [w for w in (name or "").replace(".", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def _authors(tenant_id: int, entries: list[TimelineEntry]) -> dict[int, dict[str, Any]]:
    user_ids = {e.author_id for e in entries if e.author_id is not None and e.direction == Direction.OUTBOUND}
    if not user_ids:
        return {}
    found = {}
    for membership in Membership.objects.for_tenant(tenant_id).filter(user_id__in=user_ids).select_related("user"):
        name = membership.name
        found[membership.user_id] = {
            "name": name, "avatar_url": membership.avatar_url or None, "initials": initials_of(name),
        }
    return found


def _fallback_author(entry: TimelineEntry) -> dict[str, Any]:
    # The agent left the tenant (or the message came from an automation): still a person-shaped author.
    name = entry.author.get_full_name() if entry.author is not None else ""
    name = name or "Support"
    return {"name": name, "avatar_url": None, "initials": initials_of(name)}


def _csat(entry: TimelineEntry) -> dict[str, Any] | None:
    csat = entry.data.get("csat") if isinstance(entry.data, dict) else None
    if not isinstance(csat, dict) or not csat.get("token"):
        return None
    score = csat.get("score")
    return {"url": f"{settings.PUBLIC_BASE_URL}/csat/{csat['token']}/", "score": score if isinstance(score, int) else None}


def messages_payload(entries: Iterable[TimelineEntry], *, tenant_id: int) -> list[dict[str, Any]]:
    entries = list(entries)
    authors = _authors(tenant_id, entries)
    described = []
    for entry in entries:
        outbound = entry.direction == Direction.OUTBOUND
        message: dict[str, Any] = {
            "id": entry.pk,
            "client_id": entry.data.get("client_id") if not outbound else None,
            "direction": "out" if outbound else "in",
            "body": entry.body,
            "created_at": entry.created_at.isoformat(),
            "author": (authors.get(entry.author_id) or _fallback_author(entry)) if outbound else None,
            "attachments": [
                {
                    "name": a.filename, "size": a.size, "content_type": a.content_type,
                    "url": attachment_public_link(a, ttl=ATTACHMENT_LINK_TTL).url,
                }
                for a in entry.attachments.all()
            ],
        }
        csat = _csat(entry)
        if csat is not None:
            message["csat"] = csat
        described.append(message)
    return described


def message_payload(entry: TimelineEntry) -> dict[str, Any]:
    return messages_payload([entry], tenant_id=entry.tenant_id)[0]
