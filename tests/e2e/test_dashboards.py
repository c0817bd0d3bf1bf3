"""Supervisor dashboards in a browser: the live overview updates without reload; the reports page renders."""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request

from playwright.sync_api import Page, expect

from customers.models import Role
from tests.channels.twilio.conftest import inbound_form, sign, twilio_inbox, worker_stores_receipts
from tests.factories import MembershipFactory, TenantFactory


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")


def post_sms_webhook(base: str, inbox) -> None:
    """A signed Twilio SMS webhook to the running server, then the worker's part (store the receipt)."""
    path = f"/hooks/twilio/{inbox.key}/messages/"
    form = inbound_form(From="+12025550143", To=inbox.address, Body="Where is my parcel?")
    request = urllib.request.Request(
        base + path, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"X-Twilio-Signature": sign(base + path, form), "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own test server
        assert response.status == 200
    worker_stores_receipts()


def test_the_unassigned_tile_counts_a_new_sms_without_reload(asgi_server, page: Page, fake_twilio, screenshot):
    tenant = TenantFactory(slug="dash", name="Dash Inc")
    inbox = twilio_inbox(tenant)
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN, user__email="dash-admin@example.com").user

    sign_in(page, asgi_server, admin.email)
    page.goto(f"{asgi_server}/analytics/")
    unassigned = page.locator('[data-tile="unassigned"] .tile-value')
    expect(unassigned).to_have_text("0")
    expect(page.locator("body[data-analytics-live=connected]")).to_have_count(1, timeout=20000)
    page.evaluate("window.__same_page = true")

    # From another thread: Playwright's event loop owns this one.
    arrival = threading.Thread(target=post_sms_webhook, args=(asgi_server, inbox))
    arrival.start()
    arrival.join()

    expect(unassigned).to_have_text("1", timeout=15000)
    assert page.evaluate("window.__same_page === true")  # no reload happened
    screenshot(page, "analytics-live-overview")

    page.goto(f"{asgi_server}/analytics/reports/")
    expect(page.locator(".report-table")).to_contain_text("New conversations")
    expect(page.locator("canvas[data-chart]")).to_have_count(4)
    screenshot(page, "analytics-reports")
