from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from conversations.models import CannedResponse, Conversation, Status, TimelineEntry
from customers.models import Customer, Identity, Membership, Role, Tenant


def conversation_list(*, tenant: Tenant, membership: Membership, status: str | None = None) -> QuerySet[Conversation]:
    """Conversations a member may see: agents their own, their teams' and unassigned ones; supervisors all."""
    conversations = Conversation.objects.for_tenant(tenant).select_related("customer", "assignee", "team")
    if not membership.has_role(Role.SUPERVISOR):
        conversations = conversations.filter(_visible_to_agent(membership))
    if status:
        conversations = conversations.filter(status=status)
    return conversations.order_by("-updated_at")


def _visible_to_agent(membership: Membership) -> Q:
    return (
        Q(assignee=membership.user_id) | Q(assignee__isnull=True)
        | Q(team_id__in=membership.teams.values("pk"))
    )


# The workspace's left-hand views: name -> (label, condition, who may use it).
SLA_AT_RISK_WITHIN = timedelta(minutes=30)


def _workspace_views(membership: Membership, now) -> dict[str, tuple[str, Q]]:
    soon = now + SLA_AT_RISK_WITHIN
    views = {
        "mine": ("Mine", Q(status=Status.OPEN, assignee=membership.user_id)),
        "unassigned": ("Unassigned", Q(status=Status.OPEN, assignee__isnull=True)),
        "teams": ("My teams", Q(status=Status.OPEN, team_id__in=membership.teams.values("pk"))),
        "all": ("All open", Q(status=Status.OPEN)),
        "pending": ("Pending", Q(status=Status.PENDING)),
        "snoozed": ("Snoozed", Q(status=Status.SNOOZED)),
        "resolved": ("Resolved", Q(status=Status.RESOLVED)),
        "sla": ("SLA at risk", Q(status=Status.OPEN) & (
            Q(first_response_due_at__lte=soon) | Q(next_response_due_at__lte=soon) | Q(resolution_due_at__lte=soon)
        )),
    }
    if not membership.has_role(Role.SUPERVISOR):
        del views["all"]
    return views


def workspace_view_counts(*, tenant: Tenant, membership: Membership) -> list[tuple[str, str, int]]:
    """Each view with its live count, in one query."""
    views = _workspace_views(membership, timezone.now())
    counts = conversation_list(tenant=tenant, membership=membership).order_by().aggregate(
        **{name: Count("pk", filter=condition) for name, (_, condition) in views.items()}
    )
    return [(name, label, counts[name]) for name, (label, _) in views.items()]


def conversation_search(*, tenant: Tenant, membership: Membership, query: str) -> QuerySet[Conversation]:
    """Conversations (any status) whose customer's name or any address contains the query, or whose
    messages and notes match it (Postgres full-text search on the GIN index; plain containment elsewhere)."""
    query = query.strip()[:200]
    visible = conversation_list(tenant=tenant, membership=membership)
    if not query:
        return visible.none()
    words = re.findall(r"\w+", query)
    if settings.USING_POSTGRES and words:
        # Every word as a prefix ("parcel" finds "parcels"); words are \w+ only, so the raw query is safe.
        prefixes = " & ".join(f"{word}:*" for word in words[:10])
        text_match = TimelineEntry.objects.for_tenant(tenant).annotate(
            search=SearchVector("body", config="simple")
        ).filter(search=SearchQuery(prefixes, config="simple", search_type="raw"))
    else:
        text_match = TimelineEntry.objects.for_tenant(tenant).filter(body__icontains=query)
    by_customer = Q(customer__name__icontains=query) | Q(
        customer_id__in=Identity.objects.for_tenant(tenant).filter(value__icontains=query.lower()).values("customer_id")
    )
    return visible.filter(by_customer | Q(pk__in=text_match.values("conversation_id"))).order_by("-updated_at")


def workspace_view(
    *, tenant: Tenant, membership: Membership, view: str, channel: str = "", priority: str = ""
) -> QuerySet[Conversation]:
    views = _workspace_views(membership, timezone.now())
    _, condition = views.get(view, views["unassigned"])
    conversations = conversation_list(tenant=tenant, membership=membership).filter(condition)
    if channel:
        conversations = conversations.filter(last_channel=channel)
    if priority:
        conversations = conversations.filter(priority=priority)
    # Longest-waiting first; then the most recently active.
    return conversations.order_by(F("waiting_since").asc(nulls_last=True), "-updated_at")


def conversation_get(*, tenant: Tenant, membership: Membership, number: int) -> Conversation:
    return conversation_list(tenant=tenant, membership=membership).get(number=number)


def conversation_timeline(*, conversation: Conversation) -> QuerySet[TimelineEntry]:
    """The conversation's entries plus the customer-level events (merges) that concern it."""
    return (
        TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(Q(conversation=conversation) | Q(conversation__isnull=True, customer_id=conversation.customer_id))
        .select_related("author", "inbox", "customer")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


# The newest entries a conversation page shows at first; earlier ones load on request.
TIMELINE_PAGE = 100


def conversation_timeline_recent(*, conversation: Conversation, everything: bool = False) -> tuple[list[TimelineEntry], int]:
    """The newest TIMELINE_PAGE entries in time order (all with everything=True), and how many are left out."""
    entries = conversation_timeline(conversation=conversation)
    if everything:
        return list(entries), 0
    newest = list(entries.order_by("-created_at", "-id")[: TIMELINE_PAGE + 1])
    if len(newest) <= TIMELINE_PAGE:
        return newest[::-1], 0
    return newest[:TIMELINE_PAGE][::-1], entries.count() - TIMELINE_PAGE


def customer_timeline(*, tenant: Tenant, customer: Customer) -> QuerySet[TimelineEntry]:
    return (
        TimelineEntry.objects.for_tenant(tenant).filter(customer=customer)
        .select_related("author", "inbox", "conversation", "customer").order_by("created_at", "id")
    )


def conversation_reply_channels(*, conversation: Conversation) -> list[tuple[str, str]]:
    """Channels an agent can answer on: those the customer has an address for and an adapter sends on,
    the channel of the customer's last message first."""
    from channels_app.adapters.base import adapter_exists
    from channels_app.models import CHANNEL_IDENTITY_KIND, Channel

    kinds = {identity.kind for identity in conversation.customer.identities.all()}
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


CANNED_VARIABLES = ("customer_name", "customer_first_name", "agent_name")


def canned_responses_for(*, tenant: Tenant, conversation: Conversation, agent_membership: Membership) -> list[dict]:
    """The tenant's canned responses with this conversation's variables filled in, for the composer."""
    customer_name = conversation.customer.name or "there"
    values = {
        "customer_name": customer_name,
        "customer_first_name": customer_name.split()[0],
        "agent_name": agent_membership.name,
    }
    rendered = []
    for canned in CannedResponse.objects.for_tenant(tenant):
        text = canned.body
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        rendered.append({"shortcut": canned.shortcut, "title": canned.title, "text": text})
    return rendered


def member_names(*, tenant: Tenant) -> dict[int, str]:
    """User id -> display name of the tenant's people, for naming agents on the timeline in one query."""
    return {
        membership.user_id: membership.name
        for membership in Membership.objects.for_tenant(tenant).select_related("user")
    }


def customer_other_conversations(
    *, tenant: Tenant, membership: Membership, conversation: Conversation, limit: int = 10
) -> list[Conversation]:
    """The customer's other conversations this member may open, newest first."""
    return list(
        conversation_list(tenant=tenant, membership=membership)
        .filter(customer_id=conversation.customer_id).exclude(pk=conversation.pk)
        .order_by("-updated_at")[:limit]
    )


def conversations_with_last_message(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Adds the last message's text and direction for the list's snippet (one index probe per listed row)."""
    last_message = TimelineEntry.objects.filter(
        conversation=OuterRef("pk"), kind__in=("message", "note")
    ).order_by("-created_at", "-id")
    return conversations.annotate(
        last_message_body=Subquery(last_message.values("body")[:1]),
        last_message_direction=Subquery(last_message.values("direction")[:1]),
    )
