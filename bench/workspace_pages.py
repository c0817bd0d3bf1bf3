"""Workspace page timings on a large tenant: the conversation list (pages, sorts, filters), search, and a
long conversation.

Run:  .venv/bin/python manage.py generate_load_data --tenant load100k --conversations 100000 --entries 10
      DEBUG=1 .venv/bin/python bench/workspace_pages.py --tenant load100k
(`DEBUG=1` only lets the settings load without production secrets; the script turns DEBUG off before the
first request, so no query log and no template debug info are kept.) Signs in as a supervisor of that tenant
(created if missing) and times each page in-process (Django test client, no network): p50/p95 over
--repeat requests per round, --rounds rounds, with the SQL statement count of one request and the
machine's load average before and after.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from conversations.models import Conversation, TimelineEntry  # noqa: E402
from customers.models import Membership, Role, Tenant  # noqa: E402
from routing.models import Team  # noqa: E402


def timed(client: Client, url: str, repeat: int) -> tuple[list[float], list[float], int]:
    client.get(url)  # warm caches and the connection
    statements = []
    # Counted with a wrapper: the test client's request_started signal resets Django's own query log.
    with connection.execute_wrapper(lambda execute, sql, params, many, context: statements.append(sql) or execute(sql, params, many, context)):
        client.get(url)
    samples, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        # This process's CPU time: Django's own work, less sensitive to a busy machine than the wall clock
        # (Postgres works in its own process and is not in it).
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples, cpu, len(statements)


def page_after(client: Client, url: str, pages: int) -> str:
    """The URL of page `pages + 1` of a list, following its "next page" links."""
    for _ in range(pages):
        link = re.search(r'rel="next" href="([^"]+)"', client.get(url).content.decode())
        url = html.unescape(link.group(1))
    return url


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", default="load100k")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    tenant = Tenant.objects.get(slug=args.tenant)
    user, _ = get_user_model().objects.get_or_create(username=f"bench@{tenant.slug}", defaults={"email": f"bench@{tenant.slug}"})
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.SUPERVISOR})
    client = Client()
    client.force_login(user)
    # An agent in one team, with a share of the open conversations assigned to them or their team.
    agent, _ = get_user_model().objects.get_or_create(
        username=f"bench-agent@{tenant.slug}", defaults={"email": f"bench-agent@{tenant.slug}"}
    )
    agent_membership, _ = Membership.objects.get_or_create(tenant=tenant, user=agent, defaults={"role": Role.AGENT})
    team, _ = Team.objects.get_or_create(tenant=tenant, name="Bench team")
    team.members.add(agent_membership)
    if not Conversation.objects.for_tenant(tenant).filter(assignee=agent).exists():
        open_ids = list(Conversation.objects.for_tenant(tenant).filter(status="open").order_by("pk").values_list("pk", flat=True))
        Conversation.objects.filter(pk__in=open_ids[::50]).update(assignee=agent, team=team)
        Conversation.objects.filter(pk__in=open_ids[25::50]).update(team=team)
    agent_client = Client()
    agent_client.force_login(agent)
    longest = (
        Conversation.objects.for_tenant(tenant).order_by("number").values_list("number", flat=True).first()
    )
    entries = TimelineEntry.objects.for_tenant(tenant).filter(conversation__number=longest).count()
    print(f"tenant {tenant.slug}: {Conversation.objects.for_tenant(tenant).count()} conversations, "
          f"{TimelineEntry.objects.for_tenant(tenant).count()} timeline entries; {os.cpu_count()} CPUs; "
          f"{args.rounds} rounds x {args.repeat} requests per page")
    pages = [
        ("list: all open, longest waiting first", "/app/?view=all"),
        ("list: all open, page 2", page_after(client, "/app/?view=all", 1)),
        ("list: all open, page 20", page_after(client, "/app/?view=all", 19)),
        ("list: all open, urgent first", "/app/?view=all&sort=priority"),
        ("list: unassigned, SMS only", "/app/?view=unassigned&channel=sms"),
        ("list: resolved, tag + priority filters", "/app/?view=resolved&priority=high&tag=vip"),
        ("search: a common word in messages", "/app/?q=refund"),
        ("search: a word in no message", "/app/?q=zeppelin"),
        ("search: a customer's name", "/app/?q=Load+customer+4242"),
        ("search: part of a phone number", "/app/?q=2020004242"),
        (f"conversation with {entries} entries", f"/app/conversations/{longest}/"),
    ]
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in pages}
    statements: dict[str, int] = {}
    agent_pages = [("agent: mine", "/app/?view=mine"), ("agent: my teams", "/app/?view=teams"),
                   ("agent: unassigned", "/app/?view=unassigned")]
    pages = agent_pages + pages
    results.update({label: [] for label, _ in agent_pages})
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}: load average {load()}")
        for label, url in pages:
            samples, cpu, statements[label] = timed(agent_client if label.startswith("agent") else client, url, args.repeat)
            results[label].append((statistics.median(samples), statistics.quantiles(samples, n=20)[18], statistics.median(cpu)))
    print(f"after: load average {load()}")
    print(f"{'page':<42} {'p50 per round (ms)':<22} {'p95 per round (ms)':<22} {'CPU p50 (ms)':<18} SQL")
    for label, _ in pages:
        p50s = " / ".join(f"{p50:.0f}" for p50, _, _ in results[label])
        p95s = " / ".join(f"{p95:.0f}" for _, p95, _ in results[label])
        cpus = " / ".join(f"{cpu:.0f}" for _, _, cpu in results[label])
        print(f"{label:<42} {p50s:<22} {p95s:<22} {cpus:<18} {statements[label]}")


if __name__ == "__main__":
    main()
