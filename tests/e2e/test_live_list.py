"""An agent's open list and conversation update without reload when an SMS arrives (ASGI server + Redis)."""

from __future__ import annotations

import threading

from playwright.sync_api import Page, expect

from conversations.services import InboundMessage, message_record_inbound
from customers.models import Role
from tests.factories import InboxFactory, MembershipFactory, TenantFactory


def test_a_new_sms_appears_in_the_agents_open_list_without_reload(asgi_server, page: Page):
    tenant = TenantFactory(slug="live", name="Live Inc")
    inbox = InboxFactory(tenant=tenant, channel="sms", name="SMS")
    agent = MembershipFactory(tenant=tenant, role=Role.AGENT, user__email="live-agent@example.com").user

    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("#id_username", agent.email)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.goto(f"{asgi_server}/app/?view=unassigned")
    expect(page.locator(".conv-list")).to_contain_text("No conversations here")
    expect(page.locator("body[data-live=connected]")).to_have_count(1, timeout=20000)

    # Stored from another thread, as a webhook would be: Playwright's event loop owns this one.
    arrival = threading.Thread(target=message_record_inbound, kwargs={
        "tenant": tenant, "inbox": inbox,
        "message": InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Parcel late",
                                  sender_name="Maria"),
    })
    arrival.start()
    arrival.join()

    expect(page.locator(".conv-list")).to_contain_text("Maria", timeout=10000)
    expect(page.locator(".views a.active .count")).to_have_text("1")
