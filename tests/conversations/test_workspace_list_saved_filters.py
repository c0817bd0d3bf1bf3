"""Saved personal filters: a member names the list as it is, finds it in the left nav, deletes it."""

from __future__ import annotations

from conversations.models import SavedFilter
from tests.factories import TeamFactory


def test_an_agent_saves_the_current_list_and_finds_it_in_the_nav(client, tenant, agent):
    billing = TeamFactory(tenant=tenant, name="Billing")
    client.force_login(agent)

    response = client.post("/app/filters/", {
        "name": "  Urgent   billing ", "view": "unassigned", "team": billing.pk, "priority": "urgent", "sort": "priority",
        "channel": "carrier-pigeon",
    })
    page = client.get("/app/")

    query = f"view=unassigned&team={billing.pk}&priority=urgent&sort=priority"
    assert response.status_code == 302 and response["Location"] == f"/app/?{query}"
    assert page.context["saved_filters"] == [(SavedFilter.objects.get().pk, "Urgent billing", query)]
    assert f'href="/app/?{query.replace("&", "&amp;")}">Urgent billing</a>' in page.content.decode()


def test_saving_under_the_same_name_replaces_the_filter(client, tenant, agent):
    client.force_login(agent)

    client.post("/app/filters/", {"name": "Mine", "view": "mine"})
    client.post("/app/filters/", {"name": "Mine", "view": "pending"})

    assert list(SavedFilter.objects.values_list("name", "query")) == [("Mine", "view=pending")]


def test_a_filter_needs_a_name(client, tenant, agent):
    client.force_login(agent)

    client.post("/app/filters/", {"name": "   ", "view": "mine"}, follow=True)

    assert not SavedFilter.objects.exists()


def test_saved_filters_belong_to_their_member(client, tenant, agent, teammate, outsider):
    client.force_login(agent)
    client.post("/app/filters/", {"name": "Pending", "view": "pending"})
    saved = SavedFilter.objects.get()

    client.force_login(teammate)
    teammates_nav = client.get("/app/").context["saved_filters"]
    teammates_delete = client.post(f"/app/filters/{saved.pk}/delete/")
    client.force_login(outsider)
    outsiders_delete = client.post(f"/app/filters/{saved.pk}/delete/")
    client.force_login(agent)
    own_delete = client.post(f"/app/filters/{saved.pk}/delete/")

    assert teammates_nav == []
    assert (teammates_delete.status_code, outsiders_delete.status_code, own_delete.status_code) == (404, 404, 302)
    assert not SavedFilter.objects.exists()


def test_deleting_takes_a_post(client, tenant, agent):
    client.force_login(agent)
    client.post("/app/filters/", {"name": "Pending", "view": "pending"})

    response = client.get(f"/app/filters/{SavedFilter.objects.get().pk}/delete/")

    assert response.status_code == 405
    assert SavedFilter.objects.count() == 1
