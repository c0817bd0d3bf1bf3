"""What a member keeps for themselves in the workspace: when they last read each conversation, and their
saved lists (view, filters and sort under a name). Writes only; the list reads them in selectors."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations.models import Conversation, ConversationRead, SavedFilter
from customers.models import Tenant

SAVED_FILTERS_PER_MEMBER = 30


def conversation_mark_read(*, tenant: Tenant, user, conversation: Conversation, at: datetime | None = None) -> None:
    """The member has seen the conversation as of `at` (now); one upsert, called when they open it."""
    ConversationRead.objects.bulk_create(
        [ConversationRead(tenant=tenant, user=user, conversation=conversation, last_read_at=at or timezone.now())],
        update_conflicts=True, unique_fields=["tenant", "user", "conversation"], update_fields=["last_read_at"],
    )


def saved_filter_save(*, tenant: Tenant, user, name: str, query: str) -> SavedFilter:
    """Save the list as it is under `name`; saving under an existing name replaces that one."""
    name = " ".join(name.split())[:60]
    if not name:
        raise ValidationError("Give the filter a name.")
    saved = SavedFilter.objects.for_tenant(tenant).filter(user=user)
    if not saved.filter(name=name).exists() and saved.count() >= SAVED_FILTERS_PER_MEMBER:
        raise ValidationError(f"You can keep {SAVED_FILTERS_PER_MEMBER} saved filters; delete one first.")
    saved_filter, _ = SavedFilter.objects.update_or_create(
        tenant=tenant, user=user, name=name, defaults={"query": query[:500]}
    )
    return saved_filter


def saved_filter_delete(*, tenant: Tenant, user, saved_filter_id: int) -> bool:
    """Delete one of the member's own saved filters; False when there is no such filter of theirs."""
    deleted, _ = SavedFilter.objects.for_tenant(tenant).filter(user=user, pk=saved_filter_id).delete()
    return deleted > 0
