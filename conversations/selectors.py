from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import reduce
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Least
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from channels_app.models import Channel, Inbox
from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationRead,
    DeliveryStatus,
    Priority,
    SavedFilter,
    Status,
    TimelineEntry,
)
from customers.models import Customer, Identity, Membership, Role, Tenant
from routing.models import Team


def conversation_list(*, tenant: Tenant, membership: Membership, status: str | None = None) -> QuerySet[Conversation]:
    """Conversations a member may see: agents their own, their teams' and unassigned ones; supervisors all."""
    conversations = Conversation.objects.for_tenant(tenant).select_related("customer", "assignee", "team")
    conversations = conversations.filter(reduce(operator.or_, _visible_parts(membership)))
    if status:
        conversations = conversations.filter(status=status)
    return conversations.order_by("-updated_at")


def _visible_parts(membership: Membership) -> list[Q]:
    """What a member may see as disjoint conditions, each a range of one index (conv_list_assignee twice,
    conv_list_team): a view's count or page reads each part on its own. As one OR Postgres can use none of
    them and scanned the whole table for a view the agent sees little of (an agent's "Resolved" count:
    440 ms of a 1M-conversation tenant's, for no row)."""
    if membership.has_role(Role.SUPERVISOR):
        return [Q()]
    mine = Q(assignee=membership.user_id)
    team_ids = _member_team_ids(membership)
    teams = [Q(team_id__in=team_ids, assignee__isnull=False) & ~mine] if team_ids else []
    return [mine, Q(assignee__isnull=True), *teams]


def _member_team_ids(membership: Membership) -> list[int]:
    """The member's team ids as values, not a subquery: Postgres then knows which teams and how many rows of
    a status they have (for a subquery it guessed a quarter of the table and scanned it). Read once per
    membership object, i.e. once per request for the view counts and the page."""
    if not hasattr(membership, "_workspace_team_ids"):
        membership._workspace_team_ids = list(membership.teams.values_list("pk", flat=True))
    return membership._workspace_team_ids


# The workspace's left-hand views: name -> (label, condition, who may use it).
SLA_AT_RISK_WITHIN = timedelta(minutes=30)
SLA_DUE = Least("first_response_due_at", "next_response_due_at", "resolution_due_at")


def _sla_due_by(moment) -> Q:
    if settings.USING_POSTGRES:
        # Postgres' LEAST skips NULLs: the soonest due time still running, on the index conv_sla_due.
        return Q(LessThanOrEqual(SLA_DUE, moment))
    # SQLite's (MIN) is NULL as soon as one due time is.
    return Q(first_response_due_at__lte=moment) | Q(next_response_due_at__lte=moment) | Q(resolution_due_at__lte=moment)


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
        "sla": ("SLA at risk", Q(status=Status.OPEN) & _sla_due_by(soon)),
    }
    if not membership.has_role(Role.SUPERVISOR):
        del views["all"]
    return views


def workspace_view_names(*, membership: Membership) -> list[str]:
    return list(_workspace_views(membership, timezone.now()))


# A view's count stops here (the page shows "999+"): counting every resolved conversation of a big
# tenant on each page view costs more than the exact number is worth.
VIEW_COUNT_CAP = 1000


def workspace_view_counts(*, tenant: Tenant, membership: Membership) -> list[tuple[str, str, int]]:
    """Each view with its live count up to VIEW_COUNT_CAP, in one query: one bounded index range count
    per view and part of what the member may see (they are disjoint, so the counts add up) instead of
    one pass over all the tenant's conversations."""
    views = _workspace_views(membership, timezone.now())
    visible_parts = _visible_parts(membership)
    tenant_conversations = Conversation.objects.for_tenant(tenant).order_by()
    parts, params = [], []
    for _, condition in views.values():
        for visible in visible_parts:
            sql, part_params = (
                tenant_conversations.filter(visible, condition).values("pk")[:VIEW_COUNT_CAP].query.sql_with_params()
            )
            # ORM-compiled, values as params
            parts.append(f"(SELECT count(*) FROM ({sql}) AS part_{len(parts)})")  # noqa: S608
            params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        counts = cursor.fetchone()
    per_view = len(visible_parts)
    return [
        (name, label, min(sum(counts[n * per_view : (n + 1) * per_view]), VIEW_COUNT_CAP))
        for n, (name, (label, _)) in enumerate(views.items())
    ]


# Search walks this many of the most recently active conversations first: a common word fills a page
# there; a word too rare for that has few matches overall, which the GIN index then lists cheaply.
SEARCH_RECENT_WINDOW = 2000
SEARCH_MAX_MATCHES = 5000


def _document_matches(words: list[str]) -> RawSQL:
    # Every word as a prefix ("parcel" finds "parcels"); words are \w+ only and go in as a parameter.
    # `search_document` is kept by triggers on the timeline (migration 0009); it is not a model field.
    prefixes = " & ".join(f"{word}:*" for word in words[:10])
    return RawSQL(
        "conversations_conversation.search_document @@ to_tsquery('simple'::regconfig, %s)", [prefixes],
        output_field=BooleanField(),
    )


def conversation_search_page(*, tenant: Tenant, membership: Membership, query: str, cursor: str = "") -> ListPage:
    """Conversations (any status) whose customer's name or any address contains the query, or whose
    messages and notes contain its words, most recently active first, one page after `cursor`.

    Postgres estimates every prefix query alike, so it cannot choose between walking recent conversations
    (right for a common word) and the GIN index (right for a rare one); this does both, bounded: the
    SEARCH_RECENT_WINDOW most recent first, then, if the page is not full, the index (whose matches are few
    then; at most SEARCH_MAX_MATCHES are considered)."""
    query = query.strip()[:200]
    if not query:
        return ListPage([], None)
    visible = _after_cursor(
        conversation_list(tenant=tenant, membership=membership).order_by(*(o for _, o in LIST_ORDERS["recent"])),
        "recent", cursor,
    )
    # Name and address parts are ILIKE '%...%', served by trigram indexes (migration 0009).
    customer_ids = list(
        Customer.objects.for_tenant(tenant).filter(name__icontains=query).values_list("pk", flat=True)[:1000].union(
            Identity.objects.for_tenant(tenant).filter(value__icontains=query).values_list("customer_id", flat=True)[:1000]
        )
    )
    by_customer = Q(customer_id__in=customer_ids)
    words = re.findall(r"\w+", query)
    if not words:
        return _page(_rows(visible.filter(by_customer), membership=membership), "recent")
    if not settings.USING_POSTGRES:
        text_match = TimelineEntry.objects.for_tenant(tenant).filter(body__icontains=query)
        return _page(
            _rows(visible.filter(by_customer | Q(pk__in=text_match.values("conversation_id"))), membership=membership),
            "recent",
        )
    matches = _document_matches(words)
    # The window as a range of the (tenant, updated_at) index from its oldest row: as `pk IN (recent ids)`
    # Postgres hashed the ids and joined them to every match of a common word (70 ms instead of 18).
    oldest = visible.values_list("updated_at", flat=True)[SEARCH_RECENT_WINDOW - 1 : SEARCH_RECENT_WINDOW].first()
    recent = visible if oldest is None else visible.filter(updated_at__gte=oldest)
    rows = _rows(recent.filter(by_customer | Q(matches)), membership=membership)
    if len(rows) > LIST_PAGE_SIZE or oldest is None:
        return _page(rows, "recent")
    text_ids = list(visible.order_by().filter(matches).values_list("pk", flat=True)[:SEARCH_MAX_MATCHES])
    return _page(_rows(visible.filter(by_customer | Q(pk__in=text_ids)), membership=membership), "recent")


def workspace_view(
    *, tenant: Tenant, membership: Membership, view: str, channel: str = "", priority: str = "",
    inbox: int | None = None, team: int | None = None, tag: str = "", sort: str = "waiting",
) -> QuerySet[Conversation]:
    """One left-hand view with its filters, in the list's order. Inbox and team ids are looked up within
    the tenant, so another tenant's id filters to nothing."""
    views = _workspace_views(membership, timezone.now())
    _, condition = views.get(view, views["unassigned"])
    conversations = conversation_list(tenant=tenant, membership=membership).filter(condition)
    if channel:
        conversations = conversations.filter(channels__contains=[channel])
    if priority:
        conversations = conversations.filter(priority=priority)
    if inbox is not None:
        conversations = conversations.filter(
            first_inbox_id__in=Inbox.objects.for_tenant(tenant).filter(pk=inbox).values("pk")
        )
    if team is not None:
        conversations = conversations.filter(team_id__in=Team.objects.for_tenant(tenant).filter(pk=team).values("pk"))
    if tag:
        conversations = conversations.filter(tags__contains=[tag])
    return conversations.order_by(*(order for _, order in LIST_ORDERS[sort if sort in LIST_ORDERS else "waiting"]))


# The list's sorts: (attribute, ORDER BY term) from the first key to the tiebreaker. "waiting" is longest
# waiting first (nobody waiting last), then the most recently active; "priority" puts urgent first.
# Each matches an index on (tenant, status, ...) or (tenant, assignee, status, ...).
LIST_ORDERS = {
    "waiting": [
        ("waiting_since", F("waiting_since").asc(nulls_last=True)),
        ("updated_at", F("updated_at").desc()),
        ("id", F("id").desc()),
    ],
    "priority": [
        ("priority_order", F("priority_order").asc()),
        ("waiting_since", F("waiting_since").asc(nulls_last=True)),
        ("updated_at", F("updated_at").desc()),
        ("id", F("id").desc()),
    ],
    "recent": [("updated_at", F("updated_at").desc()), ("id", F("id").desc())],
}
LIST_SORTS = [("waiting", "Longest waiting"), ("priority", "Priority")]
LIST_PAGE_SIZE = 50
_CURSOR_SALT = "conversations.list.cursor"


@dataclass(frozen=True)
class ListFilters:
    """What the workspace list shows, parsed from the query string; anything invalid falls back to the default."""

    view: str = "mine"
    channel: str = ""
    inbox: int | None = None
    team: int | None = None
    priority: str = ""
    tag: str = ""
    sort: str = "waiting"

    @classmethod
    def parse(cls, params: Mapping[str, str], *, views: Iterable[str]) -> ListFilters:
        def positive_int(name: str) -> int | None:
            value = params.get(name, "")
            return int(value) if value.isdigit() and 0 < int(value) < 2**31 else None

        view = params.get("view", "")
        channel = params.get("channel", "")
        priority = params.get("priority", "")
        sort = params.get("sort", "")
        return cls(
            view=view if view in set(views) else "mine",
            channel=channel if channel in Channel.values else "",
            inbox=positive_int("inbox"),
            team=positive_int("team"),
            priority=priority if priority in Priority.values else "",
            # Postgres text cannot hold NUL: a query with one would be a 500, not an empty list.
            tag=params.get("tag", "").replace("\x00", "").strip().lower()[:64],
            sort=sort if sort in dict(LIST_SORTS) else "waiting",
        )

    def query_string(self) -> str:
        """The filters as a query string, leaving out defaults (saved filters and page links use it)."""
        defaults = ListFilters()
        return urlencode({
            name: value for name, value in asdict(self).items()
            if value not in (None, "") and (name == "view" or value != getattr(defaults, name))
        })


@dataclass(frozen=True)
class ListPage:
    conversations: list[Conversation]
    next_cursor: str | None


def _cursor_dump(sort: str, conversation: Conversation) -> str:
    values = []
    for attribute, _ in LIST_ORDERS[sort]:
        value = getattr(conversation, attribute)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return signing.dumps([sort, *values], salt=_CURSOR_SALT)


def _cursor_load(sort: str, cursor: str) -> list | None:
    """The sort keys of the last row of the previous page; None (page one) for a cursor that is forged,
    damaged or made for another sort."""
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
    except signing.BadSignature:
        return None
    keys = LIST_ORDERS[sort]
    if not isinstance(data, list) or len(data) != len(keys) + 1 or data[0] != sort:
        return None
    values = []
    for (attribute, _), value in zip(keys, data[1:], strict=True):
        if attribute in ("waiting_since", "updated_at") and value is not None:
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return None
        values.append(value)
    return values


def _after(sort: str, values: list) -> Q:
    """Rows strictly after the cursor in the sort's order (a keyset condition over mixed directions)."""
    after, equal = Q(pk__in=[]), Q()
    for (attribute, order), value in zip(LIST_ORDERS[sort], values, strict=True):
        if order.descending:
            step = Q(**{f"{attribute}__lt": value})
        elif value is None:
            step = Q(pk__in=[])  # NULLS LAST: nothing comes after a NULL but more NULLs
        else:
            step = Q(**{f"{attribute}__gt": value})
            if attribute == "waiting_since":
                step |= Q(waiting_since__isnull=True)
        after |= equal & step
        equal &= Q(**{f"{attribute}__isnull": True}) if value is None else Q(**{attribute: value})
    return after


def _with_read_state(conversations: QuerySet[Conversation], user_id: int) -> QuerySet[Conversation]:
    """`unread`: the customer wrote after this member last opened the conversation (or it was never opened)."""
    read_since = ConversationRead.objects.filter(
        tenant_id=OuterRef("tenant_id"), user_id=user_id, conversation_id=OuterRef("pk"),
        last_read_at__gte=OuterRef("last_customer_message_at"),
    )
    return conversations.annotate(unread=ExpressionWrapper(
        Q(last_customer_message_at__isnull=False) & ~Exists(read_since), output_field=BooleanField()
    ))


def _after_cursor(conversations: QuerySet[Conversation], sort: str, cursor: str) -> QuerySet[Conversation]:
    values = _cursor_load(sort, cursor) if cursor else None
    return conversations if values is None else conversations.filter(_after(sort, values))


def _rows(conversations: QuerySet[Conversation], *, membership: Membership) -> list[Conversation]:
    """One page and one row more (is there a next page?), with the unread marker and the last message
    snippet, in one query."""
    annotated = conversations_with_last_message(_with_read_state(conversations, membership.user_id))
    return list(annotated[: LIST_PAGE_SIZE + 1])


def _page(rows: list[Conversation], sort: str) -> ListPage:
    if len(rows) <= LIST_PAGE_SIZE:
        return ListPage(rows, None)
    return ListPage(rows[:LIST_PAGE_SIZE], _cursor_dump(sort, rows[LIST_PAGE_SIZE - 1]))


def workspace_page(*, tenant: Tenant, membership: Membership, filters: ListFilters, cursor: str = "") -> ListPage:
    """One page of a left-hand view after `cursor` (a bad or foreign cursor gives page one)."""
    conversations = workspace_view(
        tenant=tenant, membership=membership, view=filters.view, channel=filters.channel,
        priority=filters.priority, inbox=filters.inbox, team=filters.team, tag=filters.tag, sort=filters.sort,
    )
    conversations = _after_cursor(conversations, filters.sort, cursor)
    visible_parts = _visible_parts(membership)
    if len(visible_parts) > 1:
        # The page is among the first rows of each part, each read in the list's order from its own index.
        first_rows = [conversations.filter(visible).values("pk")[: LIST_PAGE_SIZE + 1] for visible in visible_parts]
        conversations = conversations.filter(pk__in=first_rows[0].union(*first_rows[1:], all=True))
    return _page(_rows(conversations, membership=membership), filters.sort)


def list_filter_choices(*, tenant: Tenant, membership: Membership) -> dict[str, list[tuple]]:
    """The tenant's inboxes and teams for the filters and the member's saved filters, in one query."""
    rows = (
        Inbox.objects.for_tenant(tenant).annotate(kind=Value("inbox"), query=Value(""))
        .values_list("kind", "pk", "name", "query")
        .union(
            Team.objects.for_tenant(tenant).annotate(kind=Value("team"), query=Value(""))
            .values_list("kind", "pk", "name", "query"),
            SavedFilter.objects.for_tenant(tenant).filter(user_id=membership.user_id).annotate(kind=Value("saved"))
            .values_list("kind", "pk", "name", "query"),
            all=True,
        )
        .order_by("name", "pk")
    )
    choices: dict[str, list[tuple]] = {"filter_inboxes": [], "filter_teams": [], "saved_filters": []}
    names = {"inbox": "filter_inboxes", "team": "filter_teams", "saved": "saved_filters"}
    for kind, pk, name, query in rows:
        choices[names[kind]].append((pk, name, query) if kind == "saved" else (pk, name))
    return choices


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
    from channels_app.adapters.base import adapter_sends_text
    from channels_app.models import CHANNEL_IDENTITY_KIND, Channel

    kinds = {identity.kind for identity in conversation.customer.identities.all()}
    channels = [
        (channel.value, channel.label)
        for channel in Channel
        if CHANNEL_IDENTITY_KIND.get(channel) in kinds and adapter_sends_text(channel)
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
    # A reply waiting for its time or cancelled is not what the customer last read.
    last_message = TimelineEntry.objects.filter(conversation=OuterRef("pk"), kind="message").exclude(
        delivery_status__in=(DeliveryStatus.SCHEDULED, DeliveryStatus.CANCELLED)
    ).order_by("-created_at", "-id")
    return conversations.annotate(
        last_message_body=Subquery(last_message.values("body")[:1]),
        last_message_direction=Subquery(last_message.values("direction")[:1]),
    )

