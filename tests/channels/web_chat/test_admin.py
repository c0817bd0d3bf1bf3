"""Chat inboxes in admin: their settings as fields, the identity secret shown once, the embed code."""

from __future__ import annotations

import pytest

from channels_app.models import Channel, Inbox
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db


def form_data(tenant, **overrides):
    data = {
        "tenant": tenant.pk, "channel": Channel.CHAT, "name": "Website chat", "address": "", "settings": "{}",
        "is_active": "on", "clear_secrets": "",
        "chat_allowed_origins": "https://shop.example\nhttps://www.shop.example:8443",
        "chat_title": "Talk to Acme", "chat_greeting": "Hello!", "chat_color": "#112233",
        "chat_offline_message": "Back at 9", "chat_prechat_enabled": "on",
        "chat_prechat_fields": ["name", "email"], "chat_prechat_required": ["email"],
    }
    data.update(overrides)
    return data


def test_an_admin_creates_a_chat_inbox_and_sees_its_identity_secret_once(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = client.post("/admin/channels_app/inbox/add/", form_data(tenant))

    assert response.status_code == 302, response.content.decode()[:2000]
    inbox = Inbox.objects.get(name="Website chat")
    expected = {
        "allowed_origins": ["https://shop.example", "https://www.shop.example:8443"], "title": "Talk to Acme",
        "greeting": "Hello!", "color": "#112233", "offline_message": "Back at 9", "prechat_enabled": True,
        "prechat_fields": ["name", "email"], "prechat_required": ["email"],
    }
    assert {key: inbox.settings.get(key) for key in expected} == expected
    secret = inbox.get_secret("identity_secret")
    assert secret.startswith("chatid_")
    shown = client.get(f"/admin/channels_app/inbox/{inbox.pk}/change/").content.decode()
    assert secret in shown
    page = client.get(f"/admin/channels_app/inbox/{inbox.pk}/change/").content.decode()
    assert f"http://testserver/widget/{inbox.key}.js" in page
    assert secret not in page


def test_an_origin_with_a_path_is_refused_with_a_reason(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = client.post("/admin/channels_app/inbox/add/", form_data(tenant, chat_allowed_origins="https://shop.example/page"))

    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not Inbox.objects.filter(name="Website chat").exists()


def test_the_identity_secret_can_be_regenerated(client, tenant, tenant_admin):
    inbox = InboxFactory(tenant=tenant, channel=Channel.CHAT, name="Chat")
    inbox.set_secrets(identity_secret="old-secret")
    inbox.save()
    client.force_login(tenant_admin)

    client.post("/admin/channels_app/inbox/", {"action": "regenerate_identity_secret", "_selected_action": [inbox.pk]})

    inbox.refresh_from_db()
    assert inbox.get_secret("identity_secret") not in ("", "old-secret")


def test_other_inboxes_keep_their_form_without_chat_fields(client, tenant, tenant_admin, sms_inbox):
    client.force_login(tenant_admin)

    page = client.get(f"/admin/channels_app/inbox/{sms_inbox.pk}/change/").content.decode()

    assert "chat_allowed_origins" not in page
    assert 'name="name"' in page
