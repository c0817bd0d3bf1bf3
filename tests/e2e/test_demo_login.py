from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command
from playwright.sync_api import Page, expect


def seed_demo() -> dict:
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_demo_admin_signs_in_and_sees_the_demo_tenant_in_admin(live_server, page: Page, transactional_db):
    demo = seed_demo()
    admin = next(u for u in demo["users"] if u["role"] == "admin")

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", admin["email"])
    page.fill("#id_password", admin["password"])
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto(f"{live_server.url}/admin/customers/tenant/")

    expect(page.locator("#result_list")).to_contain_text("Demo Inc.")


def test_an_agent_signs_in_and_sees_the_cross_channel_conversation(live_server, page: Page, transactional_db):
    demo = seed_demo()
    agent = next(u for u in demo["users"] if u["email"].startswith("agent1@"))

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", agent["email"])
    page.fill("#id_password", agent["password"])
    page.click("button[type=submit]")
    page.click("text=Maria Garcia")

    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Channel switched from Web chat to SMS")
    expect(timeline).to_contain_text("Channel switched from SMS to E-mail")
    expect(timeline).to_contain_text("Attaching the receipt as asked.")
