"""The reports pages: scope per role, filters, bad input, drill-downs matching the numbers, CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analytics.reports import KPI_NAMES, scope_for_member
from analytics.services import analytics_conversation_opened, analytics_event_record
from analytics.views import KPI_DEFINITIONS, csv_safe
from conversations.models import Conversation, Status
from tests.factories import CustomerFactory, TeamFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()
DAY = TODAY - timedelta(days=3)
REPORTS = "/analytics/reports/"


def opened(tenant, number, channel, hour, *, assignee=None, team=None, name="", day=DAY):
    at = datetime.combine(day, time(hour, 0), tzinfo=ZoneInfo(tenant.time_zone))  # the tenant's clock
    conversation = Conversation.objects.create(
        tenant=tenant, number=number, status=Status.OPEN, first_channel=channel, last_channel=channel,
        channels=[channel], customer=CustomerFactory(tenant=tenant, name=name or f"Customer {number}"),
        assignee=assignee, team=team, created_at=at, updated_at=at, subject=f"Subject {number}",
    )
    analytics_conversation_opened(conversation=conversation, at=at)
    return conversation


@pytest.fixture
def history(tenant, agent, teammate, supervisor):
    billing, sales = TeamFactory(tenant=tenant, name="Billing"), TeamFactory(tenant=tenant, name="Sales")
    billing.members.add(agent.membership, supervisor.membership)
    sales.members.add(teammate.membership)
    first = opened(tenant, 1, "sms", 9, assignee=agent, team=billing, name="=HYPERLINK(\"http://x\")")
    analytics_event_record(conversation=first, name="first_response", value_seconds=120,
                           occurred_at=first.created_at + timedelta(seconds=120))
    opened(tenant, 2, "sms", 9, assignee=teammate, team=sales)
    opened(tenant, 3, "email", 14, assignee=teammate, team=sales)
    return {"billing": billing, "sales": sales}


def table(response) -> dict[str, list[str]]:
    """The comparison table as {kpi: [cell texts]} and the column names under ''."""
    rows = {"": response.context["columns"]}
    for row in response.context["table"]:
        rows[row["kpi"]] = [cell["text"] for cell in row["cells"]]
    return rows


def params(**extra):
    return {"start": (TODAY - timedelta(days=6)).isoformat(), "end": TODAY.isoformat(), **extra}


def test_every_kpi_has_a_definition():
    assert set(KPI_NAMES) <= set(KPI_DEFINITIONS)


def test_an_admin_sees_every_channel_and_the_overall_column(client, history, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get(REPORTS, params())
    assert response.status_code == 200
    rows = table(response)
    assert rows[""] == ["E-mail", "SMS", "Overall"]
    assert rows["new"] == ["1", "2", "3"]
    body = response.content.decode()
    assert "/analytics/reports/conversations/?" in body and "kind=table" in body
    assert response.context["heatmap"][DAY.weekday()]["cells"][9]["count"] == 2


def test_an_agent_sees_only_their_own_figures(client, history, agent):
    client.force_login(agent)
    rows = table(client.get(REPORTS, params()))
    assert rows["new"][-1] == "1"


def test_a_supervisors_filter_for_another_teams_agent_shows_nothing_of_it(client, history, supervisor, teammate):
    client.force_login(supervisor)
    response = client.get(REPORTS, params(agent=teammate.pk))
    assert response.status_code == 200
    assert table(response)["new"][-1] == "0"
    drill = client.get("/analytics/reports/conversations/", params(agent=teammate.pk, kpi="new"))
    assert drill.context["page"].paginator.count == 0


def test_an_outsider_cannot_name_our_team_and_sees_none_of_our_figures(client, history, outsider):
    client.force_login(outsider)
    response = client.get(REPORTS, params(team=history["billing"].pk))
    assert response.status_code == 200
    assert "team" in response.context["form"].errors
    assert client.get("/analytics/reports/export.csv", params(team=history["billing"].pk)).status_code == 400
    assert table(client.get(REPORTS, params()))["new"][-1] == "0"


@pytest.mark.parametrize("bad", [
    {"start": "2026-03-10", "end": "2026-03-01"},
    {"start": "2024-01-01", "end": "2025-06-01"},
    {"channel": "pigeon"},
    {"start": "2026-13-45"},
    {"inbox": "abc"},
])
def test_bad_parameters_are_a_form_error_on_the_page_and_a_400_for_the_csv(client, history, tenant_admin, bad):
    client.force_login(tenant_admin)
    response = client.get(REPORTS, bad)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "form-errors" in response.content.decode()
    assert client.get("/analytics/reports/export.csv", {**bad, "kind": "table"}).status_code == 400
    assert client.get("/analytics/reports/conversations/", {**bad, "kpi": "new"}).status_code == 200


def test_the_drill_down_lists_the_conversations_behind_the_number(client, history, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get("/analytics/reports/conversations/", params(kpi="new", channel="sms"))
    numbers = [c.number for c in response.context["page"]]
    assert sorted(numbers) == [1, 2]
    assert "/app/conversations/1/" in response.content.decode()
    heat = client.get("/analytics/reports/conversations/",
                      params(kpi="new", weekday=DAY.isoweekday(), hour=14))
    assert heat.status_code == 200, heat.context["form"].errors
    assert [c.number for c in heat.context["page"]] == [3]
    assert client.get("/analytics/reports/export.csv", params(kind="conversations", kpi="nope")).status_code == 400


def test_a_large_drill_down_counts_up_to_its_cap_and_says_so(client, history, tenant_admin, monkeypatch):
    monkeypatch.setattr("analytics.views.DRILL_COUNT_CAP", 2)
    monkeypatch.setattr("analytics.views.DRILL_PAGE_SIZE", 1)
    client.force_login(tenant_admin)

    capped = client.get("/analytics/reports/conversations/", params(kpi="new"))  # 3 new conversations
    assert (capped.context["page"].paginator.count, capped.context["page"].paginator.capped) == (2, True)
    assert "New conversations: 2+ conversations" in capped.content.decode()
    assert "Page 1 of 2+" in capped.content.decode()

    exact = client.get("/analytics/reports/conversations/", params(kpi="new", channel="email"))  # 1
    assert (exact.context["page"].paginator.count, exact.context["page"].paginator.capped) == (1, False)
    assert "+ conversation" not in exact.content.decode()


def test_the_table_csv_has_one_row_per_channel_and_the_overall(client, history, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get("/analytics/reports/export.csv", params(kind="table"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    assert header[:4] == ["Channel", "New conversations", "Reopened", "Resolved"]
    assert [row[:4] for row in rows[1:]] == [["E-mail", "1", "0", "0"], ["SMS", "2", "0", "0"], ["Overall", "3", "0", "0"]]


def test_the_conversations_csv_is_formula_safe(client, history, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get("/analytics/reports/export.csv", params(kind="conversations", kpi="new", channel="sms"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["Number", "Link", "Customer"]
    by_number = {row[0]: row for row in rows[1:]}
    assert set(by_number) == {"1", "2"}
    assert by_number["1"][1] == "http://testserver/app/conversations/1/"
    assert by_number["1"][2] == "'=HYPERLINK(\"http://x\")"
    assert by_number["1"][9] == "sms"


def test_csv_cells_starting_like_a_formula_get_an_apostrophe():
    assert [csv_safe(v) for v in ["=1+2", "+1", "-1", "@SUM(A1)", "ok", -5, None]] == [
        "'=1+2", "'+1", "'-1", "'@SUM(A1)", "ok", -5, ""]


def test_anonymous_and_seatless_visitors_are_kept_out(client):
    assert client.get(REPORTS).status_code == 302
    assert client.get("/analytics/reports/export.csv").status_code == 302


def test_members_get_the_analytics_link_in_the_header(client, agent):
    client.force_login(agent)
    assert 'href="/analytics/"' in client.get("/app/").content.decode()


def test_the_scope_matches_the_member(history, supervisor):
    scope = scope_for_member(supervisor.membership)
    assert scope.visible_team_ids == frozenset({history["billing"].pk})
