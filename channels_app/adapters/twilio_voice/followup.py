"""The SMS follow-up after a call: which number and inbox it goes from, and a short draft the agent edits.

It is sent like any reply (channels_app.services.reply_send), from the SMS inbox sharing the voice
inbox's number when there is one, so the customer sees the number that just called (or was called).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from channels_app.models import Channel, Inbox
from conversations.models import Direction, EntryKind, TimelineEntry
from conversations.selectors import conversation_list
from customers.models import Membership, Tenant


@dataclass(frozen=True)
class FollowUp:
    entry: TimelineEntry
    number: str  # the customer's side of the call
    inbox: Inbox | None  # None: reply_send picks the tenant's SMS inbox as for any reply
    body: str


def call_entry_for_member(*, tenant: Tenant, membership: Membership, entry_id: int) -> TimelineEntry | None:
    """A call on a conversation this member may open; another tenant's or team's is not found."""
    return (
        TimelineEntry.objects.for_tenant(tenant).select_related("inbox", "conversation__customer")
        .filter(pk=entry_id, kind=EntryKind.CALL,
                conversation__in=conversation_list(tenant=tenant, membership=membership).values("pk"))
        .first()
    )


def call_customer_number(entry: TimelineEntry) -> str:
    return entry.data.get("to" if entry.direction == Direction.OUTBOUND else "from", "")


def followup_inbox(*, tenant: Tenant, entry: TimelineEntry) -> Inbox | None:
    """The active SMS inbox on the voice inbox's number, if the tenant has one."""
    numbers = {n for n in (entry.inbox.address if entry.inbox else "",
                           entry.data.get("from" if entry.direction == Direction.OUTBOUND else "to", "")) if n}
    if not numbers:
        return None
    return (
        Inbox.objects.for_tenant(tenant).filter(channel=Channel.SMS, is_active=True)
        .filter(Q(address__in=numbers) | Q(settings__from_number__in=list(numbers))).order_by("pk").first()
    )


def followup_draft(entry: TimelineEntry) -> str:
    customer = entry.conversation.customer if entry.conversation is not None else None
    first_name = (customer.name.split() or [""])[0] if customer is not None and customer.name else ""
    hello = f"Hi {first_name}, " if first_name else "Hi, "
    answered = bool(entry.data.get("answered_at"))
    if entry.direction == Direction.OUTBOUND and not answered:
        return f"{hello}we just tried to call you. When is a good time to reach you? You can also reply here."
    if entry.data.get("voicemail") and not answered:
        return f"{hello}thanks for your voicemail. We got it and will get back to you shortly."
    if not answered:
        return f"{hello}sorry we missed your call. How can we help? You can reply to this message."
    return f"{hello}thanks for your call. As promised, here is a short follow-up: "


def call_followup(*, tenant: Tenant, entry: TimelineEntry) -> FollowUp:
    return FollowUp(entry=entry, number=call_customer_number(entry), inbox=followup_inbox(tenant=tenant, entry=entry),
                    body=followup_draft(entry))
