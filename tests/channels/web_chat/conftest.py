"""A chat inbox on an allowed site, and a visitor's HTTP calls as the widget makes them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.core.cache import cache

from channels_app.models import Channel
from routing.models import AgentProfile, Presence
from tests.factories import InboxFactory

SITE = "https://shop.example"
IDENTITY_SECRET = "chat-identity-secret-0123456789"


def user_hash(user_id: str, secret: str = IDENTITY_SECRET) -> str:
    """Written out independently of the app's identity module, so a bug there shows up here."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def chat_inbox_for(tenant, name="Website chat", **settings):
    inbox = InboxFactory(
        tenant=tenant, channel=Channel.CHAT, name=name, settings={"allowed_origins": [SITE], **settings},
    )
    inbox.set_secrets(identity_secret=IDENTITY_SECRET)
    inbox.save()
    return inbox


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    # Counters live in the shared cache; a test's visitor ids can repeat in the next test's database.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def chat_inbox(tenant):
    return chat_inbox_for(tenant)


@pytest.fixture
def other_chat_inbox(other_tenant):
    return chat_inbox_for(other_tenant, name="Globex chat")


@pytest.fixture
def online_agent(agent):
    AgentProfile.objects.create(tenant=agent.membership.tenant, membership=agent.membership, presence=Presence.ONLINE)
    return agent


def post(client, inbox, endpoint, data=None, *, token=None, origin=SITE, **extra):
    headers = {}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Visitor {token}"
    body = data if isinstance(data, (bytes, str)) else json.dumps(data or {})
    return client.post(f"/chat/{inbox.key}/{endpoint}", data=body, content_type="application/json", **headers, **extra)


def get(client, inbox, endpoint, *, token=None, origin=SITE, **params):
    headers = {}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Visitor {token}"
    return client.get(f"/chat/{inbox.key}/{endpoint}", params, **headers)


def start(client, inbox, **fields) -> dict:
    response = post(client, inbox, "session", {"visitor_token": None, **fields})
    assert response.status_code == 200, response.content
    return response.json()


def say(client, inbox, token, body="Hello there", client_id="c-1"):
    return post(client, inbox, "messages", {"body": body, "client_id": client_id}, token=token)
