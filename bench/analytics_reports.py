"""Analytics page timings on a large tenant: the live overview, the reports for the last 30 days (with and
without filters), the drill-down list, the table CSV export and the live push's refetch.

Run:  .venv/bin/python manage.py generate_load_data --tenant bench1m --conversations 1000000 --entries 10 --days 90
      DEBUG=1 .venv/bin/python bench/analytics_reports.py --tenant bench1m [--json]
(`DEBUG=1` only lets the settings load without production secrets; the script turns DEBUG off before the
first request.) Signs in as an admin and as a supervisor of two teams of that tenant (both created if missing)
and times each page in-process (Django test client, no network): p50/p95 over --repeat requests per round,
--rounds rounds, with the SQL statement count of one request and the machine's load average before and after.

The websocket (`/ws/analytics/`) only says "changed"; the page then refetches `/analytics/live/`, so the push
path costs what that fragment costs. Its reads (`live_tiles` and `agent_board`) are also timed called directly.
Targets (issue 8): live overview p50 < 100 ms, reports page for 30 days p50 < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from analytics.forms import preset_range  # noqa: E402
from analytics.live import agent_board, live_tiles  # noqa: E402
from analytics.models import AnalyticsRollup  # noqa: E402
from analytics.views import _visibility  # noqa: E402
from conversations.models import Conversation, TimelineEntry  # noqa: E402
from customers.models import Membership, Role, Tenant  # noqa: E402
from routing.models import Team  # noqa: E402

LIVE_TARGET_MS, REPORTS_TARGET_MS = 100, 300


class Counter:
    """Counts SQL statements (a wrapper: the test client's request_started signal resets Django's query log)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def fetch(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    if response.streaming:
        b"".join(response.streaming_content)  # a CSV export costs what producing all of it costs
    else:
        assert b"errorlist" not in response.content, (url, "the form refused the filters")


def timed(call, repeat: int) -> tuple[list[float], list[float], int]:
    call()  # warm caches and the connection
    counter = Counter()
    with connection.execute_wrapper(counter):
        call()
    samples, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - started) * 1000)
        # This process's CPU time (Django's own work; Postgres works in its own process and is not in it).
        cpu.append((time.process_time() - started_cpu) * 1000)
    return samples, cpu, counter.count


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def member(tenant: Tenant, name: str, role: str) -> Membership:
    user, _ = get_user_model().objects.get_or_create(username=f"{name}@{tenant.slug}", defaults={"email": f"{name}@{tenant.slug}"})
    membership, _ = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def signed_in(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", default="bench1m")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of 3 requests per page")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeat = 1, 3
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    tenant = Tenant.objects.get(slug=args.tenant)
    admin = member(tenant, "bench-admin", Role.ADMIN)
    supervisor = member(tenant, "bench-supervisor", Role.SUPERVISOR)
    teams = list(Team.objects.for_tenant(tenant).exclude(name="Bench team").order_by("pk"))
    if not teams:
        sys.exit(f"tenant {tenant.slug} has no teams: was it made by generate_load_data?")
    supervisor.teams.add(*teams[:2])
    # The busiest generated agent, for the one-agent filter.
    agent_id = (
        Conversation.objects.for_tenant(tenant).filter(assignee__isnull=False).values_list("assignee_id", flat=True)
        .order_by("assignee_id").first()
    )
    start, end = preset_range(tenant, 30)
    days = {"start": start.isoformat(), "end": end.isoformat()}
    admin_client, supervisor_client = signed_in(admin), signed_in(supervisor)

    def page(label: str, client: Client, path: str, target: int | None, **params) -> tuple:
        url = f"{path}?{urlencode(params)}" if params else path
        return label, url, target, lambda: fetch(client, url)

    def push() -> None:
        visibility = _visibility(admin)
        live_tiles(tenant=tenant, visibility=visibility, now=timezone.now())
        agent_board(tenant=tenant, visibility=visibility)

    pages = [
        page("live overview (admin)", admin_client, "/analytics/", LIVE_TARGET_MS),
        page("live fragment (admin)", admin_client, "/analytics/live/", LIVE_TARGET_MS),
        page("live overview (supervisor)", supervisor_client, "/analytics/", LIVE_TARGET_MS),
        page("live fragment (supervisor)", supervisor_client, "/analytics/live/", LIVE_TARGET_MS),
        ("push: live_tiles + agent_board", "analytics.live (direct)", LIVE_TARGET_MS, push),
        page("reports 30 days (admin)", admin_client, "/analytics/reports/", REPORTS_TARGET_MS, **days),
        page("reports 30 days, SMS (admin)", admin_client, "/analytics/reports/", REPORTS_TARGET_MS, **days, channel="sms"),
        page("reports 30 days, one team (admin)", admin_client, "/analytics/reports/", REPORTS_TARGET_MS, **days,
             team=str(teams[0].pk)),
        page("reports 30 days, one agent (admin)", admin_client, "/analytics/reports/", REPORTS_TARGET_MS, **days,
             agent=str(agent_id)),
        page("reports 30 days (supervisor)", supervisor_client, "/analytics/reports/", REPORTS_TARGET_MS, **days),
        page("drill-down: new, page 1", admin_client, "/analytics/reports/conversations/", None, **days, kpi="new"),
        page("drill-down: backlog, page 1", admin_client, "/analytics/reports/conversations/", None, **days,
             kpi="backlog"),
        page("CSV export: table", admin_client, "/analytics/reports/export.csv", None, **days, kind="table"),
    ]
    summary = {
        "tenant": tenant.slug,
        "conversations": Conversation.objects.for_tenant(tenant).count(),
        "timeline_entries": TimelineEntry.objects.for_tenant(tenant).count(),
        "rollup_rows": AnalyticsRollup.objects.for_tenant(tenant).count(),
        "cpus": os.cpu_count(), "rounds": args.rounds, "repeat": args.repeat, "days": [start.isoformat(), end.isoformat()],
    }
    log = sys.stderr if args.json else sys.stdout
    print(f"tenant {tenant.slug}: {summary['conversations']} conversations, {summary['timeline_entries']} timeline "
          f"entries, {summary['rollup_rows']} rollup rows; {os.cpu_count()} CPUs; {args.rounds} rounds x "
          f"{args.repeat} requests per page; reports for {start} to {end}", file=log)
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, *_ in pages}
    statements: dict[str, int] = {}
    load_before = load()
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}: load average {load()}", file=log)
        for label, _url, _target, call in pages:
            samples, cpu, statements[label] = timed(call, args.repeat)
            p95 = statistics.quantiles(samples, n=20)[18] if len(samples) > 1 else samples[0]
            results[label].append((statistics.median(samples), p95, statistics.median(cpu)))
    load_after = load()
    print(f"after: load average {load_after}", file=log)
    rows = []
    for label, url, target, _call in pages:
        p50 = statistics.median(p50 for p50, _, _ in results[label])
        rows.append({
            "label": label, "url": url, "p50_ms": round(p50, 1),
            "p95_ms": round(statistics.median(p95 for _, p95, _ in results[label]), 1),
            "cpu_p50_ms": round(statistics.median(cpu for _, _, cpu in results[label]), 1),
            "p50_rounds": [round(p50, 1) for p50, _, _ in results[label]],
            "p95_rounds": [round(p95, 1) for _, p95, _ in results[label]],
            "sql": statements[label],
            "target": f"p50 < {target} ms" if target else "",
            "met": p50 < target if target else None,
        })
    if args.json:
        print(json.dumps({**summary, "load_before": load_before, "load_after": load_after, "pages": rows}, indent=1))
        return
    print(f"{'page':<38} {'p50 per round (ms)':<22} {'p95 per round (ms)':<22} {'CPU p50':<8} {'SQL':<4} target")
    for row in rows:
        p50s = " / ".join(f"{v:.0f}" for v in row["p50_rounds"])
        p95s = " / ".join(f"{v:.0f}" for v in row["p95_rounds"])
        met = "" if row["met"] is None else (" met" if row["met"] else " MISSED")
        print(f"{row['label']:<38} {p50s:<22} {p95s:<22} {row['cpu_p50_ms']:<8.0f} {row['sql']:<4} {row['target']}{met}")


if __name__ == "__main__":
    main()
