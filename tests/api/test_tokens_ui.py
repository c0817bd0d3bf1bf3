"""API tokens made and revoked by people: the Django admin (tenant admins) and the workspace profile page."""

from __future__ import annotations

import re

from rest_framework.test import APIClient

from customers.models import ApiToken, AuditLog
from customers.services import api_token_create, api_token_hash


def me_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/me/").status_code


def shown_key(html: str) -> str:
    return re.search(r"(od_[A-Za-z0-9_-]{20,})", html).group(1)


# --- admin ---


def test_a_tenant_admin_creates_a_token_in_admin_and_sees_the_key_once(client, tenant, tenant_admin, agent):
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/apitoken/add/", {"membership": agent.membership.pk, "name": "CRM sync"}, follow=True
    )

    key = shown_key(response.content.decode())
    token = ApiToken.objects.get(key_hash=api_token_hash(key))
    assert (token.tenant_id, token.membership_id, token.name) == (tenant.pk, agent.membership.pk, "CRM sync")
    assert me_status(key) == 200
    assert key not in client.get("/admin/customers/apitoken/").content.decode()
    assert key not in client.get(f"/admin/customers/apitoken/{token.pk}/change/").content.decode()
    assert AuditLog.objects.filter(action="api_token.create", target_id=str(token.pk)).exists()


def test_the_admin_list_shows_prefix_owner_and_dates_but_not_other_tenants(client, tenant_admin, agent, outsider):
    mine, _ = api_token_create(membership=agent.membership, name="Billing bot")
    theirs, _ = api_token_create(membership=outsider.membership, name="Globex bot")
    client.force_login(tenant_admin)

    html = client.get("/admin/customers/apitoken/").content.decode()

    assert "Billing bot" in html and mine.prefix in html and "agent@acme.test" in html
    assert "Globex bot" not in html
    assert client.get(f"/admin/customers/apitoken/{theirs.pk}/change/").status_code in (302, 403, 404)


def test_an_admin_cannot_make_a_token_for_a_seat_in_another_tenant(client, tenant_admin, outsider):
    client.force_login(tenant_admin)

    response = client.post("/admin/customers/apitoken/add/", {"membership": outsider.membership.pk, "name": "sneaky"})

    assert response.status_code == 200
    assert not ApiToken.objects.filter(name="sneaky").exists()


def test_the_revoke_action_stops_the_selected_tokens(client, tenant_admin, agent):
    token, key = api_token_create(membership=agent.membership, name="Old script")
    client.force_login(tenant_admin)

    client.post("/admin/customers/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert me_status(key) == 401
    assert AuditLog.objects.filter(action="api_token.revoke", target_id=str(token.pk)).exists()


# --- profile page ---


def test_the_top_bar_links_to_the_profile_page(client, agent):
    client.force_login(agent)

    assert 'href="/app/profile/"' in client.get("/app/").content.decode()


def test_a_member_creates_a_token_on_the_profile_page_and_it_works(client, agent):
    client.force_login(agent)

    response = client.post("/app/profile/", {"name": "My script"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = shown_key(response.content.decode())
    assert me_status(key) == 200
    token = ApiToken.objects.get(key_hash=api_token_hash(key))
    assert token.membership == agent.membership
    page = client.get("/app/profile/").content.decode()
    assert "My script" in page and token.prefix in page and key not in page


def test_a_token_needs_a_name(client, agent):
    client.force_login(agent)

    response = client.post("/app/profile/", {"name": "  "})

    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_profile_page_lists_only_ones_own_tokens(client, agent, teammate):
    api_token_create(membership=agent.membership, name="Mine")
    api_token_create(membership=teammate.membership, name="Teammate's")
    client.force_login(agent)

    page = client.get("/app/profile/").content.decode()

    assert "Mine" in page
    assert "Teammate&#x27;s" not in page and "Teammate's" not in page


def test_a_member_revokes_their_own_token(client, agent):
    token, key = api_token_create(membership=agent.membership, name="Mine")
    client.force_login(agent)

    response = client.post(f"/app/profile/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    assert me_status(key) == 401


def test_nobody_revokes_someone_elses_token_from_the_profile_page(client, agent, teammate, outsider):
    teammates, teammate_key = api_token_create(membership=teammate.membership, name="Theirs")
    outsiders, outsider_key = api_token_create(membership=outsider.membership, name="Globex")
    client.force_login(agent)

    assert client.post(f"/app/profile/tokens/{teammates.pk}/revoke/").status_code == 404
    assert client.post(f"/app/profile/tokens/{outsiders.pk}/revoke/").status_code == 404
    assert me_status(teammate_key) == 200
    assert me_status(outsider_key) == 200


def test_the_profile_page_needs_a_sign_in(client, db):
    assert client.get("/app/profile/").status_code == 302
