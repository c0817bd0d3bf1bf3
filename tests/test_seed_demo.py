from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from conversations.models import Conversation, TimelineEntry
from customers.models import ApiToken, Customer, Membership, Tenant
from customers.services import api_token_hash, api_token_revoke


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_it_prints_one_json_object_with_logins_and_inboxes(db):
    demo = json.loads(seed("--json"))

    assert demo["tenant"] == "demo"
    assert {u["role"] for u in demo["users"]} == {"admin", "supervisor", "agent"}
    assert all(u["email"] and u["password"] for u in demo["users"])
    assert "api_token" in demo
    assert {i["channel"] for i in demo["inboxes"]} >= {"sms", "whatsapp", "email", "chat", "api"}
    assert all(len(i["key"]) >= 24 for i in demo["inboxes"])


def test_running_it_twice_prints_the_same_values_and_creates_nothing_more(db):
    first = seed("--json")
    counts = (Tenant.objects.count(), Membership.objects.count(), Customer.objects.count(), TimelineEntry.objects.count())

    second = seed("--json")

    assert first == second
    assert counts == (Tenant.objects.count(), Membership.objects.count(), Customer.objects.count(), TimelineEntry.objects.count())


def test_the_printed_passwords_sign_in(client, db):
    demo = json.loads(seed("--json"))

    for user in demo["users"]:
        assert client.login(username=user["email"], password=user["password"])


def test_a_demo_customer_spans_several_channels_in_one_conversation(db):
    seed("--tenant", "shop")
    tenant = Tenant.objects.get(slug="shop")

    maria = Customer.objects.for_tenant(tenant).get(name="Maria Garcia")
    conversation = Conversation.objects.for_tenant(tenant).get(customer=maria)

    channels = set(conversation.entries.filter(kind="message").values_list("channel", flat=True))
    assert channels == {"chat", "sms", "email"}
    assert set(maria.identities.values_list("kind", flat=True)) == {"chat_visitor", "phone", "email"}


def test_the_printed_api_token_works_as_the_demo_admin(db):
    demo = json.loads(seed("--json"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {demo['api_token']}")

    response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["email"] == "admin@demo.example.com"
    assert response.json()["role"] == "admin"
    assert response.json()["tenant"] == "demo"


def test_a_revoked_demo_token_is_replaced_by_a_new_one_on_the_next_run(db):
    first = json.loads(seed("--json"))["api_token"]
    token = ApiToken.objects.get(key_hash=api_token_hash(first))
    api_token_revoke(tenant=token.tenant, token=token)

    second = json.loads(seed("--json"))["api_token"]

    assert second != first
    assert ApiToken.objects.get(key_hash=api_token_hash(second)).revoked_at is None
    assert ApiToken.objects.get(key_hash=api_token_hash(first)).revoked_at is not None


def test_a_demo_token_made_under_another_secret_key_is_revoked_and_replaced(db, settings):
    first = json.loads(seed("--json"))["api_token"]
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"

    second = json.loads(seed("--json"))["api_token"]

    assert second != first
    assert ApiToken.objects.get(key_hash=api_token_hash(first)).revoked_at is not None
    assert ApiToken.objects.filter(name="Demo (seed_demo)", revoked_at__isnull=True).count() == 1
