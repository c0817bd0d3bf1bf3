from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.db import close_old_connections, connection

from channels_app.models import Channel
from conversations.models import Conversation, Status, TimelineEntry
from customers.models import Customer
from routing.models import AgentProfile, RoutingRule, Team
from routing.services import conversation_route
from tests.factories import TenantFactory
from tests.routing.engine.conftest import make_agent

AGENTS, CAPACITY, CONVERSATIONS, THREADS = 25, 10, 300, 6


def route_all(tenant, conversation_ids: list[int], errors: list[BaseException]) -> None:
    try:
        for conversation_id in conversation_ids:
            conversation_route(tenant=tenant, conversation_id=conversation_id)
    except BaseException as exc:  # handed to the main thread, which fails the test with it
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_burst_routed_from_several_threads_never_overfills_an_agent_or_assigns_twice():
    tenant = TenantFactory(slug="burst")
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="all", set_team=team)
    for i in range(AGENTS):
        make_agent(tenant, team, f"Agent{i}", capacity={"sms": CAPACITY})
    customers = Customer.objects.bulk_create([Customer(tenant=tenant, name=f"C{i}") for i in range(CONVERSATIONS)])
    conversations = Conversation.objects.bulk_create([
        Conversation(tenant=tenant, number=i + 1, customer=customer, first_channel=Channel.SMS, last_channel=Channel.SMS)
        for i, customer in enumerate(customers)
    ])
    # Every conversation is routed twice, by different threads, in a random order.
    work = [c.pk for c in conversations] * 2
    random.Random(6).shuffle(work)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=route_all, args=(tenant, work[i::THREADS], errors)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()

    assert errors == []
    loads = Counter(
        Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN, assignee__isnull=False)
        .values_list("assignee_id", flat=True)
    )
    assert max(loads.values()) <= CAPACITY
    assert sum(loads.values()) == AGENTS * CAPACITY
    assigned_events = Counter(
        TimelineEntry.objects.for_tenant(tenant).filter(event="assigned").values_list("conversation_id", flat=True)
    )
    assert set(assigned_events.values()) == {1}
    assert len(assigned_events) == AGENTS * CAPACITY
    queued = Conversation.objects.for_tenant(tenant).filter(assignee__isnull=True, routing__queued_at__isnull=False)
    assert queued.count() == CONVERSATIONS - AGENTS * CAPACITY
    assert AgentProfile.objects.for_tenant(tenant).filter(last_assigned_at__isnull=True).count() == 0
