"""The live overview (/analytics/): tiles per channel from the current state, the agent board, who sees what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.live import Visibility, agent_board, live_tiles
from conversations.models import Conversation, Status
from customers.models import Role
from routing.models import AgentProfile, ConversationSla, Presence
from tests.conftest import seated_user
from tests.factories import CustomerFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
OVERVIEW = "/analytics/"


def conversation(tenant, number, channel="sms", *, status=Status.OPEN, waiting_minutes=None, assignee=None, team=None,
                 due_in_minutes=None, customer_name="", **fields):
    return Conversation.objects.create(
        tenant=tenant, number=number, status=status, first_channel=channel, last_channel=channel, channels=[channel],
        customer=CustomerFactory(tenant=tenant, name=customer_name or f"Customer {number}"), assignee=assignee, team=team,
        waiting_since=fields.pop("waiting_since", None if waiting_minutes is None else NOW - timedelta(minutes=waiting_minutes)),
        first_response_due_at=None if due_in_minutes is None else NOW + timedelta(minutes=due_in_minutes), **fields,
    )


def at_risk_since(conv, minutes: float) -> ConversationSla:
    """The SLA clock as the engine keeps it: the first-response cycle's at-risk moment `minutes` ago."""
    return ConversationSla.objects.create(tenant=conv.tenant, conversation=conv, state={"metrics": {"first_response": {
        "start": (NOW - timedelta(hours=1)).timestamp(), "due": conv.first_response_due_at.timestamp(),
        "at_risk": (NOW - timedelta(minutes=minutes)).timestamp(),
    }}})


def tiles_by_channel(tenant, visibility: Visibility | None = None):
    tiles = live_tiles(tenant=tenant, visibility=visibility or Visibility(), now=NOW)
    return tiles, {row.channel: row for row in tiles.channels}


def test_tiles_count_open_unassigned_waiting_at_risk_and_breached_per_channel(tenant, other_tenant, agent):
    conversation(tenant, 1, "sms", waiting_minutes=42)
    conversation(tenant, 2, "sms", waiting_minutes=5, assignee=agent)
    conversation(tenant, 3, "email", due_in_minutes=-3, assignee=agent)  # breached
    risky = conversation(tenant, 4, "email", due_in_minutes=20, waiting_minutes=90)
    at_risk_since(risky, 5)
    calm = conversation(tenant, 5, "email", due_in_minutes=50)
    at_risk_since(calm, -10)  # the warning point is still ahead
    conversation(tenant, 6, "chat", status=Status.PENDING)
    conversation(tenant, 7, "chat", status=Status.RESOLVED)
    conversation(other_tenant, 1, "sms", waiting_minutes=500)

    tiles, rows = tiles_by_channel(tenant)

    assert set(rows) == {"sms", "email"}
    assert (rows["sms"].open, rows["sms"].unassigned, rows["sms"].at_risk, rows["sms"].breached) == (2, 1, 0, 0)
    assert (rows["email"].open, rows["email"].unassigned, rows["email"].at_risk, rows["email"].breached) == (3, 2, 1, 1)
    assert rows["sms"].waiting_since == NOW - timedelta(minutes=42)
    assert rows["sms"].longest_waiting_number == 1
    assert rows["email"].longest_waiting_number == 4
    overall = tiles.overall
    assert (overall.open, overall.unassigned, overall.at_risk, overall.breached) == (5, 3, 1, 1)
    assert (overall.waiting_since, overall.longest_waiting_number) == (NOW - timedelta(minutes=90), 4)


def test_a_breached_conversation_is_not_also_counted_at_risk(tenant):
    late = conversation(tenant, 1, "sms", due_in_minutes=-1)
    at_risk_since(late, 30)

    tiles, rows = tiles_by_channel(tenant)

    assert (rows["sms"].at_risk, rows["sms"].breached) == (0, 1)


def test_a_paused_or_finished_metric_is_not_at_risk(tenant):
    # Pending: the engine clears the due times on the conversation while the clock is stopped.
    paused = conversation(tenant, 1, "sms", status=Status.PENDING)
    ConversationSla.objects.create(tenant=tenant, conversation=paused, state={"metrics": {"first_response": {
        "start": NOW.timestamp() - 3600, "due": None, "at_risk": None}}})
    answered = conversation(tenant, 2, "sms")  # first response given: no due time running
    ConversationSla.objects.create(tenant=tenant, conversation=answered, state={"metrics": {"first_response": {
        "start": NOW.timestamp() - 3600, "due": NOW.timestamp() + 60, "at_risk": NOW.timestamp() - 60, "ended": True}}})

    tiles, _ = tiles_by_channel(tenant)

    assert tiles.overall.at_risk == 0


def test_an_agent_sees_only_their_own_and_a_supervisor_their_teams(tenant, agent, teammate, supervisor):
    billing, sales = TeamFactory(tenant=tenant, name="Billing"), TeamFactory(tenant=tenant, name="Sales")
    billing.members.add(agent.membership, supervisor.membership)
    sales.members.add(teammate.membership)
    conversation(tenant, 1, "sms", assignee=agent, team=billing)
    conversation(tenant, 2, "sms", team=billing)
    conversation(tenant, 3, "sms", assignee=teammate, team=sales)
    conversation(tenant, 4, "sms")

    def open_count(user):
        from analytics.views import _visibility

        return live_tiles(tenant=tenant, visibility=_visibility(user.membership), now=NOW).overall.open

    assert open_count(agent) == 1
    assert open_count(supervisor) == 2
    admin = seated_user(tenant, Role.ADMIN, "boss@acme.test")
    assert open_count(admin) == 4


def test_the_board_shows_presence_load_against_capacity_and_open_conversations(tenant, agent, teammate):
    AgentProfile.objects.create(tenant=tenant, membership=agent.membership, presence=Presence.ONLINE,
                                presence_changed_at=NOW - timedelta(minutes=7), capacity={"sms": 2, "email": 5})
    conversation(tenant, 1, "sms", assignee=agent, waiting_minutes=3, customer_name="Maria")
    conversation(tenant, 2, "sms", assignee=agent, waiting_minutes=30, customer_name="Ola")
    conversation(tenant, 3, "email", assignee=agent, status=Status.RESOLVED)

    board = agent_board(tenant=tenant, visibility=Visibility())

    first = board[0]
    assert (first.name, first.presence, first.open_total) == (agent.membership.name, Presence.ONLINE, 2)
    assert [(load.channel, load.load, load.capacity, load.full) for load in first.loads] == [
        ("email", 0, 5, False), ("sms", 2, 2, True),
    ]
    assert [(c.number, c.customer) for c in first.conversations] == [(2, "Ola"), (1, "Maria")]
    assert [person.presence for person in board[1:]] == [Presence.OFFLINE]


def test_the_board_lists_each_agents_longest_waiting_conversations_first_and_counts_the_rest(tenant, agent, teammate):
    for number in range(1, 11):  # the agent's 10: #1 has waited 1 minute ... #10 ten minutes
        conversation(tenant, number, assignee=agent, waiting_minutes=number, customer_name=f"Waiting {number}")
    conversation(tenant, 11, assignee=agent)  # not waiting: after the waiting ones
    conversation(tenant, 12, assignee=teammate, waiting_minutes=1)

    board = {row.user_id: row for row in agent_board(tenant=tenant, visibility=Visibility())}

    listed = board[agent.pk].conversations
    assert [c.number for c in listed] == [10, 9, 8, 7, 6, 5, 4, 3]
    assert listed[0].customer == "Waiting 10"
    assert board[agent.pk].open_total == 11
    assert [c.number for c in board[teammate.pk].conversations] == [12]


def test_the_board_costs_the_same_queries_for_two_or_eight_agents(tenant, django_assert_max_num_queries):
    def add_agents(count, first_number):
        for index in range(count):
            user = seated_user(tenant, Role.AGENT, f"a{first_number + index}@acme.test")
            conversation(tenant, first_number + index, "sms", assignee=user, waiting_minutes=index)

    add_agents(2, 1)
    with django_assert_max_num_queries(4):
        agent_board(tenant=tenant, visibility=Visibility())
    add_agents(6, 10)
    with django_assert_max_num_queries(4):
        assert len(agent_board(tenant=tenant, visibility=Visibility())) == 8


# --- the pages ------------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_a_seat_is_refused(client):
    client.force_login(UserFactory(email="nobody@example.org"))
    assert client.get(OVERVIEW).status_code == 403


def test_an_admin_sees_tiles_board_and_links_into_the_workspace(client, tenant, tenant_admin, agent):
    conversation(tenant, 17, "sms", customer_name="Maria", waiting_since=timezone.now() - timedelta(minutes=4))
    conversation(tenant, 18, "whatsapp", assignee=agent, customer_name="Ola")
    client.force_login(tenant_admin)

    response = client.get(OVERVIEW)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'hx-get="/analytics/live/"' in body
    assert "/app/conversations/17/" in body  # the longest waiting
    assert "/app/conversations/18/" in body  # on the agent's board
    assert "/app/?view=unassigned&amp;channel=sms" in body
    assert re.search(r"4m 0\ds", body)  # waiting, as people read it
    assert response.context["tiles"].overall.open == 2


def test_an_outsider_sees_their_own_tenant_not_ours(client, tenant, outsider):
    conversation(tenant, 1, "sms", waiting_minutes=4, customer_name="Maria")
    client.force_login(outsider)

    response = client.get(OVERVIEW)

    assert response.status_code == 200
    assert response.context["tiles"].overall.open == 0
    assert "Maria" not in response.content.decode()
    assert "/app/conversations/1/" not in response.content.decode()


def test_an_agent_sees_their_own_work_only(client, tenant, agent, teammate):
    conversation(tenant, 1, "sms", assignee=agent, customer_name="Mine")
    conversation(tenant, 2, "sms", assignee=teammate, customer_name="Theirs")
    client.force_login(agent)

    response = client.get(OVERVIEW)

    body = response.content.decode()
    assert response.status_code == 200
    assert "Mine" in body and "Theirs" not in body
    assert [person.user_id for person in response.context["board"]] == [agent.pk]


def test_the_live_region_answers_alone_and_the_workspace_refetch_gets_nothing(client, tenant, tenant_admin):
    conversation(tenant, 1, "sms")
    client.force_login(tenant_admin)

    region = client.get("/analytics/live/")
    workspace_refetch = client.get(OVERVIEW, HTTP_X_REQUESTED_WITH="live")

    assert region.status_code == 200
    assert b"<html" not in region.content and b'data-tiles="overall"' in region.content
    assert workspace_refetch.status_code == 204


def test_the_overview_costs_a_fixed_number_of_queries(client, tenant, tenant_admin, django_assert_max_num_queries):
    for number in range(1, 6):
        conversation(tenant, number, "sms", waiting_minutes=number)
    client.force_login(tenant_admin)
    client.get(OVERVIEW)  # session and membership caches warm

    with django_assert_max_num_queries(14):
        assert client.get("/analytics/live/").status_code == 200
