"""Rollups of the analytics events: one SQL mapping from events to facts to summed rows, used three ways.

- `rollups_apply(event_ids)`: incremental. Called in the same transaction that appends the events, it adds
  them with `INSERT ... ON CONFLICT ... DO UPDATE` (counts and sums add, histograms add element-wise), so a
  rollup row can never disagree with the committed events: no lost task, no double count on retry, and two
  writers adding to the same row serialize on its row lock only until they commit. Rows come out in key
  order so concurrent writers lock shared rows in the same order (no deadlock between them).
- `rollups_rebuild(tenant, start, end)`: deletes and recomputes a tenant's days from the events.
- `rollups_check(tenant, start, end)`: compares the stored rows with a recomputation, in one statement
  (one snapshot, so writers running meanwhile cannot cause false alarms).

A rebuild takes a per-tenant advisory lock exclusively; incremental writers take it shared, so a rebuild
waits for in-flight writers and new ones wait for it (otherwise an event committed between its DELETE and
INSERT would count twice or not at all).

Facts (metric names) per event, each on the tenant-local day and hour of the event unless said otherwise:
conversation_opened → new (+ switch_new_conversation, cross_channel_return when its data says so);
reopen → reopened (+ fcr_lost on the day of the first-contact resolution it spoils); resolution → resolved
(timed) (+ resolved_first, fcr, handle_message with the cycle's active agent seconds when agents replied:
a call resolved without a messaging reply has talk time only);
first_response → first_response (timed); reply → reply (timed); assignment → assignment (+ queue_wait, timed,
when it ended a wait); channel_switch → channel_switch (+ cross_channel_reopen when it came with a reopen within 7 days of the
resolution);
sla_met/sla_missed → sla_met_<target>/sla_missed_<target>; csat_sent → csat_sent; csat_answer → csat_answer
(value = score 1-5); call_handled → handle_call (timed, talk time).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db import connection, transaction

if TYPE_CHECKING:
    from customers.models import Tenant

logger = logging.getLogger(__name__)

# Histogram buckets: 0 holds [0, 1 s); bucket k >= 1 holds [RATIO^(k-1), RATIO^k). Reporting a bucket's
# geometric middle is at most sqrt(RATIO) - 1 (4.9 %) away from any value inside it.
BUCKET_RATIO = 1.1
ADVISORY_LOCK_CLASS = 80_801  # "analytics rollups", first key of pg_advisory_xact_lock(int, int)

KEY_COLUMNS = ("tenant_id", "level", "day", "hour", "channel", "inbox_id", "team_id", "agent_id", "tier", "metric")
VALUE_COLUMNS = ("count", "total", "business_total", "hist", "business_hist")
TABLE = "analytics_analyticsrollup"

_FACTS_TEMPLATE = """
ev AS MATERIALIZED (
    SELECT e.id, e.tenant_id, e.name, e.occurred_at, e.conversation_id, e.channel,
           COALESCE(e.inbox_id_snapshot, 0) AS inbox_id, COALESCE(e.team_id_snapshot, 0) AS team_id,
           COALESCE(e.agent_id_snapshot, 0) AS agent_id, e.customer_tier AS tier,
           e.value_seconds, e.business_seconds, e.data, t.time_zone
    FROM analytics_analyticsevent AS e JOIN customers_tenant AS t ON t.id = e.tenant_id
    WHERE {where}
),
raw_facts (tenant_id, at, time_zone, channel, inbox_id, team_id, agent_id, tier, metric, value, business_value, timed) AS (
    SELECT tenant_id, occurred_at, time_zone, channel, inbox_id, team_id, agent_id, tier,
           m.metric, m.value, m.business_value, m.timed
    FROM ev CROSS JOIN LATERAL (
        SELECT CASE ev.name
                   WHEN 'conversation_opened' THEN 'new' WHEN 'reopen' THEN 'reopened' WHEN 'resolution' THEN 'resolved'
                   WHEN 'first_response' THEN 'first_response' WHEN 'reply' THEN 'reply'
                   WHEN 'assignment' THEN 'assignment' WHEN 'channel_switch' THEN 'channel_switch'
                   WHEN 'sla_met' THEN 'sla_met_' || COALESCE(ev.data->>'metric', '')
                   WHEN 'sla_missed' THEN 'sla_missed_' || COALESCE(ev.data->>'metric', '')
                   WHEN 'csat_sent' THEN 'csat_sent' WHEN 'csat_answer' THEN 'csat_answer'
                   WHEN 'call_handled' THEN 'handle_call'
               END AS metric,
               CASE WHEN ev.name = 'csat_answer' THEN
                        CASE WHEN jsonb_typeof(ev.data->'score') = 'number' THEN (ev.data->>'score')::float8 END
                    WHEN ev.name IN ('conversation_opened', 'reopen', 'assignment', 'channel_switch', 'csat_sent')
                        THEN NULL
                    ELSE ev.value_seconds END AS value,
               CASE WHEN ev.name IN ('resolution', 'first_response', 'reply', 'sla_met', 'sla_missed', 'call_handled')
                    THEN ev.business_seconds END AS business_value,
               ev.name IN ('resolution', 'first_response', 'reply', 'call_handled') AS timed
        WHERE ev.name <> 'csat_answer'
           OR (jsonb_typeof(ev.data->'score') = 'number' AND (ev.data->>'score')::float8 BETWEEN 1 AND 5)
        UNION ALL
        SELECT 'queue_wait', ev.value_seconds, ev.business_seconds, true
        WHERE ev.name = 'assignment' AND ev.value_seconds IS NOT NULL
        UNION ALL
        SELECT 'switch_new_conversation', NULL, NULL, false
        WHERE ev.name = 'conversation_opened' AND ev.data->'switched_channel' = 'true'::jsonb
        UNION ALL
        SELECT 'cross_channel_return', NULL, NULL, false
        WHERE ev.name = 'conversation_opened' AND ev.data->'cross_channel_return' = 'true'::jsonb
        UNION ALL
        SELECT 'resolved_first', NULL, NULL, false
        WHERE ev.name = 'resolution' AND ev.data->'first' = 'true'::jsonb
        UNION ALL
        SELECT 'fcr', NULL, NULL, false
        WHERE ev.name = 'resolution' AND ev.data->'fcr' = 'true'::jsonb
        UNION ALL
        SELECT 'handle_message', (ev.data->>'active_seconds')::float8, NULL, false
        WHERE ev.name = 'resolution' AND jsonb_typeof(ev.data->'active_seconds') = 'number'
          AND (ev.data->>'active_seconds')::float8 > 0
        UNION ALL
        SELECT 'cross_channel_reopen', NULL, NULL, false
        WHERE ev.name = 'channel_switch' AND EXISTS (
            SELECT 1 FROM analytics_analyticsevent AS r
            WHERE r.conversation_id = ev.conversation_id AND r.name = 'reopen' AND r.occurred_at = ev.occurred_at
              AND COALESCE(r.data->'within_cross_channel_window', 'true'::jsonb) = 'true'::jsonb
        )
    ) AS m
    WHERE m.metric IS NOT NULL
    UNION ALL
    -- A reopen spoils the first-contact resolution it follows: counted on that resolution's day and dimensions
    -- (the conversation may have moved to another agent or team since; older reopens lack them and use their own).
    SELECT tenant_id, (data->>'lost_fcr_resolved_at')::timestamptz, time_zone,
           COALESCE(data->'lost_fcr'->>'channel', channel), COALESCE((data->'lost_fcr'->>'inbox_id')::bigint, inbox_id),
           COALESCE((data->'lost_fcr'->>'team_id')::bigint, team_id),
           COALESCE((data->'lost_fcr'->>'agent_id')::bigint, agent_id), COALESCE(data->'lost_fcr'->>'tier', tier),
           'fcr_lost', NULL, NULL, false
    FROM ev WHERE name = 'reopen' AND jsonb_typeof(data->'lost_fcr_resolved_at') = 'string'
),
facts AS (
    SELECT f.*, (f.at AT TIME ZONE f.time_zone) AS local_at FROM raw_facts AS f
),
ranged AS (
    SELECT * FROM facts WHERE {fact_where}
),
rows (tenant_id, level, day, hour, channel, inbox_id, team_id, agent_id, tier, metric, count, total, business_total,
      hist, business_hist) AS (
{rows}
)
"""


# The levels a rollup row is kept at: the dimensions it carries (the others are 0 or ""), and whether every
# metric has hourly rows too. Reports read the smallest level that has the dimensions a scope filters on;
# the hourly arrivals ("new", the heatmap) are kept at every level.
_LEVELS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("full", ("inbox_id", "team_id", "agent_id", "tier"), False),
    ("team", ("team_id",), False),
    ("agent", ("team_id", "agent_id"), False),
    ("channel", (), True),
)
_EMPTY_DIMENSION = {"inbox_id": "0", "team_id": "0", "agent_id": "0", "tier": "''"}
_SUMS = (
    "count(*)::bigint, COALESCE(sum(value), 0)::float8, COALESCE(sum(business_value), 0)::float8, "
    "analytics_hist(analytics_bucket(value)) FILTER (WHERE timed), "
    "analytics_hist(analytics_bucket(business_value)) FILTER (WHERE timed)"
)


def _level_select(level: str, dimensions: tuple[str, ...], *, hourly: bool, only_new: bool = False) -> str:
    hour = "extract(hour FROM local_at)::smallint" if hourly else "-1::smallint"
    columns = ", ".join(d if d in dimensions else _EMPTY_DIMENSION[d] for d in ("inbox_id", "team_id", "agent_id", "tier"))
    group = ", ".join(["tenant_id", "local_at::date", *(["extract(hour FROM local_at)"] if hourly else []), "channel",
                       *dimensions, "metric"])
    where = " WHERE metric = 'new'" if only_new else ""
    select = f"    SELECT tenant_id, '{level}'::varchar, local_at::date, {hour}, channel, {columns}, metric, {_SUMS}\n"  # noqa: S608 - fixed SQL from the constants above
    return f"{select}    FROM ranged{where} GROUP BY {group}"


def _rows_sql() -> str:
    selects = []
    for level, dimensions, every_metric_hourly in _LEVELS:
        selects.append(_level_select(level, dimensions, hourly=False))
        selects.append(_level_select(level, dimensions, hourly=True, only_new=not every_metric_hourly))
    return "\n    UNION ALL\n".join(selects)


_FACTS = _FACTS_TEMPLATE.replace("{rows}", _rows_sql())

_KEYS = ", ".join(KEY_COLUMNS)
_ALL = ", ".join(KEY_COLUMNS + VALUE_COLUMNS)

_UPSERT = f"""
WITH {_FACTS}
INSERT INTO {TABLE} AS r ({_ALL})
SELECT {_KEYS}, count * %(sign)s, total * %(sign)s, business_total * %(sign)s,
       CASE WHEN %(sign)s = 1 THEN hist ELSE analytics_hist_scale(hist, %(sign)s) END,
       CASE WHEN %(sign)s = 1 THEN business_hist ELSE analytics_hist_scale(business_hist, %(sign)s) END
FROM rows ORDER BY {_KEYS}
ON CONFLICT ({_KEYS}) DO UPDATE SET
    count = r.count + EXCLUDED.count,
    total = r.total + EXCLUDED.total,
    business_total = r.business_total + EXCLUDED.business_total,
    hist = analytics_hist_add(r.hist, EXCLUDED.hist),
    business_hist = analytics_hist_add(r.business_hist, EXCLUDED.business_hist)
"""  # noqa: S608 - fixed SQL, values as params

_CHECK = f"""
WITH {_FACTS},
stored AS (
    SELECT {_ALL} FROM {TABLE} WHERE tenant_id = %(tenant_id)s AND day BETWEEN %(start)s AND %(end)s
)
SELECT {", ".join(f"COALESCE(s.{c}, x.{c}) AS {c}" for c in KEY_COLUMNS)},
       s.count, x.count, s.total, x.total, s.business_total, x.business_total,
       s.hist IS NOT DISTINCT FROM x.hist AND s.business_hist IS NOT DISTINCT FROM x.business_hist
FROM stored AS s FULL OUTER JOIN rows AS x USING ({_KEYS})
WHERE s.count IS DISTINCT FROM x.count
   OR abs(COALESCE(s.total, 0) - COALESCE(x.total, 0)) > 1e-6 * greatest(1, abs(COALESCE(x.total, 0)))
   OR abs(COALESCE(s.business_total, 0) - COALESCE(x.business_total, 0))
      > 1e-6 * greatest(1, abs(COALESCE(x.business_total, 0)))
   OR s.hist IS DISTINCT FROM x.hist OR s.business_hist IS DISTINCT FROM x.business_hist
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
LIMIT 1000
"""  # noqa: S608 - fixed SQL, values as params


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The [low, high) seconds a histogram bucket holds."""
    if bucket <= 0:
        return 0.0, 1.0
    return BUCKET_RATIO ** (bucket - 1), BUCKET_RATIO**bucket


def bucket_value(bucket: int) -> float:
    """The figure reported for a value in `bucket`: its geometric middle (half a second for bucket 0)."""
    if bucket <= 0:
        return 0.5
    return BUCKET_RATIO ** (bucket - 0.5)


def hist_percentile(hist: list[int | None] | None, fraction: float) -> float | None:
    """The `fraction` quantile (nearest rank) of a histogram array, as its bucket's middle."""
    if not hist:
        return None
    counts = [c or 0 for c in hist]
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(len(counts) - 1)


def _lock_shared(tenant_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        for tenant_id in sorted(set(tenant_ids)):
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [ADVISORY_LOCK_CLASS, tenant_id])


def rollups_apply(*, event_ids: list[int], tenant_ids: list[int], sign: int = 1) -> None:
    """Add freshly appended events to the rollups, inside the transaction that appended them
    (sign=-1 takes them out again: an event about to be revised)."""
    if not event_ids:
        return
    with transaction.atomic():
        _lock_shared(tenant_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT.format(where="e.id = ANY(%(ids)s)", fact_where="true"), {"ids": list(event_ids), "sign": sign}
            )
            if sign < 0:
                # Rows whose every fact was taken out are gone, as a recomputation would not have them.
                cursor.execute(f"DELETE FROM {TABLE} WHERE tenant_id = ANY(%s) AND count = 0", [sorted(set(tenant_ids))])  # noqa: S608 - fixed SQL


def _range_params(tenant: Tenant, start: date, end: date) -> dict:
    zone = ZoneInfo(tenant.time_zone or "UTC")
    return {
        "tenant_id": tenant.pk, "start": start, "end": end,
        "from": datetime.combine(start, time.min, tzinfo=zone),
        "to": datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    }


# Events of the range, plus later reopens (they may spoil a first-contact resolution inside the range).
_RANGE_WHERE = (
    "e.tenant_id = %(tenant_id)s AND ((e.occurred_at >= %(from)s AND e.occurred_at < %(to)s)"
    " OR (e.name = 'reopen' AND e.occurred_at >= %(from)s))"
)
_RANGE_FACTS = "local_at::date BETWEEN %(start)s AND %(end)s"


@transaction.atomic
def rollups_rebuild(*, tenant: Tenant, start: date, end: date) -> int:
    """Recompute a tenant's rollup rows of the days start..end (tenant-local, inclusive); returns rows written."""
    params = {**_range_params(tenant, start, end), "sign": 1}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, tenant.pk])
        cursor.execute(f"DELETE FROM {TABLE} WHERE tenant_id = %(tenant_id)s AND day BETWEEN %(start)s AND %(end)s", params)  # noqa: S608 - fixed SQL, values as params
        cursor.execute(_UPSERT.format(where=_RANGE_WHERE, fact_where=_RANGE_FACTS), params)
        return cursor.rowcount


def rollups_rebuild_in_chunks(*, tenant: Tenant, start: date, end: date, chunk_days: int = 10, progress=None) -> int:
    """`rollups_rebuild` a few days per transaction (a long history without one huge transaction); `progress`
    is called with (first day, last day, rows) after each chunk. Returns rows written."""
    written = 0
    day = start
    while day <= end:
        last = min(day + timedelta(days=chunk_days - 1), end)
        rows = rollups_rebuild(tenant=tenant, start=day, end=last)
        written += rows
        if progress is not None:
            progress(day, last, rows)
        day = last + timedelta(days=1)
    return written


@dataclass(frozen=True)
class RollupMismatch:
    key: dict
    stored_count: int | None
    expected_count: int | None
    stored_total: float | None
    expected_total: float | None
    histograms_equal: bool

    def __str__(self) -> str:
        where = " ".join(f"{k}={v}" for k, v in self.key.items() if k != "tenant_id")
        return (f"{where}: stored count={self.stored_count} total={self.stored_total}, "
                f"recomputed count={self.expected_count} total={self.expected_total}"
                f"{'' if self.histograms_equal else ', histograms differ'}")


def rollups_check(*, tenant: Tenant, start: date, end: date) -> list[RollupMismatch]:
    """Rows of the days start..end whose stored sums differ from a recomputation from the events (at most 1000)."""
    params = _range_params(tenant, start, end)
    with connection.cursor() as cursor:
        cursor.execute(_CHECK.format(where=_RANGE_WHERE, fact_where=_RANGE_FACTS), params)
        rows = cursor.fetchall()
    width = len(KEY_COLUMNS)
    return [
        RollupMismatch(
            key=dict(zip(KEY_COLUMNS, row[:width], strict=True)), stored_count=row[width], expected_count=row[width + 1],
            stored_total=row[width + 2], expected_total=row[width + 3], histograms_equal=bool(row[width + 6]),
        )
        for row in rows
    ]
