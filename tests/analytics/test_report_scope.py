"""Who sees which figures, what the filters narrow, and the CSV exports cell by cell."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pytest

from analytics.reports import (
    ReportScope,
    ReportScopeError,
    report_conversations,
    report_heatmap,
    report_table,
    scope_for_member,
)
from analytics.rollups import bucket_value
from analytics.services import analytics_conversation_opened, analytics_event_record
from channels_app.models import Channel
from conversations.models import Conversation, Status
from customers.models import Tier
from tests.analytics.conftest import MONDAY, NEXT_MONDAY, local
from tests.factories import CustomerFactory, InboxFactory, TeamFactory

pytestmark = pytest.mark.django_db

SUNDAY = MONDAY + timedelta(days=6)  # the last day of the range
RANGE = {"start": MONDAY.isoformat(), "end": SUNDAY.isoformat()}
EXPORT = "/analytics/reports/export.csv"


def opened(tenant, number, *, channel, inbox, at, team=None, assignee=None, tier=Tier.STANDARD, name="",
           subject="", first_response_after=None):
    conversation = Conversation.objects.create(
        tenant=tenant, number=number, status=Status.OPEN, first_channel=channel, last_channel=channel,
        channels=[channel], first_inbox=inbox, team=team, assignee=assignee, subject=subject or f"Subject {number}",
        customer=CustomerFactory(tenant=tenant, name=name or f"Customer {number}", tier=tier),
        created_at=at, updated_at=at,
        first_response_at=at + timedelta(seconds=first_response_after) if first_response_after else None,
    )
    analytics_conversation_opened(conversation=conversation, at=at)
    if first_response_after:
        analytics_event_record(conversation=conversation, name="first_response", value_seconds=first_response_after,
                               occurred_at=conversation.first_response_at, agent_id=assignee.pk if assignee else None)
    return conversation


@pytest.fixture
def world(tenant, other_tenant, sms_inbox, email_inbox, agent, teammate, supervisor, outsider, clock):
    """Four conversations of ours (the fourth just after the range), one of another tenant."""
    billing, sales = TeamFactory(tenant=tenant, name="Billing"), TeamFactory(tenant=tenant, name="Sales")
    billing.members.add(agent.membership, supervisor.membership)
    sales.members.add(teammate.membership)
    conversations = {
        1: opened(tenant, 1, channel=Channel.SMS, inbox=sms_inbox, at=local(MONDAY, 9), team=billing, assignee=agent,
                  name='=HYPERLINK("http://x")', subject="-2 refunds", first_response_after=120),
        2: opened(tenant, 2, channel=Channel.SMS, inbox=sms_inbox, at=local(MONDAY, 10), team=sales,
                  assignee=teammate, tier=Tier.VIP),
        # 23:30 on the range's last day in New York (04:30 the next day in UTC): in.
        3: opened(tenant, 3, channel=Channel.EMAIL, inbox=email_inbox, at=local(SUNDAY, 23, 30), team=sales,
                  assignee=teammate, first_response_after=600),
        # 00:30 the day after, New York time: out.
        4: opened(tenant, 4, channel=Channel.EMAIL, inbox=email_inbox, at=local(NEXT_MONDAY, 0, 30), team=billing,
                  assignee=agent, tier=Tier.VIP),
    }
    their_team = TeamFactory(tenant=other_tenant, name="Their team")
    their_inbox = InboxFactory(tenant=other_tenant, channel=Channel.SMS, name="Their SMS", address="+15550199999")
    opened(other_tenant, 1, channel=Channel.SMS, inbox=their_inbox, at=local(MONDAY, 9), team=their_team,
           assignee=outsider, first_response_after=60)
    clock.at(local(NEXT_MONDAY, 12))
    return {"billing": billing, "sales": sales, "their_team": their_team, "their_inbox": their_inbox, **conversations}


def new_overall(scope: ReportScope) -> int:
    return report_table(scope)[-1].values["new"]


def numbers(scope: ReportScope, kpi: str = "new") -> list[int]:
    return sorted(c.number for c in report_conversations(scope, kpi))


# --- the date range ---------------------------------------------------------------------------------------


def test_the_range_is_the_tenants_days_23_30_local_on_the_last_day_is_in_00_30_the_next_day_is_out(
    world, tenant_admin
):
    scope = scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY)
    assert new_overall(scope) == 3
    assert numbers(scope) == [1, 2, 3]
    assert report_table(scope_for_member(tenant_admin.membership, start=SUNDAY, end=SUNDAY))[-1].values["new"] == 1
    assert numbers(scope_for_member(tenant_admin.membership, start=NEXT_MONDAY, end=NEXT_MONDAY)) == [4]
    sunday = report_heatmap(scope)[6]
    assert sunday[23] == 1 and sum(sunday) == 1  # Sunday 23:00 local, not Monday 04:00 UTC


# --- filters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("filters", "expected"), [
    ({"channel": Channel.SMS}, [1, 2]),
    ({"channel": Channel.EMAIL}, [3]),
    ({"inbox": "email_inbox"}, [3]),
    ({"inbox": "sms_inbox"}, [1, 2]),
    ({"team": "billing"}, [1]),
    ({"team": "sales"}, [2, 3]),
    ({"agent": "agent"}, [1]),
    ({"agent": "teammate"}, [2, 3]),
    ({"tier": Tier.VIP}, [2]),
    ({"tier": Tier.STANDARD, "team": "sales"}, [3]),
])
def test_each_filter_narrows_the_table_and_the_drill_down_alike(request, world, tenant_admin, filters, expected):
    arguments = {}
    for name, value in filters.items():
        if name == "inbox":
            arguments["inbox_id"] = request.getfixturevalue(value).pk
        elif name == "team":
            arguments["team_id"] = world[value].pk
        elif name == "agent":
            arguments["agent_id"] = request.getfixturevalue(value).pk
        else:
            arguments[name] = value
    scope = scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY, **arguments)
    assert new_overall(scope) == len(expected)
    assert numbers(scope) == expected


def test_a_filtered_duration_is_the_filtered_conversations_own(world, tenant_admin, agent, teammate):
    mine = report_table(scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY, agent_id=agent.pk))
    assert mine[-1].values["first_response_median"] == 120
    theirs = report_table(scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY, agent_id=teammate.pk))
    assert theirs[-1].values["first_response_median"] == 600


@pytest.mark.parametrize("filters", [
    {"team_id": "their_team"}, {"inbox_id": "their_inbox"}, {"agent_id": "outsider"},
])
def test_another_tenants_ids_are_refused_like_missing_ones(request, world, tenant_admin, filters):
    (name, key), = filters.items()
    foreign = world[key].pk if key in world else request.getfixturevalue(key).pk
    with pytest.raises(ReportScopeError, match="No such"):
        scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY, **{name: foreign})
    with pytest.raises(ReportScopeError, match="No such"):
        scope_for_member(tenant_admin.membership, start=MONDAY, end=SUNDAY, **{name: 987654})


@pytest.mark.parametrize("field", ["team", "inbox", "agent"])
def test_another_tenants_ids_in_the_query_are_a_form_error_and_a_400_never_their_data(
    client, world, tenant_admin, outsider, field
):
    foreign = {"team": world["their_team"].pk, "inbox": world["their_inbox"].pk, "agent": outsider.pk}[field]
    client.force_login(tenant_admin)
    page = client.get("/analytics/reports/", {**RANGE, field: foreign})
    assert page.status_code == 200
    assert field in page.context["form"].errors
    assert page.context["scope"] is None and "table" not in page.context
    assert client.get(EXPORT, {**RANGE, field: foreign, "kind": "table"}).status_code == 400
    drill = client.get("/analytics/reports/conversations/", {**RANGE, field: foreign, "kpi": "new"})
    assert drill.status_code == 200 and "page" not in drill.context


# --- who sees what ----------------------------------------------------------------------------------------


def test_an_agent_sees_only_their_own_figures(world, agent):
    scope = scope_for_member(agent.membership, start=MONDAY, end=NEXT_MONDAY)
    assert scope.visible_agent_ids == frozenset({agent.pk}) and scope.visible_team_ids == frozenset()
    assert numbers(scope) == [1, 4]
    assert [row.channel for row in report_table(scope)] == [Channel.EMAIL, Channel.SMS, ""]


def test_an_agent_asking_for_another_agent_gets_nothing_of_theirs(world, agent, teammate):
    """The contract: the filter is accepted (the teammate is of this tenant) but it only narrows what the
    agent may see, so the answer is empty rather than the teammate's figures."""
    scope = scope_for_member(agent.membership, start=MONDAY, end=SUNDAY, agent_id=teammate.pk)
    assert new_overall(scope) == 0
    assert numbers(scope) == []
    assert report_table(scope)[-1].values["first_response_median"] is None


def test_a_supervisor_sees_their_teams(world, supervisor, teammate):
    scope = scope_for_member(supervisor.membership, start=MONDAY, end=NEXT_MONDAY)
    assert scope.visible_team_ids == frozenset({world["billing"].pk})
    assert numbers(scope) == [1, 4]
    assert numbers(scope_for_member(supervisor.membership, start=MONDAY, end=NEXT_MONDAY, agent_id=teammate.pk)) == []


def test_an_admin_sees_the_tenant_and_another_tenants_admin_only_theirs(world, tenant_admin, outsider):
    assert numbers(scope_for_member(tenant_admin.membership, start=MONDAY, end=NEXT_MONDAY)) == [1, 2, 3, 4]
    theirs = scope_for_member(outsider.membership, start=MONDAY, end=NEXT_MONDAY)
    assert numbers(theirs) == [1]
    assert [c.tenant_id for c in report_conversations(theirs, "new")] == [outsider.membership.tenant_id]
    assert report_table(theirs)[-1].values["first_response_median"] == 60


# --- CSV exports ------------------------------------------------------------------------------------------


TABLE_HEADER = [
    "Channel", "New conversations", "Reopened", "Resolved", "First response, median (seconds)",
    "First response, 90th percentile (seconds)", "First response, median (business hours) (seconds)",
    "First response, 90th percentile (business hours) (seconds)", "Resolution time, median (seconds)",
    "Resolution time, 90th percentile (seconds)", "Resolution time, median (business hours) (seconds)",
    "Resolution time, 90th percentile (business hours) (seconds)", "First-contact resolution (share 0-1)",
    "Average handle time (seconds)", "CSAT, average score (1-5)", "CSAT response rate (share 0-1)",
    "SLA attainment, first response (share 0-1)", "SLA attainment, next response (share 0-1)",
    "SLA attainment, resolution (share 0-1)", "Backlog (open now)", "Backlog age, median (seconds)",
    "Queue wait, median (seconds)", "Queue wait, 90th percentile (seconds)", "Reopen rate (share 0-1)",
    "Cross-channel reopen rate (share 0-1)", "Channel switches per conversation (share 0-1)",
    "Context continuity (share 0-1)", "Agent occupancy (now) (share 0-1)", "Time online (seconds)",
]


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def table_row(label, new, first_response, backlog, backlog_age, presence=""):
    """A row of this history: only arrivals and first responses happened (24/7 business hours)."""
    fr_median, fr_p90 = first_response
    return [label, str(new), "0", "0", fr_median, fr_p90, fr_median, fr_p90, "", "", "", "", "", "", "", "", "", "",
            "", str(backlog), backlog_age, "", "", "", "", "0.0" if new else "", "", "", presence]


def bucketed(seconds: float) -> str:
    """A percentile over several values: the middle of the value's histogram bucket, as the CSV writes it."""
    return str(round(bucket_value(math.floor(math.log(seconds) / math.log(1.1)) + 1), 2))


def test_the_table_csv_has_the_header_one_row_per_channel_and_the_overall_exactly(client, world, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get(EXPORT, {**RANGE, "kind": "table"})
    assert response["Content-Disposition"] == f'attachment; filename="omnidesk-report-{MONDAY}-{SUNDAY}.csv"'
    # Backlog is now (Monday noon a week on), so it holds conversation 4 too: ages 7d 3h, 7d 2h | 12h 30m, 11h 30m.
    assert csv_rows(response) == [
        TABLE_HEADER,
        table_row("E-mail", 1, ("600.0", "600.0"), 2, "43200.0"),
        table_row("SMS", 2, ("120.0", "120.0"), 2, "613800.0"),
        table_row("Overall", 3, (bucketed(120), bucketed(600)), 4, "328500.0", presence="0.0"),
    ]


def test_an_agents_table_csv_holds_only_their_figures(client, world, agent):
    client.force_login(agent)
    rows = csv_rows(client.get(EXPORT, {**RANGE, "kind": "table"}))
    # Their conversation 1 in the range; their conversation 4 (opened after it) is in the backlog now.
    assert rows[1:] == [
        table_row("E-mail", 0, ("", ""), 1, "41400.0"),
        table_row("SMS", 1, ("120.0", "120.0"), 1, "615600.0"),
        table_row("Overall", 1, ("120.0", "120.0"), 2, "328500.0", presence="0.0"),
    ]


CONVERSATION_HEADER = [
    "Number", "Link", "Customer", "Tier", "Subject", "Status", "Priority", "First channel", "Current channel",
    "Channels used", "Team", "Assignee", "Opened", "First response", "Resolved", "Reopened (times)", "Tags",
]


def conversation_row(number, customer, tier, subject, channel, team, assignee, opened_at, first_response_at):
    return [str(number), f"http://testserver/app/conversations/{number}/", customer, tier, subject, "open", "normal",
            channel, channel, channel, team, assignee, opened_at, first_response_at, "", "0", ""]


def test_the_conversations_csv_has_one_formula_safe_row_per_conversation(client, world, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get(EXPORT, {**RANGE, "kind": "conversations", "kpi": "new"})
    assert response["Content-Disposition"] == (
        f'attachment; filename="omnidesk-new-conversations-{MONDAY}-{SUNDAY}.csv"')
    assert csv_rows(response) == [
        CONVERSATION_HEADER,
        conversation_row(3, "Customer 3", "standard", "Subject 3", "email", "Sales", "teammate@acme.test",
                         "2026-02-08T23:30:00-05:00", "2026-02-08T23:40:00-05:00"),
        conversation_row(2, "Customer 2", "vip", "Subject 2", "sms", "Sales", "teammate@acme.test",
                         "2026-02-02T10:00:00-05:00", ""),
        conversation_row(1, "'=HYPERLINK(\"http://x\")", "standard", "'-2 refunds", "sms", "Billing",
                         "agent@acme.test", "2026-02-02T09:00:00-05:00", "2026-02-02T09:02:00-05:00"),
    ]


def test_an_agents_conversations_csv_holds_only_their_rows(client, world, agent):
    client.force_login(agent)
    rows = csv_rows(client.get(EXPORT, {**RANGE, "kind": "conversations", "kpi": "new"}))
    assert [row[0] for row in rows] == ["Number", "1"]
    asked_for_teammate = csv_rows(client.get(EXPORT, {**RANGE, "kind": "conversations", "kpi": "new",
                                                      "agent": world[2].assignee_id}))
    assert asked_for_teammate == [CONVERSATION_HEADER]
