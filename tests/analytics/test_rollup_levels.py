"""Reports read the smallest rollup level that carries their filters (channel, team, agent, full): every scope
must give exactly the figures the full level gives, including a supervisor's "their agents or their teams"
read as team rows plus their agents' work in other teams."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics import reports
from analytics.models import RollupLevel
from analytics.reports import report_heatmap, report_table, report_trends, scope_for_member
from analytics.services import analytics_event_record
from channels_app.models import Channel
from customers.models import Tier
from tests.analytics.conftest import MONDAY, NEXT_MONDAY, local
from tests.analytics.test_report_scope import opened
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

SUNDAY = MONDAY + timedelta(days=6)
TRENDS = ("new", "resolved", "first_response_median", "resolution_p90", "sla_first_response", "backlog")


@pytest.fixture
def history(tenant, sms_inbox, email_inbox, agent, teammate, supervisor, clock):
    """Two teams; the agent (Billing) also answers a Sales conversation; one conversation has no team or agent."""
    billing, sales = TeamFactory(tenant=tenant, name="Billing"), TeamFactory(tenant=tenant, name="Sales")
    billing.members.add(agent.membership, supervisor.membership)
    sales.members.add(teammate.membership)
    rows = [
        (Channel.SMS, sms_inbox, MONDAY, 9, billing, agent, Tier.STANDARD, 120),
        (Channel.SMS, sms_inbox, MONDAY + timedelta(days=1), 14, sales, teammate, Tier.VIP, 45),
        (Channel.EMAIL, email_inbox, MONDAY + timedelta(days=2), 23, sales, agent, Tier.STANDARD, 3600),
        (Channel.EMAIL, email_inbox, MONDAY + timedelta(days=3), 8, billing, teammate, Tier.VIP, 900),
        (Channel.SMS, sms_inbox, SUNDAY, 22, None, None, Tier.STANDARD, None),
    ]
    for number, (channel, inbox, day, hour, team, assignee, tier, first_response) in enumerate(rows, start=1):
        conversation = opened(tenant, number, channel=channel, inbox=inbox, at=local(day, hour), team=team,
                              assignee=assignee, tier=tier, first_response_after=first_response)
        if assignee is not None:
            done = local(day, hour) + timedelta(hours=5)
            analytics_event_record(conversation=conversation, name="resolution", agent_id=assignee.pk,
                                   value_seconds=5 * 3600.0, business_seconds=3 * 3600.0, occurred_at=done)
            analytics_event_record(conversation=conversation, name="sla_met" if number % 2 else "sla_missed",
                                   agent_id=assignee.pk, occurred_at=done, data={"metric": "first_response"})
    clock.at(local(NEXT_MONDAY, 12))
    return {"billing": billing, "sales": sales}


def figures(scope) -> tuple:
    return (
        [(row.channel, row.values) for row in report_table(scope)],
        report_trends(scope, TRENDS),
        report_heatmap(scope),
    )


def test_every_scope_reads_its_own_level_and_agrees_with_the_full_rows(
    history, tenant_admin, supervisor, agent, teammate, monkeypatch
):
    billing, sales = history["billing"], history["sales"]
    days = {"start": MONDAY, "end": SUNDAY}
    scopes = {
        "tenant": (scope_for_member(tenant_admin.membership, **days), RollupLevel.CHANNEL),
        "sms": (scope_for_member(tenant_admin.membership, **days, channel=Channel.SMS), RollupLevel.CHANNEL),
        "team": (scope_for_member(tenant_admin.membership, **days, team_id=sales.pk), RollupLevel.TEAM),
        "agent filter": (scope_for_member(tenant_admin.membership, **days, agent_id=agent.pk), RollupLevel.AGENT),
        "supervisor": (scope_for_member(supervisor.membership, **days), RollupLevel.AGENT),
        "supervisor, other team": (scope_for_member(supervisor.membership, **days, team_id=sales.pk), RollupLevel.AGENT),
        "supervisor, e-mail": (scope_for_member(supervisor.membership, **days, channel=Channel.EMAIL), RollupLevel.AGENT),
        "agent's own": (scope_for_member(agent.membership, **days), RollupLevel.AGENT),
        "teammate's own, one team": (scope_for_member(teammate.membership, **days, team_id=billing.pk), RollupLevel.AGENT),
        "tier and team": (scope_for_member(tenant_admin.membership, **days, tier=Tier.VIP, team_id=sales.pk), RollupLevel.FULL),
    }
    own = {}
    for name, (scope, level) in scopes.items():
        assert reports._level_for(scope) == level, name
        own[name] = figures(scope)
    monkeypatch.setattr(reports, "_level_for", lambda scope: RollupLevel.FULL)
    for name, (scope, _level) in scopes.items():
        assert own[name] == figures(scope), name


def test_a_supervisor_sees_their_agents_work_in_other_teams_once(history, supervisor):
    """Billing's supervisor: Billing's two conversations, plus the Sales one their agent answered (counted once,
    though it is both "their agent" and, for the SLA, an event of that agent)."""
    overall = report_table(scope_for_member(supervisor.membership, start=MONDAY, end=SUNDAY))[-1].values
    assert (overall["resolved"], overall["sla_first_response"]) == (3, 2 / 3)
