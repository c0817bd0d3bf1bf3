"""Teammates' presence in the workspace: who is online is visible to the people who work with them."""

from __future__ import annotations

from routing.services import agent_set_presence
from tests.conftest import seated_user
from tests.factories import TeamFactory


def presence_shown(client, user) -> dict[str, str]:
    client.force_login(user)
    return {person["name"]: person["presence"] for person in client.get("/app/").context["teammates"]}


def test_an_agent_sees_the_presence_of_their_teams_people_only(client, tenant, other_tenant, agent, teammate):
    support, billing = TeamFactory(tenant=tenant, name="Support"), TeamFactory(tenant=tenant, name="Billing")
    support.members.add(agent.membership, teammate.membership)
    stranger = seated_user(tenant, "agent", "stranger@acme.test")
    billing.members.add(stranger.membership)
    elsewhere = seated_user(other_tenant, "agent", "someone@globex.test")
    agent_set_presence(tenant=tenant, membership=teammate.membership, presence="online")
    agent_set_presence(tenant=other_tenant, membership=elsewhere.membership, presence="online")

    shown = presence_shown(client, agent)

    assert shown == {teammate.membership.name: "online"}


def test_supervisors_see_everyone_in_the_tenant_online_first(client, tenant, agent, teammate, supervisor):
    agent_set_presence(tenant=tenant, membership=teammate.membership, presence="away")
    agent_set_presence(tenant=tenant, membership=agent.membership, presence="online")
    client.force_login(supervisor)

    people = client.get("/app/").context["teammates"]

    assert [(p["name"], p["presence"]) for p in people] == [
        (agent.membership.name, "online"), (teammate.membership.name, "away"),
    ]
    assert "presence-online" in client.get("/app/").content.decode()
