"""Report figures for the analytics pages: KPI tables, daily trends, the arrival heatmap and drill-downs.

Dashboards read the rollups (`analytics.rollups`); drill-downs read conversations and events. Every KPI is
defined in the README's "Analytics glossary". A scope carries the tenant, the tenant-local days, the filters
and what the viewer may see (`scope_for_member`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName, PresenceSpan, RollupLevel
from analytics.rollups import hist_percentile
from channels_app.models import Channel, Inbox
from conversations.models import ACTIVE_STATUSES, Conversation
from customers.models import Membership, Role, Tier
from routing.models import AgentProfile, Presence, Team

if TYPE_CHECKING:
    from customers.models import Tenant

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30

SECONDS, RATIO, COUNT, SCORE = "seconds", "ratio", "count", "score"

# (name, label, unit), in display order.
_KPIS: tuple[tuple[str, str, str], ...] = (
    ("new", "New conversations", COUNT),
    ("reopened", "Reopened", COUNT),
    ("resolved", "Resolved", COUNT),
    ("first_response_median", "First response, median", SECONDS),
    ("first_response_p90", "First response, 90th percentile", SECONDS),
    ("first_response_business_median", "First response, median (business hours)", SECONDS),
    ("first_response_business_p90", "First response, 90th percentile (business hours)", SECONDS),
    ("resolution_median", "Resolution time, median", SECONDS),
    ("resolution_p90", "Resolution time, 90th percentile", SECONDS),
    ("resolution_business_median", "Resolution time, median (business hours)", SECONDS),
    ("resolution_business_p90", "Resolution time, 90th percentile (business hours)", SECONDS),
    ("fcr_rate", "First-contact resolution", RATIO),
    ("average_handle_time", "Average handle time", SECONDS),
    ("csat_average", "CSAT, average score", SCORE),
    ("csat_response_rate", "CSAT response rate", RATIO),
    ("sla_first_response", "SLA attainment, first response", RATIO),
    ("sla_next_response", "SLA attainment, next response", RATIO),
    ("sla_resolution", "SLA attainment, resolution", RATIO),
    ("backlog", "Backlog (open now)", COUNT),
    ("backlog_age_median", "Backlog age, median", SECONDS),
    ("queue_wait_median", "Queue wait, median", SECONDS),
    ("queue_wait_p90", "Queue wait, 90th percentile", SECONDS),
    ("reopen_rate", "Reopen rate", RATIO),
    ("cross_channel_reopen_rate", "Cross-channel reopen rate", RATIO),
    ("channel_switch_rate", "Channel switches per conversation", RATIO),
    ("context_continuity", "Context continuity", RATIO),
    ("occupancy", "Agent occupancy (now)", RATIO),
    ("presence_online_seconds", "Time online", SECONDS),
)
KPI_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _KPIS)
KPI_LABELS: dict[str, str] = {name: label for name, label, _ in _KPIS}
KPI_UNITS: dict[str, str] = {name: unit for name, _, unit in _KPIS}
# Figures about "now" rather than the days of the range.
LIVE_KPIS = frozenset({"backlog", "backlog_age_median", "occupancy"})


class ReportScopeError(ValueError):
    """A filter that cannot be applied (bad day, unknown channel, another tenant's team...): a 400 for views."""


@dataclass(frozen=True)
class ReportScope:
    tenant: Tenant
    start: date  # tenant-local calendar days, inclusive
    end: date
    channel: str = ""  # "" = all
    inbox_id: int | None = None
    team_id: int | None = None
    agent_id: int | None = None
    tier: str = ""
    # None = no restriction (admins); agents: {self}; supervisors: their teams' agents.
    visible_agent_ids: frozenset[int] | None = None
    visible_team_ids: frozenset[int] | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tenant.time_zone or "UTC")

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=self.zone)

    @property
    def ends_at(self) -> datetime:
        """The instant after the last day (exclusive)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.zone)

    @property
    def restricted(self) -> bool:
        return self.visible_agent_ids is not None or self.visible_team_ids is not None

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass
class KpiRow:
    channel: str  # "" for the overall row
    label: str
    values: dict[str, float | int | None] = field(default_factory=dict)


# --- reading rollups ----------------------------------------------------------------------------------------


@dataclass
class _Sums:
    count: int = 0
    total: float = 0.0
    business_total: float = 0.0
    hist: list[int] = field(default_factory=list)
    business_hist: list[int] = field(default_factory=list)

    def add(self, other: _Sums) -> None:
        self.count += other.count
        self.total += other.total
        self.business_total += other.business_total
        self.hist = _hist_add(self.hist, other.hist)
        self.business_hist = _hist_add(self.business_hist, other.business_hist)


def _hist_add(a: list[int], b: list[int]) -> list[int]:
    if not b:
        return a
    if not a:
        return list(b)
    size = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(size)]


def _filters_sql(scope: ReportScope, *, restriction: bool = True) -> tuple[str, list[Any]]:
    """The scope's filters (and, unless told not to, its visibility limit) as SQL conditions on rollup rows."""
    clauses, params = [], []
    if scope.channel:
        clauses.append("channel = %s")
        params.append(scope.channel)
    for column, value in (("inbox_id", scope.inbox_id), ("team_id", scope.team_id), ("agent_id", scope.agent_id)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if scope.tier:
        clauses.append("tier = %s")
        params.append(scope.tier)
    if restriction and scope.restricted:
        clauses.append("(agent_id = ANY(%s) OR team_id = ANY(%s))")
        params.extend(_visible_ids(scope))
    return "".join(f" AND {c}" for c in clauses), params


def _visible_ids(scope: ReportScope) -> list[list[int]]:
    return [sorted(scope.visible_agent_ids or ()), sorted(scope.visible_team_ids or ())]


def _level_for(scope: ReportScope) -> str:
    """The rollup level with the fewest rows that still carries every dimension the scope filters on."""
    if scope.inbox_id or scope.tier:
        return RollupLevel.FULL
    if scope.agent_id or scope.restricted:
        return RollupLevel.AGENT
    if scope.team_id:
        return RollupLevel.TEAM
    return RollupLevel.CHANNEL


def _scoped_rows(scope: ReportScope, *, hourly: bool, start: date | None = None, end: date | None = None) -> tuple[str, list[Any]]:
    """SQL selecting the scope's rollup rows of a day range (daily ones, or hourly) from its level."""
    hours = "hour >= 0" if hourly else "hour = -1"
    base = f"SELECT * FROM analytics_analyticsrollup WHERE tenant_id = %s AND level = %s AND {hours} AND day BETWEEN %s AND %s"  # noqa: S608 - fixed SQL
    days = [start or scope.start, end or scope.end]
    level = _level_for(scope)
    if level != RollupLevel.AGENT or scope.agent_id or not scope.restricted:
        where, params = _filters_sql(scope)
        return f"{base}{where}", [scope.tenant.pk, level, *days, *params]
    # A supervisor's (or agent's) scope without an agent filter: the rows of their teams from the small team
    # level, plus, from the agent level, their agents' work in other teams (the same rows as "agent or team
    # visible", without reading every agent row of their own teams twice over).
    where, params = _filters_sql(scope, restriction=False)
    agents, teams = _visible_ids(scope)
    sql = (f"{base}{where} AND team_id = ANY(%s) UNION ALL "
           f"{base}{where} AND agent_id = ANY(%s) AND team_id <> ALL(%s)")
    return sql, [scope.tenant.pk, RollupLevel.TEAM, *days, *params, teams,
                 scope.tenant.pk, RollupLevel.AGENT, *days, *params, agents, teams]


def _sums_of(row: tuple) -> _Sums:
    count, total, business_total, hist, business_hist = row
    return _Sums(int(count or 0), float(total or 0), float(business_total or 0),
                 [c or 0 for c in hist or []], [c or 0 for c in business_hist or []])


_SUM_COLUMNS = ("sum(count), sum(total), sum(business_total), analytics_hist_sum(hist), "
                "analytics_hist_sum(business_hist)")


@dataclass
class RollupSums:
    """A scope's summed rollup rows, per (channel, metric) and per (day, metric) (all its channels together)."""

    by_channel: dict[tuple[str, str], _Sums] = field(default_factory=dict)
    by_day: dict[tuple[date, str], _Sums] = field(default_factory=dict)


def rollup_sums(scope: ReportScope, *, start: date | None = None, end: date | None = None,
                metrics: tuple[str, ...] | None = None) -> RollupSums:
    """Both groupings in one pass over the rows (GROUPING SETS): the table and every trend chart read this once."""
    rows_sql, params = _scoped_rows(scope, hourly=False, start=start, end=end)
    where = ""
    if metrics is not None:
        where = " WHERE metric = ANY(%s)"
        params.append(list(metrics))
    sql = (
        f"SELECT GROUPING(day), day, channel, metric, {_SUM_COLUMNS} FROM ({rows_sql}) AS scoped{where} "  # noqa: S608 - fixed SQL, values as params
        "GROUP BY GROUPING SETS ((channel, metric), (day, metric))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result = RollupSums()
    for per_channel, day, channel, metric, *sums in rows:
        if per_channel:
            result.by_channel[(channel, metric)] = _sums_of(tuple(sums))
        else:
            result.by_day[(day, metric)] = _sums_of(tuple(sums))
    return result


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _percentile(hist: list[int], count: int, total: float, fraction: float) -> float | None:
    """A histogram percentile (within ~5 %), except that a single value is known exactly: it is the sum."""
    if count == 1 and sum(hist) == 1:
        return total
    return hist_percentile(hist, fraction)


def _kpis_from_sums(sums: dict[str, _Sums]) -> dict[str, float | int | None]:
    """The rollup-based KPIs of one group of summed rows (by metric)."""
    def get(metric: str) -> _Sums:
        return sums.get(metric) or _Sums()

    values: dict[str, float | int | None] = {}
    values["new"] = get("new").count
    values["reopened"] = get("reopened").count
    values["resolved"] = get("resolved").count
    for metric, prefix in (("first_response", "first_response"), ("resolved", "resolution"), ("queue_wait", "queue_wait")):
        s = get(metric)
        values[f"{prefix}_median"] = _percentile(s.hist, s.count, s.total, 0.5)
        values[f"{prefix}_p90"] = _percentile(s.hist, s.count, s.total, 0.9)
        if prefix != "queue_wait":
            values[f"{prefix}_business_median"] = _percentile(s.business_hist, s.count, s.business_total, 0.5)
            values[f"{prefix}_business_p90"] = _percentile(s.business_hist, s.count, s.business_total, 0.9)
    values["fcr_rate"] = _ratio(get("fcr").count - get("fcr_lost").count, get("resolved_first").count)
    calls, messages = get("handle_call"), get("handle_message")
    values["average_handle_time"] = _ratio(calls.total + messages.total, calls.count + messages.count)
    answers = get("csat_answer")
    values["csat_average"] = _ratio(answers.total, answers.count)
    values["csat_response_rate"] = _ratio(answers.count, get("csat_sent").count)
    for target in ("first_response", "next_response", "resolution"):
        met, missed = get(f"sla_met_{target}").count, get(f"sla_missed_{target}").count
        values[f"sla_{target}"] = _ratio(met, met + missed)
    resolved = get("resolved").count
    values["reopen_rate"] = _ratio(get("reopened").count, resolved)
    values["cross_channel_reopen_rate"] = _ratio(
        get("cross_channel_reopen").count + get("cross_channel_return").count, resolved
    )
    switches = get("channel_switch").count
    values["channel_switch_rate"] = _ratio(switches, get("new").count + get("reopened").count)
    values["context_continuity"] = _ratio(switches, switches + get("switch_new_conversation").count)
    return values


# --- live figures (conversations and agents now) -------------------------------------------------------------


def _conversation_filter(scope: ReportScope, *, channel: str = "") -> Q:
    q = Q()
    if channel or scope.channel:
        q &= Q(last_channel=channel or scope.channel)
    if scope.inbox_id:
        q &= Q(first_inbox_id=scope.inbox_id)
    if scope.team_id:
        q &= Q(team_id=scope.team_id)
    if scope.agent_id:
        q &= Q(assignee_id=scope.agent_id)
    if scope.tier:
        q &= Q(customer__tier=scope.tier)
    if scope.restricted:
        q &= Q(assignee_id__in=list(scope.visible_agent_ids or ())) | Q(team_id__in=list(scope.visible_team_ids or ()))
    return q


def _backlog(scope: ReportScope) -> dict[str, tuple[int, float | None]]:
    """Open conversations now and their median age, per last channel and overall ("") in one pass."""
    now = timezone.now()
    open_conversations = (
        Conversation.objects.for_tenant(scope.tenant).filter(_conversation_filter(scope), status__in=ACTIVE_STATUSES)
        .values("last_channel", "created_at")
    )
    sql, params = open_conversations.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GROUPING(last_channel), last_channel, count(*), "  # noqa: S608 - fixed SQL, values as params
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM (%s - created_at))) "
            f"FROM ({sql}) AS open_conversations GROUP BY GROUPING SETS ((last_channel), ())",
            [now, *params],
        )
        rows = cursor.fetchall()
    result: dict[str, tuple[int, float | None]] = {"": (0, None)}
    for overall, channel, count, median in rows:
        result["" if overall else channel] = (int(count), float(median) if median is not None else None)
    return result


def _visible_profiles(scope: ReportScope):
    profiles = AgentProfile.objects.for_tenant(scope.tenant).select_related("membership")
    if scope.agent_id:
        profiles = profiles.filter(membership__user_id=scope.agent_id)
    if scope.team_id:
        profiles = profiles.filter(membership__teams__id=scope.team_id)
    if scope.restricted:
        profiles = profiles.filter(
            Q(membership__user_id__in=list(scope.visible_agent_ids or ()))
            | Q(membership__teams__id__in=list(scope.visible_team_ids or ()))
        ).distinct()
    return profiles


def _occupancy(scope: ReportScope) -> dict[str, float | None]:
    """Open assigned conversations of online agents over their capacity, per channel and overall (now)."""
    online = [p for p in _visible_profiles(scope) if p.presence == Presence.ONLINE]
    if not online:
        return {}
    users = [p.membership.user_id for p in online]
    loads = defaultdict(int)
    rows = (
        Conversation.objects.for_tenant(scope.tenant).filter(assignee_id__in=users, status__in=ACTIVE_STATUSES)
        .values_list("last_channel").annotate(n=Count("id"))
    )
    for channel, n in rows:
        loads[channel] += n
    result: dict[str, float | None] = {}
    channels = [scope.channel] if scope.channel else list(Channel.values)
    total_load = total_capacity = 0
    for channel in channels:
        capacity = sum(p.capacity_for(channel) for p in online)
        result[channel] = _ratio(loads[channel], capacity)
        total_load += loads[channel]
        total_capacity += capacity
    result[""] = _ratio(total_load, total_capacity)
    return result


def _presence_online_seconds(scope: ReportScope, start: datetime, end: datetime) -> float:
    """Seconds agents in scope spent online between two instants (spans clipped to them)."""
    user_ids = [p.membership.user_id for p in _visible_profiles(scope)] if (
        scope.agent_id or scope.team_id or scope.restricted) else None
    spans = PresenceSpan.objects.for_tenant(scope.tenant).filter(
        presence=Presence.ONLINE, started_at__lt=end
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
    if user_ids is not None:
        spans = spans.filter(user_id__in=user_ids)
    now = timezone.now()
    total = 0.0
    for started_at, ended_at in spans.values_list("started_at", "ended_at"):
        stop = min(ended_at or now, end)
        total += max(0.0, (stop - max(started_at, start)).total_seconds())
    return total


# --- the interface ------------------------------------------------------------------------------------------


def _label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else (channel or "All channels")


def report_table(scope: ReportScope, sums: RollupSums | None = None) -> list[KpiRow]:
    """One row per channel with data, then the overall row (`sums`: the scope's `rollup_sums`, when read already)."""
    sums = sums if sums is not None else rollup_sums(scope)
    per_channel: dict[str, dict[str, _Sums]] = defaultdict(dict)
    overall: dict[str, _Sums] = defaultdict(_Sums)
    for (channel, metric), s in sums.by_channel.items():
        per_channel[channel][metric] = s
        overall[metric].add(s)
    backlog = _backlog(scope)
    occupancy = _occupancy(scope)
    channels = sorted(set(per_channel) | {c for c in backlog if c}, key=lambda c: (Channel.values.index(c) if c in Channel.values else 99, c))
    rows = []
    for channel in [*channels, ""]:
        values = _kpis_from_sums(per_channel[channel] if channel else overall)
        count, age = backlog.get(channel, (0, None))
        values["backlog"], values["backlog_age_median"] = count, age
        values["occupancy"] = occupancy.get(channel)
        values["presence_online_seconds"] = (
            None if channel else _presence_online_seconds(scope, scope.starts_at, scope.ends_at)
        )
        rows.append(KpiRow(channel=channel, label=_label(channel), values={k: values.get(k) for k in KPI_NAMES}))
    return rows


Trend = list[tuple[date, float | int | None]]


def report_trends(scope: ReportScope, kpis: tuple[str, ...] | list[str], sums: RollupSums | None = None) -> dict[str, Trend]:
    """One point per day of the range for each KPI, from one read of the rollups (`sums`, when read already).
    Backlog is the open count at each day's end (see the glossary)."""
    for kpi in kpis:
        if kpi not in KPI_UNITS:
            raise ReportScopeError(f"{kpi!r} is not a KPI ({', '.join(KPI_NAMES)}).")
    days = scope.days()
    trends: dict[str, Trend] = {}
    if "presence_online_seconds" in kpis:
        trends["presence_online_seconds"] = [
            (day, _presence_online_seconds(
                scope, datetime.combine(day, time.min, tzinfo=scope.zone),
                datetime.combine(day + timedelta(days=1), time.min, tzinfo=scope.zone)))
            for day in days
        ]
    if "occupancy" in kpis:
        today = timezone.now().astimezone(scope.zone).date()
        now_value = _occupancy(scope).get(scope.channel)
        trends["occupancy"] = [(day, now_value if day == today else None) for day in days]
    backlog_kpis = [kpi for kpi in ("backlog", "backlog_age_median") if kpi in kpis]
    rollup_kpis = [kpi for kpi in kpis if kpi not in trends and kpi not in backlog_kpis]
    if rollup_kpis and sums is None:
        sums = rollup_sums(scope)  # read first, so the backlog's flow reuses it
    if backlog_kpis:
        backlog_now = _backlog(scope).get(scope.channel, (0, None))
        for kpi in backlog_kpis:
            trends[kpi] = _backlog_trend(scope, kpi, sums, backlog_now)
    if rollup_kpis:
        by_day: dict[date, dict[str, _Sums]] = defaultdict(dict)
        for (day, metric), s in sums.by_day.items():
            by_day[day][metric] = s
        values = {day: _kpis_from_sums(by_day.get(day, {})) for day in days}
        for kpi in rollup_kpis:
            trends[kpi] = [(day, values[day].get(kpi)) for day in days]
    return {kpi: trends[kpi] for kpi in kpis}


def report_trend(scope: ReportScope, kpi: str) -> Trend:
    """One KPI's `report_trends`."""
    return report_trends(scope, [kpi])[kpi]


_FLOW_METRICS = ("new", "reopened", "resolved")


def _backlog_trend(scope: ReportScope, kpi: str, sums: RollupSums | None, backlog_now: tuple[int, float | None]) -> Trend:
    """Open conversations at each day's end: today's count (`backlog_now`: count and median age) minus the net
    inflow (new + reopened - resolved) of the days after; the median age is known for now only."""
    days = scope.days()
    today = timezone.now().astimezone(scope.zone).date()
    if kpi == "backlog_age_median":
        return [(day, backlog_now[1] if day == today else None) for day in days]
    if sums is None or scope.end < today:  # the days after the range up to today count too
        sums = rollup_sums(scope, start=min(scope.start, today), end=today, metrics=_FLOW_METRICS)
    net: dict[date, int] = defaultdict(int)
    for (day, metric), s in sums.by_day.items():
        if metric in _FLOW_METRICS and day <= today:
            net[day] += -s.count if metric == "resolved" else s.count
    points = []
    for day in days:
        if day > today:
            points.append((day, None))
            continue
        later = sum(n for d, n in net.items() if day < d <= today)
        points.append((day, max(0, backlog_now[0] - later)))
    return points


def report_heatmap(scope: ReportScope) -> list[list[int]]:
    """New conversations per weekday (rows Monday..Sunday) and local hour (24 columns), from the hourly rollups."""
    grid = [[0] * 24 for _ in range(7)]
    rows_sql, params = _scoped_rows(scope, hourly=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT extract(isodow FROM day)::int, hour, sum(count) FROM ({rows_sql}) AS scoped "  # noqa: S608 - fixed SQL, values as params
            "WHERE metric = 'new' GROUP BY 1, 2",
            params,
        )
        for weekday, hour, count in cursor.fetchall():
            grid[weekday - 1][hour] += int(count)
    return grid


def _events(scope: ReportScope, *names: str, channel: str = "") -> QuerySet[AnalyticsEvent]:
    events = AnalyticsEvent.objects.for_tenant(scope.tenant).filter(
        name__in=names, occurred_at__gte=scope.starts_at, occurred_at__lt=scope.ends_at
    )
    if channel or scope.channel:
        events = events.filter(channel=channel or scope.channel)
    if scope.inbox_id:
        events = events.filter(inbox_id_snapshot=scope.inbox_id)
    if scope.team_id:
        events = events.filter(team_id_snapshot=scope.team_id)
    if scope.agent_id:
        events = events.filter(agent_id_snapshot=scope.agent_id)
    if scope.tier:
        events = events.filter(customer_tier=scope.tier)
    if scope.restricted:
        events = events.filter(
            Q(agent_id_snapshot__in=list(scope.visible_agent_ids or ()))
            | Q(team_id_snapshot__in=list(scope.visible_team_ids or ()))
        )
    return events


# Which events stand behind each rollup-based KPI (a data key narrows them).
_DRILL_EVENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "new": ((EventName.CONVERSATION_OPENED,), {}),
    "reopened": ((EventName.REOPEN,), {}),
    "resolved": ((EventName.RESOLUTION,), {}),
    "first_response_median": ((EventName.FIRST_RESPONSE,), {}),
    "first_response_p90": ((EventName.FIRST_RESPONSE,), {}),
    "first_response_business_median": ((EventName.FIRST_RESPONSE,), {}),
    "first_response_business_p90": ((EventName.FIRST_RESPONSE,), {}),
    "resolution_median": ((EventName.RESOLUTION,), {}),
    "resolution_p90": ((EventName.RESOLUTION,), {}),
    "resolution_business_median": ((EventName.RESOLUTION,), {}),
    "resolution_business_p90": ((EventName.RESOLUTION,), {}),
    "fcr_rate": ((EventName.RESOLUTION,), {"data__first": True}),
    "average_handle_time": ((EventName.RESOLUTION, EventName.CALL_HANDLED), {}),
    "csat_average": ((EventName.CSAT_ANSWER,), {}),
    "csat_response_rate": ((EventName.CSAT_SENT,), {}),
    "sla_first_response": ((EventName.SLA_MET, EventName.SLA_MISSED), {"data__metric": "first_response"}),
    "sla_next_response": ((EventName.SLA_MET, EventName.SLA_MISSED), {"data__metric": "next_response"}),
    "sla_resolution": ((EventName.SLA_MET, EventName.SLA_MISSED), {"data__metric": "resolution"}),
    "queue_wait_median": ((EventName.ASSIGNMENT,), {"value_seconds__isnull": False}),
    "queue_wait_p90": ((EventName.ASSIGNMENT,), {"value_seconds__isnull": False}),
    "reopen_rate": ((EventName.REOPEN,), {}),
    "cross_channel_reopen_rate": ((EventName.REOPEN, EventName.CONVERSATION_OPENED), {}),
    "channel_switch_rate": ((EventName.CHANNEL_SWITCH,), {}),
    "context_continuity": ((EventName.CHANNEL_SWITCH,), {}),
}


def report_conversations(scope: ReportScope, kpi: str, channel: str = "") -> QuerySet[Conversation]:
    """The conversations behind a number (newest first), from conversations and events, not rollups."""
    if kpi not in KPI_UNITS:
        raise ReportScopeError(f"{kpi!r} is not a KPI ({', '.join(KPI_NAMES)}).")
    if channel and channel not in Channel.values:
        raise ReportScopeError(f"{channel!r} is not a channel.")
    conversations = Conversation.objects.for_tenant(scope.tenant).select_related("customer", "assignee", "team")
    if kpi in ("backlog", "backlog_age_median"):
        return conversations.filter(_conversation_filter(scope, channel=channel), status__in=ACTIVE_STATUSES).order_by("created_at")
    if kpi == "occupancy":
        users = [p.membership.user_id for p in _visible_profiles(scope) if p.presence == Presence.ONLINE]
        return conversations.filter(
            _conversation_filter(scope, channel=channel), assignee_id__in=users, status__in=ACTIVE_STATUSES
        ).order_by("-updated_at")
    if kpi not in _DRILL_EVENTS:
        return conversations.none()
    names, extra = _DRILL_EVENTS[kpi]
    events = _events(scope, *names, channel=channel).filter(**extra)
    if kpi == "cross_channel_reopen_rate":
        events = events.filter(
            Q(name=EventName.CONVERSATION_OPENED, data__cross_channel_return=True)
            | (Q(name=EventName.REOPEN, conversation__in=_events(scope, EventName.CHANNEL_SWITCH).values("conversation_id"))
               & ~Q(data__within_cross_channel_window=False))
        )
    return conversations.filter(Exists(events.filter(conversation_id=OuterRef("pk")))).order_by("-updated_at", "-id")


def _int_or_none(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ReportScopeError(f"{what} must be a number, not {value!r}.") from exc


def _day(value: Any, what: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ReportScopeError(f"{what} must be a day like 2026-01-31, not {value!r}.") from exc


def scope_for_member(membership: Membership, **filters: Any) -> ReportScope:
    """The scope a member may see: an agent their own figures, a supervisor their teams', an admin the tenant's.

    Filters: start, end (days; default the last 30 days to today, tenant-local), channel, inbox_id, team_id,
    agent_id, tier. Raises ReportScopeError with a reason for a filter that does not fit.
    """
    tenant = membership.tenant
    unknown = set(filters) - {"start", "end", "channel", "inbox_id", "team_id", "agent_id", "tier"}
    if unknown:
        raise ReportScopeError(f"Unknown filter {', '.join(sorted(unknown))}.")
    today = timezone.now().astimezone(ZoneInfo(tenant.time_zone or "UTC")).date()
    end = _day(filters.get("end"), "end") or today
    start = _day(filters.get("start"), "start") or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise ReportScopeError("The start day comes after the end day.")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ReportScopeError(f"A report covers at most {MAX_RANGE_DAYS} days.")
    channel = filters.get("channel") or ""
    if channel and channel not in Channel.values:
        raise ReportScopeError(f"{channel!r} is not a channel ({', '.join(Channel.values)}).")
    tier = filters.get("tier") or ""
    if tier and tier not in Tier.values:
        raise ReportScopeError(f"{tier!r} is not a customer tier ({', '.join(Tier.values)}).")
    inbox_id = _int_or_none(filters.get("inbox_id"), "inbox")
    if inbox_id is not None and not Inbox.objects.for_tenant(tenant).filter(pk=inbox_id).exists():
        raise ReportScopeError("No such inbox.")
    team_id = _int_or_none(filters.get("team_id"), "team")
    if team_id is not None and not Team.objects.for_tenant(tenant).filter(pk=team_id).exists():
        raise ReportScopeError("No such team.")
    agent_id = _int_or_none(filters.get("agent_id"), "agent")
    if agent_id is not None and not Membership.objects.for_tenant(tenant).filter(user_id=agent_id).exists():
        raise ReportScopeError("No such agent.")

    visible_agents: frozenset[int] | None = None
    visible_teams: frozenset[int] | None = None
    if membership.role == Role.AGENT:
        visible_agents, visible_teams = frozenset({membership.user_id}), frozenset()
    elif membership.role == Role.SUPERVISOR:
        visible_teams = frozenset(Team.objects.for_tenant(tenant).filter(members=membership).values_list("pk", flat=True))
        visible_agents = frozenset(
            Membership.objects.for_tenant(tenant).filter(teams__in=visible_teams).values_list("user_id", flat=True)
        ) | {membership.user_id}
    return ReportScope(
        tenant=tenant, start=start, end=end, channel=channel, inbox_id=inbox_id, team_id=team_id, agent_id=agent_id,
        tier=tier, visible_agent_ids=visible_agents, visible_team_ids=visible_teams,
    )
