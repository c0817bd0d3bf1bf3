from __future__ import annotations

import time

import pytest

from conversations.models import Conversation
from routing.models import ConversationRouting, RoutingRule, Team
from routing.tasks import sweep_unrouted
from tests.factories import TenantFactory
from tests.routing.engine.conftest import explanations, incoming, make_agent


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_conversations_stored_while_no_worker_runs_are_routed_by_the_sweeper_once_workers_return(request):
    tenant = TenantFactory(slug="outage")
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="all", set_team=team)
    make_agent(tenant, team, "Dana", capacity={"sms": 5})
    # Webhooks keep storing while the workers are down; their routing tasks are lost with the broker queue
    # (the worker fixture purges it before starting).
    stored = [incoming(tenant, f"Help {i}") for i in range(3)]
    assert ConversationRouting.objects.for_tenant(tenant).count() == 0

    request.getfixturevalue("celery_worker_live")
    assert ConversationRouting.objects.for_tenant(tenant).count() == 0
    sweep_unrouted.delay(grace_seconds=0)

    assigned = Conversation.objects.for_tenant(tenant).filter(pk__in=[c.pk for c in stored], assignee__isnull=False)
    assert wait_for(lambda: assigned.count() == 3)
    assert [explanations(c)[0].split("; ")[-1] for c in stored] == [
        "assigned to Dana: least busy, 1/5 SMS", "assigned to Dana: least busy, 2/5 SMS", "assigned to Dana: least busy, 3/5 SMS",
    ]
