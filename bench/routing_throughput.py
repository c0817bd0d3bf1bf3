"""Routing throughput: a burst of 1,000 open conversations routed from several threads to 50 agents.

Run:  .venv/bin/python bench/routing_throughput.py [--threads 4] [--processes 2] [--batch 100]
(--processes N routes from N worker processes, as N Celery worker processes would; threads share one GIL.)
Each worker routes its share of the burst the way the route_conversation task does: in batches through
routing.batch.conversations_route_batch (--batch 1 is one decision at a time through conversation_route).
Uses a throwaway tenant in the configured database and deletes it afterwards. Prints assignments per
second, per-batch latency percentiles and capacity violations (target: >= 200/s, zero violations).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")
os.environ.setdefault("DEBUG", "1")  # the dev settings' defaults; query logging is switched off below

import django  # noqa: E402
from django.conf import settings  # noqa: E402

django.setup()
settings.DEBUG = False

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from channels_app.models import Channel  # noqa: E402
from conversations.models import Conversation, Status, TimelineEntry  # noqa: E402
from customers.models import Customer, Membership, Role, Tenant  # noqa: E402
from routing.batch import conversations_route_batch  # noqa: E402
from routing.models import AgentProfile, Presence, RoutingRule, Team  # noqa: E402
from routing.services import conversation_route  # noqa: E402

BATCH = 100


def route(tenant: Tenant, chunk: list[int], batch: int) -> list[float]:
    """Route a share of the burst, `batch` conversations per transaction; returns each batch's latency."""
    latencies = []
    for start in range(0, len(chunk), batch):
        ids = chunk[start:start + batch]
        started = time.perf_counter()
        if batch == 1:
            conversation_route(tenant=tenant, conversation_id=ids[0])
        else:
            conversations_route_batch(tenant=tenant, conversation_ids=ids)
        latencies.append(time.perf_counter() - started)
    return latencies


def setup(agents: int, conversations: int, capacity: int) -> Tenant:
    slug = f"bench-routing-{uuid.uuid4().hex[:8]}"
    tenant = Tenant.objects.create(slug=slug, name="Routing bench")
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="refunds", keywords="refund\n/order\\s*#\\d+/", position=10)
    RoutingRule.objects.create(tenant=tenant, name="everything", set_team=team, position=100)
    users = get_user_model().objects.bulk_create([
        get_user_model()(username=f"{slug}-{i}@bench.test", email=f"{slug}-{i}@bench.test") for i in range(agents)
    ])
    memberships = Membership.objects.bulk_create([
        Membership(tenant=tenant, user=user, role=Role.AGENT, display_name=f"Agent {i}") for i, user in enumerate(users)
    ])
    team.members.add(*memberships)
    AgentProfile.objects.bulk_create([
        AgentProfile(tenant=tenant, membership=m, capacity={Channel.SMS: capacity}, presence=Presence.ONLINE)
        for m in memberships
    ])
    customers = Customer.objects.bulk_create([Customer(tenant=tenant, name=f"C{i}") for i in range(conversations)])
    Conversation.objects.bulk_create([
        Conversation(tenant=tenant, number=i + 1, customer=c, first_channel=Channel.SMS, last_channel=Channel.SMS,
                     subject=f"Where is my parcel {i}?")
        for i, c in enumerate(customers)
    ])
    return tenant


def cleanup(tenant: Tenant) -> None:
    user_ids = list(Membership.objects.for_tenant(tenant).values_list("user_id", flat=True))
    # Customers are protected while their timeline and conversations exist: those go first.
    TimelineEntry.objects.for_tenant(tenant).delete()
    Conversation.objects.for_tenant(tenant).delete()
    tenant.delete()
    get_user_model().objects.filter(pk__in=user_ids).delete()


def _route_chunk(args: tuple[int, list[int], int]) -> list[float]:
    """In a worker process: route a share of the burst, return each batch's latency."""
    tenant_id, chunk, batch = args
    latencies = route(Tenant.objects.get(pk=tenant_id), chunk, batch)
    connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", type=int, default=0, help="route from this many processes instead of threads")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--batch", type=int, default=BATCH, help="conversations per transaction (1: one at a time)")
    args = parser.parse_args()
    tenant = setup(args.agents, args.conversations, args.capacity)
    try:
        ids = list(Conversation.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True))
        latencies: list[float] = []
        lock = threading.Lock()

        def worker(chunk: list[int]) -> None:
            mine = route(tenant, chunk, args.batch)
            connection.close()
            with lock:
                latencies.extend(mine)

        share = -(-len(ids) // args.threads)
        threads = [threading.Thread(target=worker, args=(ids[i * share:(i + 1) * share],)) for i in range(args.threads)]
        started = time.perf_counter()
        if args.processes:
            import multiprocessing

            # A forked child must not reuse the parent's pooled sockets: close the pool before forking.
            connection.close()
            connection.close_pool()  # the children each open their own
            with multiprocessing.get_context("fork").Pool(args.processes) as pool:
                # Contiguous shares: each worker takes the next waiting conversations, as the task does.
                share = -(-len(ids) // args.processes)
                chunks = [(tenant.pk, ids[i * share:(i + 1) * share], args.batch) for i in range(args.processes)]
                for part in pool.map(_route_chunk, chunks):
                    latencies.extend(part)
        elif args.threads == 1:
            worker(ids)  # in the main thread, where a profiler sees it
        else:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started

        loads = Counter(
            Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN, assignee__isnull=False)
            .values_list("assignee_id", flat=True)
        )
        assigned = sum(loads.values())
        violations = sum(1 for n in loads.values() if n > args.capacity)
        twice = sum(1 for n in Counter(
            TimelineEntry.objects.for_tenant(tenant).filter(event="assigned").values_list("conversation_id", flat=True)
        ).values() if n > 1)
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
        how = f"{args.processes} processes" if args.processes else f"{args.threads} threads"
        print(f"{args.conversations} conversations, {args.agents} agents x {args.capacity} SMS, {how}, batches of {args.batch}")
        print(f"assigned {assigned} in {elapsed:.2f}s: {assigned / elapsed:.0f} assignments/s "
              f"({args.conversations / elapsed:.0f} conversations routed/s, {len(latencies)} batches)")
        print(f"batch latency ms: p50 {quantiles[49] * 1000:.1f}  p95 {quantiles[94] * 1000:.1f}  "
              f"p99 {quantiles[98] * 1000:.1f}  max {max(latencies) * 1000:.1f}")
        print(f"capacity violations: {violations}; conversations assigned twice: {twice}")
    finally:
        cleanup(tenant)


if __name__ == "__main__":
    main()
