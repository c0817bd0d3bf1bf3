"""Workspace page timings on a large tenant: the conversation list and a long conversation.

Run:  .venv/bin/python manage.py generate_load_data --tenant load100k --conversations 100000 --entries 10
      DEBUG=1 .venv/bin/python bench/workspace_pages.py --tenant load100k
Signs in as a supervisor of that tenant (created if missing) and times each page in-process (Django test
client, no network): p50/p95 over --repeat requests, with the SQL query count of one request.
"""

from __future__ import annotations

import argparse
import os
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


def timed(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)  # warm caches and the connection
    statements = []
    # Counted with a wrapper: the test client's request_started signal resets Django's own query log.
    with connection.execute_wrapper(lambda execute, sql, params, many, context: statements.append(sql) or execute(sql, params, many, context)):
        client.get(url)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    quantiles = statistics.quantiles(samples, n=20)
    return statistics.median(samples) * 1000, quantiles[18] * 1000, len(statements)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", default="load100k")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    tenant = Tenant.objects.get(slug=args.tenant)
    user, _ = get_user_model().objects.get_or_create(username=f"bench@{tenant.slug}", defaults={"email": f"bench@{tenant.slug}"})
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.SUPERVISOR})
    client = Client()
    client.force_login(user)
    longest = (
        Conversation.objects.for_tenant(tenant).order_by("number").values_list("number", flat=True).first()
    )
    entries = TimelineEntry.objects.for_tenant(tenant).filter(conversation__number=longest).count()
    print(f"tenant {tenant.slug}: {Conversation.objects.for_tenant(tenant).count()} conversations, "
          f"{TimelineEntry.objects.for_tenant(tenant).count()} timeline entries")
    pages = [
        ("list: all open, longest waiting first", "/app/?view=all"),
        ("list: unassigned, SMS only", "/app/?view=unassigned&channel=sms"),
        ("search: a word in messages", "/app/?q=refund"),
        (f"conversation with {entries} entries", f"/app/conversations/{longest}/"),
    ]
    for label, url in pages:
        p50, p95, queries = timed(client, url, args.repeat)
        print(f"{label:<45} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {queries} queries")


if __name__ == "__main__":
    main()
