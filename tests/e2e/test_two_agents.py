"""Two agents in two browsers work one customer across SMS and e-mail, live (daphne + Redis + a real worker).

Inbound SMS arrives through the real signed webhook; replies leave through the real Celery worker to the
fake Twilio API and to a local SMTP server. Screenshots of the main screens land in var/test-artifacts/.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from conversations.models import Conversation
from customers.models import Role
from customers.services import customer_add_identity
from routing.models import Team
from tests.channels.twilio.conftest import ACCOUNT_SID, sign, twilio_inbox
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

PASSWORD = "correct horse battery staple"
# How long a live update may take to show on a busy 2-core machine.
LIVE = 20000
CUSTOMER_PHONE = "+12025550143"


def in_thread(function, *args, **kwargs):
    """Run ORM work off the test's thread: Playwright's event loop owns it."""
    result: dict = {}

    def run():
        result["value"] = function(*args, **kwargs)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return result.get("value")


def post_sms(base_url: str, inbox, body: str) -> int:
    """What Twilio does when the customer texts the inbox's number: a signed form POST."""
    path = f"/hooks/twilio/{inbox.key}/messages/"
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": CUSTOMER_PHONE,
            "To": inbox.address, "Body": body, "NumMedia": "0"}
    request = urllib.request.Request(
        base_url + path, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"X-Twilio-Signature": sign(base_url + path, form), "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def signed_in(browser: Browser, base_url: str, email: str, width: int = 1440) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    return page


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"Timed out waiting for {what}")


def test_two_agents_work_one_customer_across_sms_and_email_live(
    asgi_server, browser: Browser, fake_twilio, smtp_server, celery_worker_live, screenshot
):
    tenant = TenantFactory(slug="duo", name="Duo Support")
    sms = twilio_inbox(tenant, address="+15550100000")
    InboxFactory(tenant=tenant, channel="email", name="Support mail", address="support@duo.test",
                 settings={"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port})
    team = Team.objects.create(tenant=tenant, name="Support")
    alex = MembershipFactory(tenant=tenant, role=Role.AGENT, display_name="Alex Agent", user__email="alex@duo.test")
    bea = MembershipFactory(tenant=tenant, role=Role.AGENT, display_name="Bea Agent", user__email="bea@duo.test")
    for member in (alex, bea):
        member.teams.add(team)

    alex_page = signed_in(browser, asgi_server, "alex@duo.test")
    bea_page = signed_in(browser, asgi_server, "bea@duo.test")
    alex_page.goto(f"{asgi_server}/app/?view=unassigned")
    bea_page.goto(f"{asgi_server}/app/?view=mine")
    expect(alex_page.locator(".conv-list")).to_contain_text("No conversations here")
    expect(bea_page.locator(".conv-list")).to_contain_text("No conversations here")
    for page in (alex_page, bea_page):  # both websockets are connected before anything happens
        expect(page.locator("body[data-live=connected]")).to_have_count(1, timeout=LIVE)

    # 1. An SMS arrives: it shows up in Alex's open list without a reload.
    assert post_sms(asgi_server, sms, "Hi, my parcel #4411 is late") == 200
    expect(alex_page.locator(".conv-list")).to_contain_text("my parcel #4411 is late", timeout=LIVE)
    expect(alex_page.locator(".views a.active .count")).to_have_text("1")
    conversation = in_thread(lambda: Conversation.objects.get(tenant=tenant))
    in_thread(customer_add_identity, tenant=tenant, customer=conversation.customer, kind="email", value="maria@example.org")

    # 2. Alex opens it; the next SMS appears in the open timeline without a reload.
    alex_page.click(f".conv[data-number='{conversation.number}'] a.conv-open")
    expect(alex_page.locator("#conversation-pane .timeline")).to_contain_text("my parcel #4411 is late")
    assert f"/app/conversations/{conversation.number}/" in alex_page.url
    alex_page.wait_for_timeout(300)
    assert post_sms(asgi_server, sms, "Tracking says it is stuck in the depot") == 200
    expect(alex_page.locator("#conversation-pane .timeline")).to_contain_text("stuck in the depot", timeout=LIVE)

    # 3. Alex replies by SMS (the default: the customer's last channel); the fake Twilio API receives it.
    expect(alex_page.locator(".reply-channels input[value=sms]")).to_be_checked()
    alex_page.fill("#id_reply_body", "Sorry Maria, I am chasing the courier now.")
    alex_page.click("text=Send reply")
    expect(alex_page.locator("#conversation-pane .timeline")).to_contain_text("chasing the courier")
    # The live push may show the reply before the send's own answer swaps the pane (composer included):
    # wait for that swap, or it lands on whatever the next step types.
    expect(alex_page.locator("#id_reply_body")).to_have_value("")
    sent = wait_for(lambda: [r for r in fake_twilio.accepted() if "chasing the courier" in r["form"].get("Body", "")],
                    what="the SMS reply at the fake Twilio API")
    assert sent[0]["form"]["To"] == CUSTOMER_PHONE

    # 4. One click switches the reply to e-mail; the local SMTP server receives it.
    alex_page.click(".reply-channels label.ch-email")
    alex_page.fill("#id_reply_body", "Here is the courier's claim form by e-mail.")
    alex_page.click("text=Send reply")
    expect(alex_page.locator("#conversation-pane .timeline")).to_contain_text("claim form by e-mail")
    expect(alex_page.locator("#id_reply_body")).to_have_value("")
    wait_for(lambda: smtp_server.received, what="the e-mail reply at the SMTP server")
    assert smtp_server.received[0].rcpt_tos == ["maria@example.org"]
    assert b"claim form by e-mail" in smtp_server.received[0].content

    # 5. An internal note mentions Bea, who is told live.
    alex_page.click("[data-composer-tab=note]")
    alex_page.fill("#id_body", "@bea can you call the depot tomorrow?")
    alex_page.click("text=Add note")
    expect(bea_page.locator("#toasts")).to_contain_text(f"You were mentioned in #{conversation.number}", timeout=LIVE)

    # 6. The timeline shows the SMS, the e-mail and the note in order, each with its badge.
    entries = alex_page.locator("#conversation-pane .timeline .entry:not(.entry-event)")
    expect(entries).to_have_count(5)
    texts = entries.all_inner_texts()
    assert "my parcel #4411" in texts[0] and "SMS" in texts[0]
    assert "stuck in the depot" in texts[1] and "SMS" in texts[1]
    assert "chasing the courier" in texts[2] and "SMS" in texts[2]
    assert "claim form by e-mail" in texts[3] and "E-mail" in texts[3]
    assert "call the depot" in texts[4] and "Internal note" in texts[4]
    expect(alex_page.locator("#conversation-pane .timeline .ev-channel_switched")).to_contain_text("Channel switched")
    screenshot(alex_page, "conversation-1440")

    # 7. Alex assigns it to Bea: Bea is told, and her "Mine" list shows it, without a reload.
    alex_page.select_option("#conversation-pane select[name=assignee]", str(bea.user_id))
    alex_page.select_option("#conversation-pane select[name=team]", str(team.pk))  # Alex keeps seeing it
    alex_page.click("#conversation-pane .conv-side form[action$='/assign/'] button[type=submit]")
    expect(bea_page.locator("#toasts")).to_contain_text(f"#{conversation.number} was assigned to you", timeout=LIVE)
    expect(bea_page.locator(f".conv-list .conv[data-number='{conversation.number}']")).to_be_visible(timeout=LIVE)
    expect(bea_page.locator(".views a.active .count")).to_have_text("1")
    screenshot(bea_page, "list-mine-1440")

    # Bea works it from the keyboard: j + Enter opens it, e resolves it; Alex's open header follows live.
    bea_page.keyboard.press("j")
    bea_page.keyboard.press("Enter")
    expect(bea_page.locator("#conversation-pane .timeline")).to_contain_text("call the depot")
    bea_page.keyboard.press("e")
    expect(bea_page.locator("#conversation-pane .conv-head .status")).to_have_text("Resolved")
    expect(alex_page.locator("#conversation-pane .conv-head .status")).to_have_text("Resolved", timeout=LIVE)

    # The same screens stay usable at 1024 px.
    narrow = signed_in(browser, asgi_server, "bea@duo.test", width=1024)
    narrow.goto(f"{asgi_server}/app/conversations/{conversation.number}/?view=mine")
    expect(narrow.locator("#conversation-pane .composer")).to_be_visible()
    expect(narrow.locator(".conv-list")).to_be_visible()
    screenshot(narrow, "conversation-1024")
