from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import conversation_assign, conversation_set_status
from routing.batch import conversations_route_batch
from routing.models import AgentProfile, AssignmentMethod, ConversationRouting, SlaPolicy
from routing.services import conversation_route
from routing.sla import sla_apply
from routing.tasks import route_conversation
from tests.fixtures.plans import executed_plan, rows_read
from tests.routing.engine.conftest import burst, explanations, incoming, make_agent, run_in_threads

AGENTS, CAPACITY, CONVERSATIONS, THREADS = 25, 10, 320, 4


def route_one_by_one(tenant, conversations: list[Conversation]) -> None:
    for conversation in conversations:
        conversation_route(tenant=tenant, conversation_id=conversation.pk)


def route_as_batch(tenant, conversations: list[Conversation]) -> None:
    conversations_route_batch(tenant=tenant, conversation_ids=[c.pk for c in conversations])


ROUTERS = pytest.mark.parametrize("route_all", [route_one_by_one, route_as_batch], ids=["single", "batch"])


def outcomes(conversations: list[Conversation]) -> list[tuple[str | None, list[str]]]:
    result = []
    for conversation in conversations:
        conversation.refresh_from_db()
        name = conversation.assignee.memberships.get().display_name if conversation.assignee else None
        result.append((name, explanations(conversation)))
    return result


def busy_with(profile: AgentProfile, count: int) -> None:
    for _ in range(count):
        conversation = incoming(profile.tenant, "already handled")
        conversation_assign(tenant=profile.tenant, conversation=conversation, assignee=profile.membership.user)


@ROUTERS
def test_least_busy_fills_the_roomiest_agents_first_then_queues(tenant, support, route_all):
    roomy = make_agent(tenant, support, "Roomy", capacity={"sms": 3})
    make_agent(tenant, support, "Small", capacity={"sms": 1})
    busy_with(roomy, 1)
    conversations = [incoming(tenant, f"Help {i}") for i in range(4)]

    route_all(tenant, conversations)

    rule = "routed to Support by rule 'catch-all' (no conditions: matches everything)"
    assert outcomes(conversations) == [
        ("Roomy", [f"{rule}; assigned to Roomy: least busy, 2/3 SMS"]),
        ("Small", [f"{rule}; assigned to Small: least busy, 1/1 SMS"]),
        ("Roomy", [f"{rule}; assigned to Roomy: least busy, 3/3 SMS"]),
        (None, [f"{rule}; waiting in the Support queue: 2 at SMS capacity"]),
    ]


@ROUTERS
def test_round_robin_takes_turns_by_last_assignment(tenant, support, route_all):
    support.assignment_method = AssignmentMethod.ROUND_ROBIN
    support.save()
    now = timezone.now()
    make_agent(tenant, support, "Recent", capacity={"sms": 5}, last_assigned_at=now - timedelta(minutes=5))
    make_agent(tenant, support, "Earlier", capacity={"sms": 5}, last_assigned_at=now - timedelta(hours=1))
    make_agent(tenant, support, "Never", capacity={"sms": 5})
    conversations = [incoming(tenant, f"Help {i}") for i in range(5)]

    route_all(tenant, conversations)

    assert [name for name, _ in outcomes(conversations)] == ["Never", "Earlier", "Recent", "Never", "Earlier"]


@ROUTERS
def test_a_returning_customer_goes_back_to_their_last_agent_while_they_have_room(tenant, support, route_all):
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 2})
    make_agent(tenant, support, "Eve", capacity={"sms": 5})
    earlier = incoming(tenant, "First problem", sender="+12025550999")
    conversation_assign(tenant=tenant, conversation=earlier, assignee=dana.membership.user)
    conversation_set_status(tenant=tenant, conversation=earlier, status=Status.CLOSED)
    busy_with(dana, 1)
    conversations = [incoming(tenant, "Second problem", sender="+12025550999"), incoming(tenant, "Someone else")]

    route_all(tenant, conversations)

    (first_name, first), (second_name, _) = outcomes(conversations)
    assert (first_name, second_name) == ("Dana", "Eve")
    assert first[0].endswith("assigned to Dana: returning customer's last agent, 2/2 SMS")


@ROUTERS
def test_offline_agents_and_other_channels_are_left_out_with_a_reason(tenant, support, route_all):
    make_agent(tenant, support, "Away", capacity={"sms": 5}, presence="offline")
    make_agent(tenant, support, "Mailer", capacity={"email": 5})
    conversations = [incoming(tenant)]

    route_all(tenant, conversations)

    assert outcomes(conversations)[0][1][0].endswith("waiting in the Support queue: 1 not online, 1 not taking SMS")
    assert ConversationRouting.objects.get(conversation=conversations[0]).queued_at is not None


def test_a_batch_writes_the_same_timeline_analytics_and_events_as_one_decision(
    tenant, support, django_capture_on_commit_callbacks, captured_events
):
    make_agent(tenant, support, "Dana", capacity={"sms": 5})
    single, batched = incoming(tenant, "One"), incoming(tenant, "Two")
    captured_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        conversation_route(tenant=tenant, conversation_id=single.pk)
    single_events = [(e.name, sorted(e.payload)) for e in captured_events]
    captured_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        counts = conversations_route_batch(tenant=tenant, conversation_ids=[batched.pk])
    batch_events = [(e.name, sorted(e.payload)) for e in captured_events]

    assert counts == {"assigned": 1, "queued": 0, "skipped": 0}
    assert batch_events == single_events
    assert ("conversation.assigned", ["assignee_id", "conversation_id", "number", "team_id"]) in batch_events

    def shape(conversation: Conversation) -> list[tuple]:
        entries = TimelineEntry.objects.filter(conversation=conversation, event__in=["assigned", "routed"]).order_by("event")
        return [(e.event, e.kind, sorted(e.data), e.customer_id == conversation.customer_id) for e in entries]

    assert shape(batched) == shape(single)
    single_assigned = TimelineEntry.objects.get(conversation=single, event="assigned").data
    batch_assigned = TimelineEntry.objects.get(conversation=batched, event="assigned").data
    assert {**batch_assigned, "to_assignee_id": None} == {**single_assigned, "to_assignee_id": None}
    assert batch_assigned["to_assignee_id"] == single_assigned["to_assignee_id"]
    fields = ("name", "channel", "team_id_snapshot", "agent_id_snapshot", "customer_tier", "inbox_id_snapshot", "data")
    single_row, batch_row = (
        AnalyticsEvent.objects.filter(conversation=c, name=EventName.ASSIGNMENT).values(*fields).get() for c in (single, batched)
    )
    assert batch_row == single_row


def test_a_batch_skips_conversations_already_assigned_or_closed(tenant, support):
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 5})
    taken, closed, waiting = incoming(tenant), incoming(tenant), incoming(tenant)
    conversation_assign(tenant=tenant, conversation=taken, assignee=dana.membership.user)
    conversation_set_status(tenant=tenant, conversation=closed, status=Status.CLOSED)

    counts = conversations_route_batch(tenant=tenant, conversation_ids=[taken.pk, closed.pk, waiting.pk])

    assert counts == {"assigned": 1, "queued": 0, "skipped": 2}
    assert TimelineEntry.objects.filter(conversation=taken, event="assigned").count() == 1


def test_a_batch_of_six_takes_as_many_queries_as_a_batch_of_two(tenant, support):
    make_agent(tenant, support, "Dana", capacity={"sms": 20})
    SlaPolicy.objects.create(tenant=tenant, name="Around the clock")  # each conversation has an SLA row to read
    first, small, large = [incoming(tenant, "First")], [incoming(tenant, f"Small {i}") for i in range(2)], [
        incoming(tenant, f"Large {i}") for i in range(6)
    ]
    for conversation in first + small + large:
        sla_apply(conversation=conversation)
    conversations_route_batch(tenant=tenant, conversation_ids=[first[0].pk])  # loads the rules cache

    counted = []
    for conversations in (small, large):
        with CaptureQueriesContext(connection) as queries:
            counts = conversations_route_batch(tenant=tenant, conversation_ids=[c.pk for c in conversations])
        assert counts["assigned"] == len(conversations)
        counted.append(len(queries))

    assert counted[0] == counted[1]


def route_in_batches(tenant, conversation_ids: list[int]) -> None:
    for start in range(0, len(conversation_ids), 60):
        conversations_route_batch(tenant=tenant, conversation_ids=conversation_ids[start:start + 60])


@pytest.mark.django_db(transaction=True)
def test_batches_from_several_threads_never_overfill_an_agent_or_assign_twice():
    tenant, work = burst("batch-burst", agents=AGENTS, capacity=CAPACITY, conversations=CONVERSATIONS, seed=7)

    errors = run_in_threads(route_in_batches, tenant, work, THREADS)

    assert errors == []
    loads = Counter(
        Conversation.objects.for_tenant(tenant).filter(status=Status.OPEN, assignee__isnull=False)
        .values_list("assignee_id", flat=True)
    )
    assert max(loads.values()) == CAPACITY
    assert sum(loads.values()) == AGENTS * CAPACITY
    assigned_events = Counter(
        TimelineEntry.objects.for_tenant(tenant).filter(event="assigned").values_list("conversation_id", flat=True)
    )
    assert set(assigned_events.values()) == {1}
    assert len(assigned_events) == AGENTS * CAPACITY
    queued = Conversation.objects.for_tenant(tenant).filter(assignee__isnull=True, routing__queued_at__isnull=False)
    assert queued.count() == CONVERSATIONS - AGENTS * CAPACITY


def test_the_routing_task_routes_its_conversation_with_the_later_ones_still_unrouted(tenant, support):
    make_agent(tenant, support, "Dana", capacity={"sms": 5})
    burst = [incoming(tenant, f"Help {i}") for i in range(4)]

    route_conversation(burst[1].pk)

    # The earlier one waits for its own task (queued before this one's); the later ones come along.
    assert [name for name, _ in outcomes(burst)] == [None, "Dana", "Dana", "Dana"]
    assert [explanations(c)[0].split("; ")[-1] for c in burst[1:]] == [
        "assigned to Dana: least busy, 1/5 SMS", "assigned to Dana: least busy, 2/5 SMS", "assigned to Dana: least busy, 3/5 SMS",
    ]

    route_conversation(burst[0].pk)

    assert [name for name, _ in outcomes(burst)] == ["Dana"] * 4


def test_the_routing_batch_skips_the_queue_waiting_for_an_agent(tenant, support):
    """With agents full, earlier conversations wait queued: a later burst's batch is that burst, and the
    query visits only conversations after the one being routed, not the whole queue."""
    from routing.selectors import unrouted_batch_ids

    waiting = [incoming(tenant, f"Queued {i}") for i in range(30)]
    for conversation in waiting:
        route_conversation(conversation.pk)  # nobody online: each is queued
    assert ConversationRouting.objects.filter(conversation__in=waiting, queued_at__isnull=False).count() == 30
    later = [incoming(tenant, f"Later {i}") for i in range(3)]

    with CaptureQueriesContext(connection) as queries:
        ids = unrouted_batch_ids(tenant=tenant, first=later[0].pk, limit=100)

    assert ids == [c.pk for c in later]
    assert rows_read(executed_plan(queries.captured_queries[0]["sql"])) < 30
