#!/usr/bin/env python3
"""How late do SLA breach timers fire? Creates N conversations with short calendar-hour targets spread over a
few seconds, runs a real Celery worker (solo pool, in a thread, on Redis), and prints how late each
"sla_breached" timeline event was relative to its due time: p50, p95, max.

Uses the test settings: a throwaway database (created and dropped here) and a broker queue of its own.
    .venv/bin/python bench/sla_timer_lateness.py --conversations 200
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings_test")

import django  # noqa: E402

django.setup()
logging.disable(logging.INFO)

from celery.contrib.testing.worker import start_worker  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from omnidesk.celery import app  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(count: int, spread: float, first: int) -> None:
    from channels_app.models import Channel
    from conversations.models import Priority, TimelineEntry
    from conversations.services import conversation_open
    from customers.models import Customer, Tenant
    from routing.models import SlaMetric, SlaPolicy, SlaTarget

    tenant = Tenant.objects.create(slug="bench-sla", name="Bench SLA")
    policies = []
    # A few targets so due moments spread over `spread` seconds instead of piling on one instant.
    for index, seconds in enumerate(range(first, first + max(1, int(spread)) + 1)):
        policy = SlaPolicy.objects.create(tenant=tenant, name=f"{seconds}s", position=index, channels=[], at_risk_share=0.5)
        SlaTarget.objects.create(
            tenant=tenant, policy=policy, priority=Priority.NORMAL, metric=SlaMetric.FIRST_RESPONSE, seconds=seconds,
            business_hours=False,
        )
        policies.append(policy)
    from routing.sla import sla_apply

    conversations = []
    started = time.monotonic()
    for number in range(count):
        customer = Customer.objects.create(tenant=tenant, name=f"Bench {number}")
        conversation = conversation_open(tenant=tenant, customer=customer, channel=Channel.SMS)
        sla_apply(conversation=conversation, policy=policies[number % len(policies)])
        conversations.append(conversation)
    created = time.monotonic() - started
    deadline = time.monotonic() + first + spread + 30
    while time.monotonic() < deadline:
        fired = TimelineEntry.objects.for_tenant(tenant).filter(event="sla_breached").count()
        if fired >= count:
            break
        time.sleep(0.2)
    entries = TimelineEntry.objects.for_tenant(tenant).filter(event="sla_breached").select_related("conversation")
    lateness = [
        (entry.created_at - entry.conversation.first_response_due_at).total_seconds()
        for entry in entries
        if entry.conversation.first_response_due_at is not None
    ]
    duplicates = entries.count() - len({entry.conversation_id for entry in entries})
    print(f"conversations: {count} created in {created:.1f} s; breaches fired: {entries.count()} (duplicates: {duplicates})")
    if lateness:
        print(
            f"lateness vs due time: p50 {statistics.median(lateness) * 1000:.0f} ms, "
            f"p95 {percentile(lateness, 0.95) * 1000:.0f} ms, max {max(lateness) * 1000:.0f} ms, "
            f"min {min(lateness) * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--spread", type=float, default=10.0, help="Seconds over which due moments spread.")
    # Longer than creating the conversations takes, so lateness measures the timers, not the set-up backlog.
    parser.add_argument("--first", type=int, default=45, help="Shortest target, seconds.")
    args = parser.parse_args()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        app.conf.task_always_eager = False
        app.control.purge()
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            run(args.conversations, args.spread, args.first)
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
