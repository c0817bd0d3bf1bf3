"""Browser softphone tokens (/app/voice/…): only for a signed-in agent, for their own Client identity, on their
tenant's inbox."""

from __future__ import annotations

import jwt
import pytest

from .conftest import ACCOUNT_SID, hook, online_agent, voice_inbox

pytestmark = pytest.mark.django_db

API_KEY_SID = "SK" + "c" * 32
API_KEY_SECRET = "api-key-secret-acme-0123456789abcdef"
APP_SID = "AP" + "d" * 32


def token_url(inbox) -> str:
    return f"/app/voice/inboxes/{inbox.key}/token/"


@pytest.fixture
def softphone_inbox(tenant):
    inbox = voice_inbox(tenant, api_key_sid=API_KEY_SID, twiml_app_sid=APP_SID)
    inbox.set_secrets(twilio_api_key_secret=API_KEY_SECRET)
    inbox.save()
    return inbox


def test_a_signed_in_agent_gets_a_voice_token_for_their_identity(client, tenant, softphone_inbox):
    profile = online_agent(tenant, "soft@acme.test", client_identity="agent-soft")
    client.force_login(profile.membership.user)
    response = client.post(token_url(softphone_inbox))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert (body["identity"], body["expires_in"]) == ("agent-soft", 3600)
    claims = jwt.decode(body["token"], API_KEY_SECRET, algorithms=["HS256"])
    assert (claims["iss"], claims["sub"]) == (API_KEY_SID, ACCOUNT_SID)
    assert claims["grants"]["identity"] == "agent-soft"
    assert claims["grants"]["voice"] == {"incoming": {"allow": True}, "outgoing": {"application_sid": APP_SID}}


def test_anonymous_visitors_get_no_token(client, softphone_inbox):
    assert client.post(token_url(softphone_inbox)).status_code == 401


def test_only_post_is_allowed(client, tenant, softphone_inbox):
    client.force_login(online_agent(tenant, "soft@acme.test", client_identity="agent-soft").membership.user)
    assert client.get(token_url(softphone_inbox)).status_code == 405


def test_another_tenants_inbox_is_a_404(client, outsider, softphone_inbox):
    client.force_login(outsider)
    assert client.post(token_url(softphone_inbox)).status_code == 404


def test_an_agent_without_a_client_identity_is_told_what_to_set(client, tenant, softphone_inbox):
    client.force_login(online_agent(tenant, "phone@acme.test", phone="+12025550001").membership.user)
    response = client.post(token_url(softphone_inbox))
    assert response.status_code == 409
    assert "Client identity" in response.json()["detail"]


def test_an_inbox_without_an_api_key_is_told_what_to_set(client, tenant):
    inbox = voice_inbox(tenant)
    client.force_login(online_agent(tenant, "soft@acme.test", client_identity="agent-soft").membership.user)
    response = client.post(token_url(inbox))
    assert response.status_code == 409
    assert "API key" in response.json()["detail"]


def test_the_token_needs_the_csrf_token_of_the_session(tenant, softphone_inbox):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(online_agent(tenant, "soft@acme.test", client_identity="agent-soft").membership.user)
    assert csrf_client.post(token_url(softphone_inbox)).status_code == 403


def test_the_token_lives_on_the_agents_side_not_under_the_twilio_hooks(client, tenant, softphone_inbox):
    client.force_login(online_agent(tenant, "soft@acme.test", client_identity="agent-soft").membership.user)
    assert client.post(hook(softphone_inbox, "token/")).status_code == 404
    assert client.post(token_url(softphone_inbox)).status_code == 200
