"""GET /widget/<key>.js: the loader a tenant's one script tag fetches."""

from __future__ import annotations

import json
import re

import pytest
from django.db import OperationalError

from channels_app.adapters.web_chat import widget
from channels_app.models import Channel
from tests.factories import InboxFactory

BOOT = re.compile(r"w\.OmnideskChatBoot = (\{.*?\});\n")


@pytest.fixture
def chat_inbox(tenant):
    return InboxFactory(tenant=tenant, channel=Channel.CHAT, name="Web chat",
                        settings={"allowed_origins": ["https://shop.example"]})


def boot_of(response) -> dict:
    match = BOOT.search(response.content.decode())
    assert match, response.content
    return json.loads(match.group(1))


@pytest.mark.django_db
def test_it_returns_a_loader_that_knows_the_base_url_and_key(client, chat_inbox, settings):
    settings.PUBLIC_BASE_URL = "https://desk.example"
    response = client.get(f"/widget/{chat_inbox.key}.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert boot_of(response) == {
        "base": "https://desk.example",
        "key": chat_inbox.key,
        "script": "https://desk.example/static/widget/omnidesk-chat.js",
        "css": "https://desk.example/static/widget/omnidesk-chat.css",
    }


@pytest.mark.django_db
def test_it_is_cacheable_for_a_few_minutes(client, chat_inbox):
    response = client.get(f"/widget/{chat_inbox.key}.js")
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert cache_control == {"public", "max-age=300"}
    assert "Set-Cookie" not in response  # a shared cache may keep it


@pytest.mark.django_db
def test_it_answers_head_and_refuses_writes(client, chat_inbox):
    assert client.head(f"/widget/{chat_inbox.key}.js").status_code == 200
    assert client.post(f"/widget/{chat_inbox.key}.js").status_code == 405


@pytest.mark.django_db
def test_it_uses_an_absolute_static_url_as_it_is(client, chat_inbox, settings):
    settings.STATIC_URL = "https://cdn.example/assets/"
    boot = boot_of(client.get(f"/widget/{chat_inbox.key}.js"))
    assert boot["script"] == "https://cdn.example/assets/widget/omnidesk-chat.js"
    assert boot["css"] == "https://cdn.example/assets/widget/omnidesk-chat.css"


def assert_missing(response) -> None:
    assert response.status_code == 404
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    body = response.content.decode()
    assert body.startswith("/*") and body.rstrip().endswith("*/")
    assert "no active web chat inbox has this key" in body
    assert body.count("*/") == 1  # a comment and nothing else: nothing runs on the host page
    assert "max-age=60" in response["Cache-Control"]


@pytest.mark.django_db
def test_an_unknown_key_is_a_404_with_a_js_comment(client, chat_inbox):
    assert_missing(client.get("/widget/no-such-key.js"))


@pytest.mark.django_db
def test_the_404_does_not_echo_the_key(client, chat_inbox):
    response = client.get("/widget/*%20alert(1)%20*.js")
    assert_missing(response)
    assert "alert" not in response.content.decode()


@pytest.mark.django_db
def test_an_inactive_inbox_is_a_404(client, chat_inbox):
    chat_inbox.is_active = False
    chat_inbox.save()
    assert_missing(client.get(f"/widget/{chat_inbox.key}.js"))


@pytest.mark.django_db
def test_an_inbox_of_another_channel_is_a_404(client, sms_inbox, email_inbox):
    assert_missing(client.get(f"/widget/{sms_inbox.key}.js"))
    assert_missing(client.get(f"/widget/{email_inbox.key}.js"))


@pytest.mark.django_db
def test_a_database_outage_is_a_503_that_is_not_cached(client, chat_inbox, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("channels_app.inbound.Inbox.objects.select_related", unavailable)
    response = client.get(f"/widget/{chat_inbox.key}.js")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "no-store" in response["Cache-Control"]
    assert response.content.decode().startswith("/*")


@pytest.mark.django_db
def test_inlined_values_cannot_end_the_script_or_the_string(client, tenant, settings):
    # A hostile value anywhere in the literal (here the key and the configured base URL) stays a string.
    nasty_key = 'k"+alert(1)+"\u2028</script><!--'
    nasty_key = nasty_key.replace("/", "")  # a key never holds a slash: it is one URL segment
    inbox = InboxFactory(tenant=tenant, channel=Channel.CHAT, name="Odd", key=nasty_key)
    settings.PUBLIC_BASE_URL = "https://desk.example/</script><script>alert(2)</script>"
    response = client.get(f"/widget/{inbox.key}.js".replace('"', "%22").replace("\u2028", "%E2%80%A8"))
    body = response.content.decode()
    assert response.status_code == 200
    for raw in ("<", ">", "\u2028"):
        assert raw not in body
    assert not re.search(r'(?<!\\)"\+alert', body)  # every quote of the value is escaped
    boot = boot_of(response)
    assert boot["key"] == nasty_key
    assert boot["base"] == settings.PUBLIC_BASE_URL


def test_js_literal_escapes_what_json_leaves_raw():
    assert widget.js_literal({"a": "</script>&\u2028\u2029"}) == '{"a": "\\u003C/script\\u003E\\u0026\\u2028\\u2029"}'
