from __future__ import annotations

from django.db.models import Q, QuerySet

from conversations.models import Conversation, TimelineEntry
from customers.models import Customer, Membership, Role, Tenant


def conversation_list(*, tenant: Tenant, membership: Membership, status: str | None = None) -> QuerySet[Conversation]:
    """Conversations a member may see: agents their own, their teams' and unassigned ones; supervisors all."""
    conversations = Conversation.objects.for_tenant(tenant).select_related("customer", "assignee", "team")
    if not membership.has_role(Role.SUPERVISOR):
        conversations = conversations.filter(
            Q(assignee=membership.user) | Q(assignee__isnull=True) | Q(team__members=membership)
        ).distinct()
    if status:
        conversations = conversations.filter(status=status)
    return conversations.order_by("-updated_at")


def conversation_get(*, tenant: Tenant, membership: Membership, number: int) -> Conversation:
    return conversation_list(tenant=tenant, membership=membership).get(number=number)


def conversation_timeline(*, conversation: Conversation) -> QuerySet[TimelineEntry]:
    """The conversation's entries plus the customer-level events (merges) that concern it."""
    return (
        TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(Q(conversation=conversation) | Q(conversation__isnull=True, customer_id=conversation.customer_id))
        .select_related("author", "inbox")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


def customer_timeline(*, tenant: Tenant, customer: Customer) -> QuerySet[TimelineEntry]:
    return (
        TimelineEntry.objects.for_tenant(tenant).filter(customer=customer)
        .select_related("author", "inbox", "conversation").order_by("created_at", "id")
    )


def conversation_reply_channels(*, conversation: Conversation) -> list[tuple[str, str]]:
    """Channels an agent can answer on: those the customer has an address for and an adapter sends on,
    the channel of the customer's last message first."""
    from channels_app.adapters.base import adapter_exists
    from channels_app.models import CHANNEL_IDENTITY_KIND, Channel

    kinds = set(conversation.customer.identities.values_list("kind", flat=True))
    channels = [
        (channel.value, channel.label)
        for channel in Channel
        if CHANNEL_IDENTITY_KIND.get(channel) in kinds and adapter_exists(channel)
    ]
    last_inbound = (
        conversation.entries.filter(kind="message", direction="inbound").order_by("-created_at")
        .values_list("channel", flat=True).first()
    )
    channels.sort(key=lambda choice: choice[0] != last_inbound)
    return channels
