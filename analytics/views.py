"""Analytics pages: the live overview (`/analytics/`) and the reports with drill-downs and CSV export."""

from __future__ import annotations

import csv
from functools import wraps
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from analytics.forms import PRESETS, ReportFilterForm, preset_range
from analytics.live import Visibility, agent_board, conversations_opened_at, live_tiles
from analytics.reports import (
    KPI_LABELS,
    KPI_NAMES,
    KPI_UNITS,
    KpiRow,
    ReportScope,
    ReportScopeError,
    RollupSums,
    report_conversations,
    report_heatmap,
    report_table,
    report_trends,
    rollup_sums,
    scope_for_member,
)
from analytics.templatetags.analytics_format import kpi_format
from channels_app.models import Channel
from customers.models import Membership
from omnidesk.lib.access import member_required


def not_for_workspace_refresh(view):
    """The workspace script on every page refetches the page on tenant-wide news to swap its live regions;
    analytics pages keep their own (analytics.js), so that refetch gets an empty answer instead of a render."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.headers.get("X-Requested-With") == "live":
            return HttpResponse(status=204)
        return view(request, *args, **kwargs)

    return wrapper


def _visibility(membership: Membership) -> Visibility:
    """Agents: their own work; supervisors: their teams' people and conversations; admins: everything
    (the reports' rule, so both pages show a member the same people)."""
    scope = scope_for_member(membership)
    return Visibility(agent_ids=scope.visible_agent_ids, team_ids=scope.visible_team_ids)


def _live_context(request) -> dict:
    visibility = _visibility(request.membership)
    now = timezone.now()
    return {
        "tiles": live_tiles(tenant=request.tenant, visibility=visibility, now=now),
        "board": agent_board(tenant=request.tenant, visibility=visibility),
        "now": now,
        "whole_tenant": visibility.unrestricted,
    }


@member_required()
@not_for_workspace_refresh
def overview(request):
    return render(request, "analytics/overview.html", _live_context(request))


@member_required()
def overview_live(request):
    """The tiles and the agent board alone: what the page swaps in when the websocket says something changed."""
    return render(request, "analytics/_live.html", _live_context(request))


# --- reports ------------------------------------------------------------------------------------------------

# What each KPI means, shown as the table's tooltips and the charts' legends; the README's "Analytics glossary"
# opens each entry with the same sentence and adds the detail (tests/analytics/test_glossary.py keeps them in step).
KPI_DEFINITIONS: dict[str, str] = {
    "new": (
        "Conversations opened in the period (a new conversation, not a reopened one), on their first channel."
    ),
    "reopened": (
        "Resolved conversations brought back to open in the period (the customer writing within the tenant's reopen window, or an agent reopening)."
    ),
    "resolved": "Resolutions in the period (a conversation resolved twice counts twice).",
    "first_response_median": (
        "Half of first agent replies came within this time of the conversation's start (calendar hours)."
    ),
    "first_response_p90": "90 % of first agent replies came within this time (calendar hours).",
    "first_response_business_median": (
        "Median first response counting only the open hours of the conversation's calendar."
    ),
    "first_response_business_p90": "90th percentile of first response, counting only open hours.",
    "resolution_median": (
        "Half of resolutions came within this time of the conversation's start (calendar hours)."
    ),
    "resolution_p90": "90 % of resolutions came within this time (calendar hours).",
    "resolution_business_median": (
        "Median resolution time counting only the open hours of the conversation's calendar."
    ),
    "resolution_business_p90": "90th percentile of resolution time, counting only open hours.",
    "fcr_rate": "Share of first resolutions where exactly one agent replied and that were never reopened.",
    "average_handle_time": (
        "Talk time per handled call, and active agent time per resolution with agent replies in messaging."
    ),
    "csat_average": "Average survey score (1 to 5) of the answers received in the period.",
    "csat_response_rate": "Survey answers received divided by surveys sent in the period.",
    "sla_first_response": "First-response SLA targets met, divided by those met or missed.",
    "sla_next_response": "Next-response SLA targets met, divided by those met or missed.",
    "sla_resolution": "Resolution SLA targets met, divided by those met or missed.",
    "backlog": "Conversations open, pending or snoozed right now (the trend: open at each day's end).",
    "backlog_age_median": "Median age of the conversations in the backlog now.",
    "queue_wait_median": "Median time from arrival (or being unassigned) to the next assignment to an agent.",
    "queue_wait_p90": (
        "90th percentile of the time from arrival (or being unassigned) to the next assignment."
    ),
    "reopen_rate": "Reopens divided by resolutions.",
    "cross_channel_reopen_rate": (
        "Customers coming back on a different channel within 7 days of a resolution, per resolution."
    ),
    "channel_switch_rate": "Channel switches per conversation opened or reopened.",
    "context_continuity": (
        "Share of channel switches that stayed in the same conversation (no new conversation opened)."
    ),
    "occupancy": "Open conversations of online agents divided by their capacity, right now.",
    "presence_online_seconds": "Time agents in scope spent online in the period.",
}
# Conversations do not stand behind these numbers: they are not drill-down links.
NOT_DRILLABLE = frozenset({"presence_online_seconds"})
# The trend charts: (title, KPIs drawn together; they share a unit).
TREND_CHARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Volume", ("new", "resolved", "reopened")),
    ("First response time", ("first_response_median", "first_response_p90")),
    ("Resolution time", ("resolution_median", "resolution_p90")),
    ("SLA attainment", ("sla_first_response", "sla_resolution")),
)
DRILL_PAGE_SIZE = 50
# A drill-down counts at most this many conversations ("10,000+"): counting 300,000 matches costs seconds,
# and nobody pages that far (the CSV export has them all).
DRILL_COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A Paginator whose count stops at `cap` (then `capped` is true): a LIMIT, not a full count."""

    def __init__(self, object_list, per_page, *, cap: int):
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def _seen(self) -> int:
        return self.object_list.order_by().select_related(None).values("pk")[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._seen, self.cap)

    @property
    def capped(self) -> bool:
        return self._seen > self.cap


def _report_form(request) -> tuple[ReportFilterForm, ReportScope | None]:
    """The filter form and, when it holds, the scope the member may see with those filters."""
    form = ReportFilterForm(request.GET, tenant=request.tenant)
    if not form.is_valid():
        return form, None
    try:
        return form, scope_for_member(request.membership, **form.scope_filters())
    except ReportScopeError as exc:
        form.add_error(None, str(exc))
        return form, None


def _drill_url(params: dict[str, str], **extra: str) -> str:
    return f"{reverse('analytics:report_conversations')}?{urlencode({**params, **extra})}"


def _table_rows(scope: ReportScope, rows: list[KpiRow], params: dict[str, str]) -> list[dict]:
    """KPIs down, channels across (with the overall column last); each cell formatted and linked."""
    table = []
    for kpi in KPI_NAMES:
        cells = []
        for row in rows:
            value = row.values.get(kpi)
            channel = row.channel or scope.channel
            cells.append({
                "text": kpi_format(value, KPI_UNITS[kpi]),
                "url": "" if kpi in NOT_DRILLABLE or value is None else _drill_url(params, kpi=kpi, channel=channel),
            })
        table.append({"kpi": kpi, "label": KPI_LABELS[kpi], "definition": KPI_DEFINITIONS.get(kpi, ""), "cells": cells})
    return table


def _charts(scope: ReportScope, params: dict[str, str], sums: RollupSums) -> list[dict]:
    trends = report_trends(scope, [kpi for _, kpis in TREND_CHARTS for kpi in kpis], sums)
    charts = []
    for title, kpis in TREND_CHARTS:
        series = []
        days: list[str] = []
        for kpi in kpis:
            points = trends[kpi]
            days = [day.isoformat() for day, _ in points]
            series.append({"kpi": kpi, "label": KPI_LABELS[kpi], "values": [value for _, value in points]})
        charts.append({
            "title": title, "unit": KPI_UNITS[kpis[0]], "days": days, "series": series,
            "legend": " ".join(f"{KPI_LABELS[k]}: {KPI_DEFINITIONS.get(k, '')}" for k in kpis),
            "drill": _drill_url({k: v for k, v in params.items() if k not in ("start", "end")}, kpi=kpis[0]),
        })
    return charts


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _heatmap(scope: ReportScope, params: dict[str, str]) -> list[dict]:
    grid = report_heatmap(scope)
    peak = max((count for row in grid for count in row), default=0) or 1
    return [
        {"day": WEEKDAYS[weekday], "cells": [
            {"count": count, "hour": hour, "shade": round(0.08 + 0.92 * count / peak, 2) if count else 0,
             "url": _drill_url(params, kpi="new", weekday=str(weekday + 1), hour=str(hour)) if count else ""}
            for hour, count in enumerate(row)
        ]}
        for weekday, row in enumerate(grid)
    ]


def _presets(form: ReportFilterForm, tenant) -> list[dict]:
    base = form.query_params() if form.is_valid() else {}
    presets = []
    for days in PRESETS:
        start, end = preset_range(tenant, days)
        params = {**base, "start": start.isoformat(), "end": end.isoformat()}
        active = bool(base) and base.get("start") == params["start"] and base.get("end") == params["end"]
        presets.append({"days": days, "url": "?" + urlencode(params), "active": active})
    return presets


@member_required()
@not_for_workspace_refresh
def reports(request):
    form, scope = _report_form(request)
    context = {"form": form, "presets": _presets(form, request.tenant), "scope": scope}
    if scope is not None:
        params = form.query_params()
        sums = rollup_sums(scope)  # one read of the rollups for the table and every chart
        rows = report_table(scope, sums)
        context.update({
            "columns": [row.label if row.channel else "Overall" for row in rows],
            "table": _table_rows(scope, rows, params),
            "charts": _charts(scope, params, sums),
            "heatmap": _heatmap(scope, params),
            "hours": range(24),
            "export_table_url": f"{reverse('analytics:report_export')}?{urlencode({**params, 'kind': 'table'})}",
            "export_conversations_url": f"{reverse('analytics:report_export')}?{urlencode({**params, 'kind': 'conversations'})}",
        })
    return render(request, "analytics/reports.html", context)


class DrillError(ValueError):
    """A drill-down parameter that does not fit (a 400 for the CSV, a message on the page)."""


def _drill_kpi(request) -> str:
    kpi = request.GET.get("kpi", "new")
    if kpi not in KPI_UNITS or kpi in NOT_DRILLABLE:
        raise DrillError(f"{kpi!r} is not a figure with conversations behind it.")
    return kpi


def _hour_cell(request) -> tuple[int, int] | None:
    """A heatmap cell (ISO weekday 1-7, hour 0-23) to narrow new conversations to, if asked."""
    weekday, hour = request.GET.get("weekday", ""), request.GET.get("hour", "")
    if not weekday and not hour:
        return None
    if not (weekday.isdigit() and hour.isdigit() and 1 <= int(weekday) <= 7 and 0 <= int(hour) <= 23):
        raise DrillError("A heatmap cell is a weekday from 1 (Monday) to 7 and an hour from 0 to 23.")
    return int(weekday), int(hour)


def _drill_conversations(request, scope: ReportScope):
    kpi = _drill_kpi(request)
    conversations = report_conversations(scope, kpi)
    cell = _hour_cell(request)
    if cell is not None:
        if kpi != "new":
            raise DrillError("Only new conversations are counted by weekday and hour.")
        conversations = conversations_opened_at(conversations, zone=scope.zone, weekday=cell[0], hour=cell[1])
    return kpi, cell, conversations


@member_required()
@not_for_workspace_refresh
def report_conversations_view(request):
    """The conversations behind one number of the report, a page at a time, linking into the workspace."""
    form, scope = _report_form(request)
    context = {"form": form, "scope": scope}
    if scope is not None:
        try:
            kpi, cell, conversations = _drill_conversations(request, scope)
        except DrillError as exc:
            form.add_error(None, str(exc))
        else:
            page = CappedPaginator(conversations, DRILL_PAGE_SIZE, cap=DRILL_COUNT_CAP).get_page(request.GET.get("page"))
            params = {**form.query_params(), "kpi": kpi}
            if cell is not None:
                params.update(weekday=str(cell[0]), hour=str(cell[1]))
            context.update({
                "kpi": kpi, "kpi_label": KPI_LABELS[kpi], "definition": KPI_DEFINITIONS.get(kpi, ""),
                "cell": (WEEKDAYS[cell[0] - 1], cell[1]) if cell else None,
                "channel_label": Channel(scope.channel).label if scope.channel else "All channels",
                "page": page, "page_query": urlencode(params),
                "back_url": f"{reverse('analytics:reports')}?{urlencode(form.query_params())}",
                "export_url": f"{reverse('analytics:report_export')}?{urlencode({**params, 'kind': 'conversations'})}",
            })
    return render(request, "analytics/report_conversations.html", context)


# --- CSV export ---------------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str | int | float:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write returns the line, for csv.writer inside a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_number(value, unit: str):
    if value is None:
        return ""
    if unit == "count":
        return int(value)
    return round(float(value), 4 if unit == "ratio" else 2)


def _table_csv_rows(scope: ReportScope):
    units = {"seconds": " (seconds)", "ratio": " (share 0-1)", "score": " (1-5)", "count": ""}
    yield ["Channel", *(f"{KPI_LABELS[kpi]}{units[KPI_UNITS[kpi]]}" for kpi in KPI_NAMES)]
    for row in report_table(scope):
        yield [row.label if row.channel else "Overall", *(_csv_number(row.values.get(kpi), KPI_UNITS[kpi]) for kpi in KPI_NAMES)]


CONVERSATION_COLUMNS = (
    "Number", "Link", "Customer", "Tier", "Subject", "Status", "Priority", "First channel", "Current channel",
    "Channels used", "Team", "Assignee", "Opened", "First response", "Resolved", "Reopened (times)", "Tags",
)


def _conversation_csv_rows(request, scope: ReportScope, conversations):
    zone = scope.zone

    def moment(value):
        return value.astimezone(zone).isoformat(timespec="seconds") if value else ""

    yield list(CONVERSATION_COLUMNS)
    for c in conversations.iterator(chunk_size=2000):
        yield [
            c.number, request.build_absolute_uri(reverse("workspace:conversation", args=[c.number])),
            c.customer.name, c.customer.tier, c.subject, c.status, c.priority, c.first_channel, c.last_channel,
            " ".join(c.channels), c.team.name if c.team else "", c.assignee.get_full_name() or c.assignee.email if c.assignee else "",
            moment(c.created_at), moment(c.first_response_at), moment(c.resolved_at), c.reopen_count, " ".join(c.tags),
        ]


def _bad_export(reason: str) -> HttpResponse:
    return HttpResponse(reason + "\n", status=400, content_type="text/plain; charset=utf-8")


@member_required()
def report_export(request):
    """`kind=table`: the channel comparison; `kind=conversations`: one row per conversation behind `kpi`."""
    form, scope = _report_form(request)
    if scope is None:
        return _bad_export("; ".join(message for messages in form.errors.values() for message in messages))
    kind = request.GET.get("kind", "table")
    if kind == "table":
        rows = _table_csv_rows(scope)
        name = f"omnidesk-report-{scope.start}-{scope.end}.csv"
    elif kind == "conversations":
        try:
            kpi, _, conversations = _drill_conversations(request, scope)
        except DrillError as exc:
            return _bad_export(str(exc))
        rows = _conversation_csv_rows(request, scope, conversations)
        name = f"omnidesk-{kpi}-conversations-{scope.start}-{scope.end}.csv"
    else:
        return _bad_export(f"{kind!r} is not an export: ask for kind=table or kind=conversations.")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([csv_safe(cell) for cell in row]) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
