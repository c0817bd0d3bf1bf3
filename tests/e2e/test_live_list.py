"""An agent's open list and conversation update without reload when an SMS arrives (ASGI server + Redis)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from conversations.services import InboundMessage, message_record_inbound
from customers.models import Role
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    """daphne serving the test database (Django's live_server is WSGI only: no websockets)."""
    port = free_port()
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "omnidesk.settings_test",
        "DATABASE_URL": f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHITENOISE_USE_FINDERS": "1",  # no collectstatic in tests
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


def test_a_new_sms_appears_in_the_agents_open_list_without_reload(asgi_server, page: Page):
    tenant = TenantFactory(slug="live", name="Live Inc")
    inbox = InboxFactory(tenant=tenant, channel="sms", name="SMS")
    agent = MembershipFactory(tenant=tenant, role=Role.AGENT, user__email="live-agent@example.com").user

    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("#id_username", agent.email)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.goto(f"{asgi_server}/app/?view=unassigned")
    expect(page.locator("table.list")).to_contain_text("No conversations here")
    page.wait_for_timeout(1000)  # the websocket connects

    # Stored from another thread, as a webhook would be: Playwright's event loop owns this one.
    arrival = threading.Thread(target=message_record_inbound, kwargs={
        "tenant": tenant, "inbox": inbox,
        "message": InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Parcel late",
                                  sender_name="Maria"),
    })
    arrival.start()
    arrival.join()

    expect(page.locator("table.list")).to_contain_text("Maria", timeout=10000)
    expect(page.locator(".views a.active .count")).to_have_text("1")
