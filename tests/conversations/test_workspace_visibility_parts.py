"""An agent's view counts and pages read what they may see in parts (their own, unassigned, their teams'
assigned to others); together the parts must list exactly what the one visibility condition does."""

from __future__ import annotations

import pytest

from conversations import selectors
from conversations.models import Status
from conversations.selectors import ListFilters, workspace_view, workspace_view_counts
from tests.conversations.test_workspace_list import conversation_at, every_page
from tests.factories import TeamFactory

AGENT_VIEWS = ("mine", "unassigned", "teams", "pending", "snoozed", "resolved", "sla")


@pytest.fixture
def mixed_conversations(tenant, agent, teammate):
    """Conversations of every kind of assignment in three statuses, some the agent may see and some not."""
    support = TeamFactory(tenant=tenant, name="Support")
    billing = TeamFactory(tenant=tenant, name="Billing")
    sales = TeamFactory(tenant=tenant, name="Sales")
    support.members.add(agent.membership)
    billing.members.add(agent.membership)
    kinds = [
        {"assignee": agent}, {"assignee": agent, "team": support}, {"assignee": agent, "team": sales},
        {"assignee": teammate, "team": support}, {"assignee": teammate, "team": billing},
        {}, {"team": sales},
        {"assignee": teammate, "team": sales}, {"assignee": teammate},  # not the agent's to see
    ]
    number = 0
    for status in (Status.OPEN, Status.PENDING, Status.RESOLVED):
        for waiting_minutes in (5, 50, None):
            for kind in kinds:
                number += 1
                conversation_at(tenant, number, status=status, waiting_minutes=waiting_minutes,
                                updated_minutes=number % 7, **kind)


@pytest.mark.parametrize("sort", ["waiting", "priority"])
def test_an_agents_pages_list_what_the_agent_may_see_in_order(tenant, agent, mixed_conversations, monkeypatch, sort):
    monkeypatch.setattr(selectors, "LIST_PAGE_SIZE", 4)

    listed = {view: every_page(tenant, agent.membership, ListFilters(view=view, sort=sort))[0] for view in AGENT_VIEWS}

    assert listed == {
        view: [c.number for c in workspace_view(tenant=tenant, membership=agent.membership, view=view, sort=sort)]
        for view in AGENT_VIEWS
    }
    assert (len(listed["mine"]), len(listed["unassigned"]), len(listed["teams"]), len(listed["resolved"])) == (9, 6, 9, 21)


@pytest.mark.parametrize("cap", [5, 1000])
def test_an_agents_view_counts_add_up_the_parts_to_the_cap(tenant, agent, mixed_conversations, monkeypatch, cap):
    monkeypatch.setattr(selectors, "VIEW_COUNT_CAP", cap)

    counts = {name: count for name, _, count in workspace_view_counts(tenant=tenant, membership=agent.membership)}

    assert counts == {
        view: min(workspace_view(tenant=tenant, membership=agent.membership, view=view).count(), cap)
        for view in AGENT_VIEWS
    }


def test_an_agent_in_no_team_sees_their_own_and_the_unassigned(tenant, teammate, mixed_conversations):
    counts = {name: count for name, _, count in workspace_view_counts(tenant=tenant, membership=teammate.membership)}
    page = selectors.workspace_page(tenant=tenant, membership=teammate.membership, filters=ListFilters(view="resolved"))

    assert (counts["mine"], counts["unassigned"], counts["teams"], counts["resolved"]) == (12, 6, 0, 18)
    assert len(page.conversations) == 18
