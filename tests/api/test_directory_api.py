"""The directory endpoints: inboxes, teams, agents and presence, a conversation's SLA state, and the KPIs."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.models import Priority
from conversations.services import conversation_assign, conversation_open
from routing.models import AgentProfile, Presence, SlaMetric, SlaPolicy, SlaTarget
from routing.services import agent_profile_for
from routing.sla import sla_apply
from tests.factories import CustomerFactory, InboxFactory, TeamFactory

# --- inboxes ---


def test_members_list_inboxes_without_any_secret(agent_api, tenant):
    inbox = InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS line", address="+15005550006")
    inbox.set_secrets(twilio_auth_token="very-secret-token-123")
    inbox.save()

    response = agent_api.get("/api/v1/inboxes/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["name"] == "SMS line" and row["channel"] == "sms" and row["address"] == "+15005550006"
    assert row["key"] is None and row["webhook_url"] is None
    assert "very-secret-token-123" not in response.content.decode()
    assert inbox.key not in response.content.decode()


def test_admins_see_the_webhook_url_to_configure_but_still_no_secret(admin_api, tenant):
    inbox = InboxFactory(tenant=tenant, channel=Channel.SMS)
    inbox.set_secrets(twilio_auth_token="very-secret-token-123")
    inbox.save()

    row = admin_api.get(f"/api/v1/inboxes/{inbox.pk}/").json()

    assert row["webhook_url"] == f"http://testserver/hooks/twilio/{inbox.key}/messages/"
    assert row["key"] == inbox.key
    assert "very-secret-token-123" not in str(row)


def test_another_tenants_inbox_is_a_404(agent_api, other_tenant):
    theirs = InboxFactory(tenant=other_tenant)

    response = agent_api.get(f"/api/v1/inboxes/{theirs.pk}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert agent_api.get("/api/v1/inboxes/").json()["results"] == []


def test_an_inbox_id_too_big_for_the_database_is_a_404(agent_api):
    assert agent_api.get(f"/api/v1/inboxes/{10**30}/").status_code == 404


# --- teams ---


def test_teams_list_with_their_member_ids(agent_api, tenant, agent, teammate):
    team = TeamFactory(tenant=tenant, name="Support")
    team.members.add(agent.membership, teammate.membership)

    response = agent_api.get("/api/v1/teams/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["name"] == "Support"
    assert row["member_ids"] == sorted([agent.membership.pk, teammate.membership.pk])


def test_teams_are_paginated_by_cursor(agent_api, tenant):
    for name in ("A", "B", "C"):
        TeamFactory(tenant=tenant, name=name)

    first = agent_api.get("/api/v1/teams/?page_size=2").json()
    second = agent_api.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert {r["name"] for r in first["results"] + second["results"]} == {"A", "B", "C"}


def test_another_tenants_team_is_a_404(agent_api, other_tenant):
    theirs = TeamFactory(tenant=other_tenant)

    assert agent_api.get(f"/api/v1/teams/{theirs.pk}/").status_code == 404


# --- agents ---


def test_supervisors_see_every_agent_with_presence_capacity_and_load(supervisor_api, tenant, agent, teammate, sms_inbox):
    profile = agent_profile_for(tenant=tenant, membership=agent.membership)
    AgentProfile.objects.filter(pk=profile.pk).update(presence=Presence.ONLINE, capacity={"sms": 4, "email": 2})
    conversation = conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS, inbox=sms_inbox)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent)

    rows = {row["email"]: row for row in supervisor_api.get("/api/v1/agents/").json()["results"]}

    assert {"agent@acme.test", "teammate@acme.test", "supervisor@acme.test"} <= set(rows)
    me = rows["agent@acme.test"]
    assert me["id"] == agent.membership.pk and me["user_id"] == agent.pk and me["role"] == "agent"
    assert me["presence"] == "online"
    assert me["capacity"] == {"sms": 4, "email": 2}
    assert me["load"] == {"sms": 1}
    assert rows["teammate@acme.test"]["presence"] == "offline" and rows["teammate@acme.test"]["load"] == {}


def test_agents_see_themselves_and_the_people_of_their_teams_only(agent_api, tenant, agent, teammate, supervisor):
    team = TeamFactory(tenant=tenant)
    team.members.add(agent.membership, teammate.membership)

    emails = {row["email"] for row in agent_api.get("/api/v1/agents/").json()["results"]}

    assert emails == {"agent@acme.test", "teammate@acme.test"}


def test_no_agent_of_another_tenant_is_listed(admin_api, outsider):
    emails = {row["email"] for row in admin_api.get("/api/v1/agents/").json()["results"]}

    assert "admin@globex.test" not in emails


def test_an_agent_sets_their_own_presence(agent_api, tenant, agent):
    response = agent_api.patch("/api/v1/agents/me/presence/", {"presence": "away"}, format="json")

    assert response.status_code == 200
    assert response.json()["presence"] == "away" and response.json()["id"] == agent.membership.pk
    assert AgentProfile.objects.for_tenant(tenant).get(membership=agent.membership).presence == "away"


def test_an_unknown_presence_is_a_400_that_says_why(agent_api):
    response = agent_api.patch("/api/v1/agents/me/presence/", {"presence": "asleep"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("presence:")
    assert "presence" in response.json()["errors"]


# --- SLA state ---


def sla_conversation(tenant, *, opened_ago: timedelta, first_response_seconds: int):
    policy = SlaPolicy.objects.create(tenant=tenant, name="Standard")
    SlaTarget.objects.create(
        tenant=tenant, policy=policy, priority=Priority.NORMAL, metric=SlaMetric.FIRST_RESPONSE,
        seconds=first_response_seconds, business_hours=False,
    )
    conversation = conversation_open(
        tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS, at=timezone.now() - opened_ago
    )
    sla_apply(conversation=conversation)
    return policy, conversation


def test_the_sla_state_gives_the_policy_and_due_time(agent_api, tenant):
    policy, conversation = sla_conversation(tenant, opened_ago=timedelta(minutes=5), first_response_seconds=3600)
    conversation.refresh_from_db()

    response = agent_api.get(f"/api/v1/conversations/{conversation.number}/sla/")

    assert response.status_code == 200
    body = response.json()
    assert body["number"] == conversation.number
    assert body["policy"] == {"id": policy.pk, "name": "Standard"}
    assert body["paused"] is False
    [first] = body["metrics"]
    assert first["metric"] == "first_response" and first["running"] is True
    assert first["due_at"].startswith(conversation.first_response_due_at.isoformat()[:19])
    assert (first["at_risk"], first["breached"], first["outcome"]) == (False, False, None)


def test_an_overdue_conversation_is_at_risk_and_breached(agent_api, tenant):
    _, conversation = sla_conversation(tenant, opened_ago=timedelta(hours=2), first_response_seconds=1800)

    [first] = agent_api.get(f"/api/v1/conversations/{conversation.number}/sla/").json()["metrics"]

    assert first["at_risk"] is True and first["breached"] is True


def test_a_conversation_without_a_policy_has_no_metrics(agent_api, tenant):
    conversation = conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS)

    body = agent_api.get(f"/api/v1/conversations/{conversation.number}/sla/").json()

    assert body["policy"] is None and body["metrics"] == []


def test_the_sla_of_a_conversation_the_agent_may_not_see_is_a_404(agent_api, tenant, teammate):
    other_team = TeamFactory(tenant=tenant)
    conversation = conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate, team=other_team)

    assert agent_api.get(f"/api/v1/conversations/{conversation.number}/sla/").status_code == 404


def test_the_sla_of_another_tenants_conversation_is_a_404(outsider_api, tenant):
    conversation = conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS)

    assert outsider_api.get(f"/api/v1/conversations/{conversation.number}/sla/").status_code == 404


# --- KPIs ---


def event(tenant, name, value_seconds=None, at=None):
    return AnalyticsEvent.objects.create(tenant=tenant, name=name, value_seconds=value_seconds, occurred_at=at or timezone.now())


def test_kpis_give_medians_percentiles_volume_and_sla_attainment(supervisor_api, tenant, other_tenant):
    for seconds in (60, 120, 180, 240, 1000):
        event(tenant, EventName.FIRST_RESPONSE, seconds)
    event(tenant, EventName.RESOLUTION, 3600)
    event(tenant, EventName.REOPEN)
    for name in (EventName.SLA_MET, EventName.SLA_MET, EventName.SLA_MET, EventName.SLA_MISSED):
        event(tenant, name)
    event(tenant, EventName.FIRST_RESPONSE, 99999, at=timezone.now() - timedelta(days=30))  # outside the range
    event(other_tenant, EventName.FIRST_RESPONSE, 5)
    conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS)

    response = supervisor_api.get("/api/v1/kpis/")

    assert response.status_code == 200
    body = response.json()
    assert body["first_response"] == {"count": 5, "median_seconds": 180.0, "p90_seconds": 696.0}  # interpolated: 240 + 0.6 * 760
    assert body["resolution"] == {"count": 1, "median_seconds": 3600.0, "p90_seconds": 3600.0}
    assert body["volume"] == {"conversations_opened": 1, "resolutions": 1, "reopens": 1}
    assert body["sla"] == {"met": 3, "missed": 1, "attainment": 0.75}


def test_kpis_of_an_empty_range_are_zero_and_null(supervisor_api):
    body = supervisor_api.get("/api/v1/kpis/?since=2020-01-01&until=2020-01-31").json()

    assert body["since"] == "2020-01-01" and body["until"] == "2020-01-31"
    assert body["first_response"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert body["sla"]["attainment"] is None


def test_kpis_refuse_a_backwards_range(supervisor_api):
    response = supervisor_api.get("/api/v1/kpis/?since=2020-02-01&until=2020-01-01")

    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_kpis_need_a_supervisor(agent_api):
    response = agent_api.get("/api/v1/kpis/")

    assert response.status_code == 403
    assert response.json() == {"detail": "This needs the supervisor role."}


# --- query counts ---


def queries_for(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # the token's last_used_at write happens on the first request only
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_agent_and_team_lists_cost_the_same_queries_for_many_people(supervisor_api, tenant):
    from tests.conftest import seated_user

    team = TeamFactory(tenant=tenant)
    team.members.add(seated_user(tenant, "agent", "a1@acme.test").membership)
    few = (queries_for(supervisor_api, "/api/v1/agents/"), queries_for(supervisor_api, "/api/v1/teams/"))
    for n in range(2, 8):
        member = seated_user(tenant, "agent", f"a{n}@acme.test").membership
        agent_profile_for(tenant=tenant, membership=member)
        TeamFactory(tenant=tenant).members.add(member)

    many = (queries_for(supervisor_api, "/api/v1/agents/"), queries_for(supervisor_api, "/api/v1/teams/"))

    assert many == few
