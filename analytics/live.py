"""The live overview's reads (and the reports' heatmap drill-down): what is open right now, per channel, and who is working on what.

Current state only (conversations, their SLA clocks, agent profiles), never the analytics events or rollups.
Each tile set is a handful of aggregate queries over the tenant's *open* conversations, which the
(tenant, status, ...) indexes of the workspace list reach directly; the at-risk count joins the SLA clocks of
the running ones only. A visibility limit (agents: themselves; supervisors: their teams) narrows every query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Window
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, RowNumber
from django.db.models.lookups import GreaterThan, LessThanOrEqual

from channels_app.models import Channel
from conversations.models import Conversation, Status
from conversations.selectors import SLA_DUE
from customers.models import Customer, Membership, Tenant
from routing.models import ConversationSla, Presence
from routing.sla import DUE_FIELDS

# How many of an agent's conversations the board lists (the rest are counted).
BOARD_CONVERSATIONS_PER_AGENT = 8


@dataclass(frozen=True)
class Visibility:
    """Whose work a member may see: None on both = the whole tenant (user ids and team ids otherwise)."""

    agent_ids: frozenset[int] | None = None
    team_ids: frozenset[int] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.agent_ids is None and self.team_ids is None

    def conversations_q(self) -> Q:
        if self.unrestricted:
            return Q()
        condition = Q(pk__in=[])
        if self.agent_ids:
            condition |= Q(assignee_id__in=sorted(self.agent_ids))
        if self.team_ids:
            condition |= Q(team_id__in=sorted(self.team_ids))
        return condition


@dataclass
class ChannelTiles:
    channel: str  # "" = every channel
    label: str
    open: int = 0
    unassigned: int = 0
    at_risk: int = 0
    breached: int = 0
    waiting_since: datetime | None = None
    longest_waiting_number: int | None = None


@dataclass
class LiveTiles:
    overall: ChannelTiles
    channels: list[ChannelTiles] = field(default_factory=list)


def _open_conversations(tenant: Tenant, visibility: Visibility) -> QuerySet[Conversation]:
    return Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN).filter(visibility.conversations_q())


def _at_risk_q(now: datetime) -> Q:
    """One metric's at-risk moment (kept in its SLA clock's state) has passed while its due time has not."""
    moment = now.timestamp()
    risky = Q(pk__in=[])
    for metric, due_field in DUE_FIELDS.items():
        risky |= Q(**{f"{due_field}__gt": now}) & Exists(
            ConversationSla.objects.filter(
                conversation_id=OuterRef("pk"), **{f"state__metrics__{metric}__at_risk__lte": moment}
            )
        )
    return risky


def live_tiles(*, tenant: Tenant, visibility: Visibility, now: datetime) -> LiveTiles:
    """Open, unassigned, waiting longest, SLA at risk and breached, per channel (the one in use now) and overall."""
    open_conversations = _open_conversations(tenant, visibility)
    rows = {
        row["last_channel"]: row
        for row in open_conversations.values("last_channel").annotate(
            open=Count("pk"),
            unassigned=Count("pk", filter=Q(assignee__isnull=True)),
            breached=Count("pk", filter=Q(LessThanOrEqual(SLA_DUE, now))),
            waiting_since=Min("waiting_since"),
        ).order_by()
    }
    # Not breached yet (the soonest due time is ahead) and past an at-risk moment: only running clocks are read.
    at_risk = dict(
        open_conversations.filter(GreaterThan(SLA_DUE, now)).filter(_at_risk_q(now))
        .values("last_channel").annotate(n=Count("pk")).order_by().values_list("last_channel", "n")
    )
    longest = dict(
        open_conversations.filter(waiting_since__isnull=False)
        .order_by("last_channel", "waiting_since", "pk").distinct("last_channel")
        .values_list("last_channel", "number")
    )
    overall = ChannelTiles(channel="", label="All channels")
    channels = []
    for value, label in Channel.choices:
        row = rows.get(value)
        if row is None:
            continue
        tiles = ChannelTiles(
            channel=value, label=label, open=row["open"], unassigned=row["unassigned"], breached=row["breached"],
            at_risk=at_risk.get(value, 0), waiting_since=row["waiting_since"], longest_waiting_number=longest.get(value),
        )
        channels.append(tiles)
        overall.open += tiles.open
        overall.unassigned += tiles.unassigned
        overall.breached += tiles.breached
        overall.at_risk += tiles.at_risk
        if tiles.waiting_since is not None and (overall.waiting_since is None or tiles.waiting_since < overall.waiting_since):
            overall.waiting_since, overall.longest_waiting_number = tiles.waiting_since, tiles.longest_waiting_number
    return LiveTiles(overall=overall, channels=channels)


@dataclass
class ChannelLoad:
    channel: str
    label: str
    load: int
    capacity: int

    @property
    def full(self) -> bool:
        return self.capacity > 0 and self.load >= self.capacity


@dataclass
class BoardConversation:
    number: int
    customer: str
    channel: str
    waiting_since: datetime | None
    sla_due: datetime | None


@dataclass
class BoardAgent:
    user_id: int
    name: str
    role: str
    presence: str
    presence_label: str
    presence_since: datetime | None
    loads: list[ChannelLoad]
    conversations: list[BoardConversation]
    open_total: int


PRESENCE_ORDER = {Presence.ONLINE: 0, Presence.AWAY: 1, Presence.OFFLINE: 2}


def agent_board(*, tenant: Tenant, visibility: Visibility) -> list[BoardAgent]:
    """Every visible member with presence, open load against capacity per channel and their open conversations.

    Four queries whatever the number of agents: the members, their loads, their conversations, those customers.
    """
    members = Membership.objects.for_tenant(tenant).select_related("user", "agent_profile").order_by("pk")
    if not visibility.unrestricted:
        members = members.filter(user_id__in=sorted(visibility.agent_ids or ()))
    members = list(members)
    user_ids = [member.user_id for member in members]
    loads: dict[int, dict[str, int]] = defaultdict(dict)
    for user_id, channel, count in (
        Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN, assignee_id__in=user_ids)
        .values("assignee_id", "last_channel").annotate(n=Count("pk")).order_by()
        .values_list("assignee_id", "last_channel", "n")
    ):
        loads[user_id][channel] = count
    listed: dict[int, list[BoardConversation]] = defaultdict(list)
    # Longest waiting first, as the workspace list; the first few per agent only (a window function over the
    # active-conversations index), then the names of just those customers.
    place = Window(RowNumber(), partition_by=[F("assignee_id")],
                   order_by=[F("waiting_since").asc(nulls_last=True), F("updated_at").desc(), F("pk").asc()])
    rows = list(
        Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN, assignee_id__in=user_ids)
        .annotate(sla_due=SLA_DUE, place=place).filter(place__lte=BOARD_CONVERSATIONS_PER_AGENT)
        .order_by("assignee_id", "place")
        .values("assignee_id", "number", "customer_id", "last_channel", "waiting_since", "sla_due")
    )
    names = dict(
        Customer.objects.for_tenant(tenant).filter(pk__in={row["customer_id"] for row in rows}).values_list("pk", "name")
    ) if rows else {}
    for row in rows:
        listed[row["assignee_id"]].append(BoardConversation(
            number=row["number"], customer=names.get(row["customer_id"]) or f"#{row['number']}",
            channel=row["last_channel"], waiting_since=row["waiting_since"], sla_due=row["sla_due"],
        ))
    board = []
    for member in members:
        profile = getattr(member, "agent_profile", None)
        capacity = (profile.capacity or {}) if profile is not None else {}
        presence = profile.presence if profile is not None else Presence.OFFLINE
        mine = loads.get(member.user_id, {})
        channel_loads = [
            ChannelLoad(channel=value, label=label, load=mine.get(value, 0), capacity=int(capacity.get(value, 0) or 0))
            for value, label in Channel.choices
            if mine.get(value) or int(capacity.get(value, 0) or 0)
        ]
        board.append(BoardAgent(
            user_id=member.user_id, name=member.name, role=member.get_role_display(), presence=presence,
            presence_label=Presence(presence).label,
            presence_since=profile.presence_changed_at if profile is not None else None,
            loads=channel_loads, conversations=listed.get(member.user_id, []), open_total=sum(mine.values()),
        ))
    return sorted(board, key=lambda agent: (PRESENCE_ORDER.get(agent.presence, 3), -agent.open_total, agent.name.lower()))


def conversations_opened_at(
    conversations: QuerySet[Conversation], *, zone: ZoneInfo, weekday: int, hour: int
) -> QuerySet[Conversation]:
    """Narrow to conversations opened on an ISO weekday (1 = Monday) at an hour of the tenant's clock
    (the reports' heatmap cell behind a number)."""
    return conversations.annotate(
        opened_weekday=ExtractIsoWeekDay("created_at", tzinfo=zone), opened_hour=ExtractHour("created_at", tzinfo=zone)
    ).filter(opened_weekday=weekday, opened_hour=hour)
