"""API authentication: a token is the seat it was made for; a bad, revoked or missing one gets a clear 401."""

from __future__ import annotations

from rest_framework.test import APIClient

from customers.models import ApiToken
from customers.services import api_token_create, api_token_hash, api_token_revoke


def test_a_token_acts_as_its_seat(agent_api, agent, tenant):
    response = agent_api.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json() == {
        "user_id": agent.pk, "email": agent.email, "name": agent.membership.name, "role": "agent", "tenant": tenant.slug,
    }


def test_the_key_is_stored_only_as_its_hash_and_shown_once(agent):
    token, key = api_token_create(membership=agent.membership, name="CRM sync")

    stored = ApiToken.objects.get(pk=token.pk)
    assert key not in (stored.key_hash, stored.prefix, stored.name)
    assert stored.key_hash == api_token_hash(key)
    assert key.startswith(stored.prefix)


def test_no_token_a_wrong_one_and_a_revoked_one_are_401_with_a_reason(agent, tenant):
    anonymous = APIClient()
    assert anonymous.get("/api/v1/me/").status_code in (401, 403)

    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token od_not-a-real-key")
    response = wrong.get("/api/v1/me/")
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]

    token, key = api_token_create(membership=agent.membership, name="old")
    api_token_revoke(tenant=tenant, token=token)
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert revoked.get("/api/v1/me/").status_code == 401


def test_a_tenant_in_the_request_is_never_trusted(agent_api, tenant, other_tenant):
    response = agent_api.get("/api/v1/me/", {"tenant": other_tenant.slug}, HTTP_X_TENANT=other_tenant.slug)

    assert response.json()["tenant"] == tenant.slug


def test_the_schema_and_the_docs_are_served(client):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr.net" not in docs.content  # served from our static files
