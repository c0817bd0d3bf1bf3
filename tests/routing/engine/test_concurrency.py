from __future__ import annotations

from collections import Counter

import pytest

from conversations.models import Conversation, Status, TimelineEntry
from routing.models import AgentProfile
from routing.services import conversation_route
from tests.routing.engine.conftest import burst, run_in_threads

AGENTS, CAPACITY, CONVERSATIONS, THREADS = 25, 10, 300, 6


def route_each(tenant, conversation_ids: list[int]) -> None:
    for conversation_id in conversation_ids:
        conversation_route(tenant=tenant, conversation_id=conversation_id)


@pytest.mark.django_db(transaction=True)
def test_a_burst_routed_from_several_threads_never_overfills_an_agent_or_assigns_twice():
    tenant, work = burst("burst", agents=AGENTS, capacity=CAPACITY, conversations=CONVERSATIONS, seed=6)

    errors = run_in_threads(route_each, tenant, work, THREADS)

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
