"""The embeddable web chat, as a shop's visitor and an agent see it (ASGI server + Redis + a real Celery worker).

The shop's page is served from another origin (http://localhost:<port>, Omnidesk being at http://127.0.0.1:<port>)
and embeds the widget with the one script tag; the agent answers from the workspace in a second browser.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from datetime import time as clock_time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, expect

from channels_app.models import Channel, Inbox
from conversations.models import CsatSurvey, Direction, TimelineEntry
from customers.models import Customer, Identity, Role
from routing.models import BusinessCalendar, CalendarInterval, Presence
from routing.services import agent_set_presence
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

PASSWORD = "correct horse battery staple"
LIVE = 20000  # ms a live update may take on a busy 2-core machine
WIDGET = "omnidesk-chat"
# A 1x1 PNG: what a phone's "attach photo" would send, only smaller.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def in_thread(function, *args, **kwargs):
    """ORM work off the test's thread: Playwright's event loop owns it."""
    result: dict = {}

    def run():
        try:
            result["value"] = function(*args, **kwargs)
        finally:
            connections.close_all()  # this thread's connection would keep the test database from being dropped

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return result.get("value")


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = in_thread(condition)
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"Timed out waiting for {what}")


class HostSite:
    """A tenant's website on its own origin: pages that embed Omnidesk with nothing but the script tag."""

    def __init__(self, host_name: str) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = site.pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://{host_name}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page_with_widget(self, path: str, script_url: str, before: str = "") -> str:
        # Host CSS that would wreck an unprotected widget: the shadow root must keep it out.
        self.pages[path] = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>
<style>* {{ font-family: serif !important; }} div, button {{ display: none; }} p {{ color: red; }}</style></head>
<body><h1>Corner Shop</h1><p>Our parcels usually arrive in two days.</p>{before}
<script src="{script_url}" async></script></body></html>"""
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop_site():
    site = HostSite("localhost")
    yield site
    site.close()


@pytest.fixture
def stranger_site():
    """A site whose origin the inbox does not list (another port: another origin)."""
    site = HostSite("localhost")
    yield site
    site.close()


def signed_in(browser: Browser, base_url: str, email: str) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    return page


def visitor_page(browser: Browser, width: int = 1280, height: int = 800) -> Page:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"A dialog opened on the host page: {dialog.message}"))
    return page


def chat_setup(shop_origin: str):
    tenant = TenantFactory(slug="corner", name="Corner Shop")
    inbox = InboxFactory(tenant=tenant, channel=Channel.CHAT, name="Shop chat", settings={
        "allowed_origins": [shop_origin], "title": "Corner Shop help", "color": "#0F766E",
        "greeting": "Hi! Ask us anything about your order.",
        "prechat_enabled": True, "prechat_fields": ["name", "email"], "prechat_required": ["name"],
    })
    alex = MembershipFactory(tenant=tenant, role=Role.AGENT, display_name="Alex Agent", user__email="alex@corner.test")
    agent_set_presence(tenant=tenant, membership=alex, presence=Presence.ONLINE)
    return tenant, inbox, alex


def chat_entries(tenant, direction: str) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.for_tenant(tenant).filter(channel=Channel.CHAT, direction=direction)
                .select_related("conversation", "customer").order_by("pk"))


def agent_reply(agent: Page, text: str) -> None:
    agent.fill("#id_reply_body", text)
    agent.click("text=Send reply")
    expect(agent.locator("#conversation-pane .timeline")).to_contain_text(text)


@pytest.fixture
def worker_knows_the_server(asgi_server, settings):
    """The in-process Celery worker builds links (surveys, files) from PUBLIC_BASE_URL, as the server does."""
    settings.PUBLIC_BASE_URL = asgi_server


def test_a_visitor_chats_with_an_agent_from_the_shops_own_site(
    asgi_server, browser: Browser, celery_worker_live, worker_knows_the_server, shop_site, screenshot
):
    tenant, inbox, alex = in_thread(chat_setup, shop_site.origin)
    shop_url = shop_site.page_with_widget("/", f"{asgi_server}/widget/{inbox.key}.js")
    visitor = visitor_page(browser)
    problems: list[str] = []
    visitor.on("pageerror", lambda error: problems.append(str(error)))

    # 1. The one script tag brings a launcher in the inbox colour; the pre-chat form asks for a name.
    visitor.goto(shop_url)
    launcher = visitor.locator(f"{WIDGET} .odc-launcher")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
    launcher.click()
    panel = visitor.locator(f"{WIDGET} .odc-panel")
    expect(panel.locator(".odc-title")).to_have_text("Corner Shop help")
    expect(panel.locator(".odc-status")).to_have_text("We're online")
    expect(panel.locator(".odc-greeting")).to_have_text("Hi! Ask us anything about your order.")
    expect(panel.locator("#odc-field-name")).to_be_focused()
    visitor.fill(f"{WIDGET} #odc-field-name", "Maria Visitor")
    visitor.fill(f"{WIDGET} #odc-field-email", "maria@example.org")
    panel.get_by_role("button", name="Start chat").click()

    # 2. She writes; Enter sends, and the message is confirmed by the server.
    composer = panel.locator(".odc-input")
    expect(composer).to_be_focused()
    composer.press_sequentially("Hi, my parcel #4411 is late")
    composer.press("Shift+Enter")
    composer.press_sequentially("Can you check?")
    composer.press("Enter")
    mine = panel.locator(".odc-message.odc-mine")
    expect(mine).to_have_count(1)
    expect(mine.locator(".odc-body")).to_have_text("Hi, my parcel #4411 is late\nCan you check?")
    expect(mine).to_have_class("odc-message odc-mine odc-sent", timeout=LIVE)
    expect(composer).to_have_value("")

    # It is on the customer's timeline, with what the pre-chat form said.
    stored = wait_for(lambda: chat_entries(tenant, Direction.INBOUND), what="the visitor's message on the timeline")
    assert stored[0].body == "Hi, my parcel #4411 is late\nCan you check?"
    assert stored[0].inbox_id == inbox.pk
    customer = stored[0].customer
    assert customer.name == "Maria Visitor"
    assert in_thread(lambda: set(Identity.objects.for_tenant(tenant).filter(customer=customer)
                                 .values_list("kind", flat=True))) >= {"chat_visitor", "email"}
    conversation = stored[0].conversation

    # 3. Alex answers from the workspace; the reply arrives live in the widget, with his name.
    agent = signed_in(browser, asgi_server, alex.user.email)
    agent.goto(f"{asgi_server}/app/conversations/{conversation.number}/")
    expect(agent.locator("#conversation-pane .timeline")).to_contain_text("my parcel #4411 is late")
    expect(agent.locator(".reply-channels input[value=chat]")).to_be_checked()
    agent_reply(agent, "Hi Maria, Alex here. Let me check the courier.")
    theirs = panel.locator(".odc-message.odc-theirs")
    expect(theirs).to_have_count(1, timeout=LIVE)
    expect(theirs.locator(".odc-body")).to_have_text("Hi Maria, Alex here. Let me check the courier.")
    expect(theirs.locator(".odc-author")).to_have_text("Alex Agent")
    expect(theirs.locator(".odc-avatar")).to_have_text("AA")

    # 4. Markup in a reply is text: nothing runs, no element is made.
    agent_reply(agent, 'Look: <img src=x onerror="window.__chatPwned=1"> <script>window.__chatPwned=2</script>')
    expect(theirs).to_have_count(2, timeout=LIVE)
    expect(theirs.nth(1).locator(".odc-body")).to_have_text(
        'Look: <img src=x onerror="window.__chatPwned=1"> <script>window.__chatPwned=2</script>')
    expect(visitor.locator(f"{WIDGET} .odc-body img, {WIDGET} .odc-body script")).to_have_count(0)
    visitor.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert visitor.evaluate("window.__chatPwned") is None
    screenshot(visitor, "web-chat-widget-open")

    # The host page's CSS did not reach into the widget, and ours did not reach the page.
    assert theirs.first.locator(".odc-body").evaluate("e => getComputedStyle(e).fontFamily").startswith("system-ui")
    expect(visitor.locator("body > p")).to_have_css("color", "rgb(255, 0, 0)")

    # 5. Escape closes the panel and gives focus back to the launcher.
    composer.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()

    # 6. Back on the site later: the history is there, and a reply that came meanwhile shows as unread.
    visitor.reload()
    expect(launcher).to_be_visible()
    agent_reply(agent, "The courier says tomorrow morning.")
    badge = visitor.locator(f"{WIDGET} .odc-badge")
    expect(badge).to_have_text("1", timeout=LIVE)
    expect(launcher).to_have_attribute("aria-label", "Open chat, 1 unread message")
    launcher.click()
    expect(badge).to_be_hidden()
    expect(panel.locator(".odc-prechat")).to_have_count(0)
    expect(panel.locator(".odc-message")).to_have_count(4)
    expect(panel.locator(".odc-message").first).to_contain_text("my parcel #4411 is late")
    expect(panel.locator(".odc-message").last).to_contain_text("tomorrow morning")
    wait_for(lambda: TimelineEntry.objects.for_tenant(tenant).filter(
        channel=Channel.CHAT, direction=Direction.OUTBOUND, body__contains="tomorrow morning",
        delivery_status="read").exists(), what="the last reply marked read")

    # 7. At phone width the panel fills the screen.
    phone = visitor_page(browser, width=390, height=760)
    phone.goto(shop_url)
    phone.locator(f"{WIDGET} .odc-launcher").click()
    phone_panel = phone.locator(f"{WIDGET} .odc-panel")
    expect(phone_panel).to_be_visible()
    box = phone_panel.bounding_box()
    assert box["width"] == 390 and box["height"] == 760
    screenshot(phone, "web-chat-widget-phone")
    assert problems == []


def test_a_site_that_is_not_allowed_gets_no_working_chat(asgi_server, browser: Browser, shop_site, stranger_site):
    tenant, inbox, _ = in_thread(chat_setup, shop_site.origin)
    stranger_url = stranger_site.page_with_widget("/", f"{asgi_server}/widget/{inbox.key}.js")
    page = visitor_page(browser)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(stranger_url)
    expect(page.locator(f"{WIDGET}[data-state=refused]")).to_have_count(1)
    expect(page.locator(f"{WIDGET} .odc-launcher")).to_be_hidden()
    assert any("Omnidesk chat" in line and stranger_site.origin in line for line in console)

    # The server refuses the origin itself, whatever a page's script tries.
    request = urllib.request.Request(
        f"{asgi_server}/chat/{inbox.key}/session", data=json.dumps({"visitor_token": None}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Origin": stranger_site.origin},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read()) == {"detail": "This site is not allowed to use this chat."}
    assert refused.value.headers.get("Access-Control-Allow-Origin") is None
    assert in_thread(lambda: Customer.objects.for_tenant(tenant).count()) == 0

    # A websocket opened from that page with a real visitor's token is closed with 4403 before saying anything.
    session = urllib.request.Request(
        f"{asgi_server}/chat/{inbox.key}/session", data=json.dumps({"visitor_token": None}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Origin": shop_site.origin},
    )
    with urllib.request.urlopen(session, timeout=10) as response:
        ws_url = json.loads(response.read())["ws_url"]
    outcome = page.evaluate("""url => new Promise(resolve => {
        const received = [];
        const socket = new WebSocket(url);
        socket.onmessage = event => received.push(event.data);
        socket.onclose = event => resolve({code: event.code, received});
    })""", ws_url)
    assert outcome == {"code": 4403, "received": []}


def test_the_widget_polls_when_the_websocket_fails(
    asgi_server, browser: Browser, celery_worker_live, worker_knows_the_server, shop_site
):
    tenant, inbox, alex = in_thread(chat_setup, shop_site.origin)
    in_thread(lambda: Inbox.objects.filter(pk=inbox.pk).update(settings={**inbox.settings, "prechat_enabled": False}))
    shop_url = shop_site.page_with_widget("/", f"{asgi_server}/widget/{inbox.key}.js")
    visitor = visitor_page(browser)
    # Every socket the widget opens is closed at once, as a proxy that drops websockets would.
    visitor.route_web_socket("**/ws/chat/**", lambda socket: socket.close(code=1011, reason="no websockets here"))

    # The first send is lost on the way: the message says so and offers a retry, which goes through once.
    lost = {"count": 0}

    def lose_first_send(route):
        if route.request.method == "POST" and lost["count"] == 0:
            lost["count"] += 1
            route.abort("connectionreset")
        else:
            route.continue_()

    visitor.route("**/chat/*/messages", lose_first_send)

    visitor.goto(shop_url)
    visitor.locator(f"{WIDGET} .odc-launcher").click()
    composer = visitor.locator(f"{WIDGET} .odc-input")
    composer.fill("Is anyone there?")
    composer.press("Enter")
    failed = visitor.locator(f"{WIDGET} .odc-mine.odc-failed")
    expect(failed).to_contain_text("Not sent: Can't reach the chat right now.", timeout=LIVE)
    failed.get_by_role("button", name="Retry").click()
    expect(visitor.locator(f"{WIDGET} .odc-mine.odc-sent")).to_have_count(1, timeout=LIVE)
    expect(visitor.locator(f"{WIDGET} .odc-mine")).to_have_count(1)
    expect(visitor.locator(f"{WIDGET}[data-connection=polling]")).to_have_count(1, timeout=LIVE)

    stored = wait_for(lambda: chat_entries(tenant, Direction.INBOUND), what="the message on the timeline")
    agent = signed_in(browser, asgi_server, alex.user.email)
    agent.goto(f"{asgi_server}/app/conversations/{stored[0].conversation.number}/")
    agent_reply(agent, "Yes, Alex here.")
    expect(visitor.locator(f"{WIDGET} .odc-theirs .odc-body")).to_have_text("Yes, Alex here.", timeout=LIVE)
    assert [e.body for e in in_thread(chat_entries, tenant, Direction.INBOUND)] == ["Is anyone there?"]


def test_typing_both_ways_a_photo_and_the_inline_rating(
    asgi_server, browser: Browser, celery_worker_live, worker_knows_the_server, shop_site
):
    tenant, inbox, alex = in_thread(chat_setup, shop_site.origin)
    # The shop knows its signed-in customer: no pre-chat form for her.
    known = '<script>window.OmnideskChatSettings = {name: "Maria Visitor", email: "maria@example.org"};</script>'
    shop_url = shop_site.page_with_widget("/", f"{asgi_server}/widget/{inbox.key}.js", before=known)
    visitor = visitor_page(browser)
    visitor.goto(shop_url)
    visitor.locator(f"{WIDGET} .odc-launcher").click()
    panel = visitor.locator(f"{WIDGET} .odc-panel")
    expect(panel.locator(".odc-prechat")).to_have_count(0)
    composer = panel.locator(".odc-input")
    composer.fill("Hello, I have a question about a receipt")
    composer.press("Enter")
    expect(panel.locator(".odc-mine.odc-sent")).to_have_count(1, timeout=LIVE)
    stored = wait_for(lambda: chat_entries(tenant, Direction.INBOUND), what="the message on the timeline")
    assert stored[0].customer.name == "Maria Visitor"

    agent = signed_in(browser, asgi_server, alex.user.email)
    agent.goto(f"{asgi_server}/app/conversations/{stored[0].conversation.number}/")
    expect(agent.locator("#conversation-pane .timeline")).to_contain_text("question about a receipt")
    expect(agent.locator("body[data-live=connected]")).to_have_count(1, timeout=LIVE)
    expect(visitor.locator(f"{WIDGET}[data-connection=socket]")).to_have_count(1, timeout=LIVE)

    # Typing, both ways.
    composer.press_sequentially("One more thing")
    expect(agent.locator("#viewers")).to_contain_text("Maria Visitor is typing", timeout=LIVE)
    agent.locator("#id_reply_body").press_sequentially("Sure, go ahead")
    expect(panel.locator(".odc-typing")).to_have_text("Alex Agent is typing…", timeout=LIVE)
    composer.fill("")

    # A photo goes up by HTTP, shows as a thumbnail, and the agent sees it on the timeline.
    panel.locator(".odc-file-input").set_input_files({"name": "receipt.png", "mimeType": "image/png", "buffer": PNG})
    photo = panel.locator(".odc-mine.odc-sent .odc-thumb img")
    expect(photo).to_be_visible(timeout=LIVE)
    assert photo.evaluate("img => img.naturalWidth") == 1
    expect(agent.locator("#conversation-pane .timeline")).to_contain_text("receipt.png", timeout=LIVE)

    # Alex answers and resolves; the survey arrives in the widget and is answered there.
    agent_reply(agent, "Sure, go ahead")
    expect(panel.locator(".odc-theirs")).to_have_count(1, timeout=LIVE)
    agent.keyboard.press("Escape")
    agent.keyboard.press("e")
    expect(agent.locator("#conversation-pane .conv-head .status")).to_have_text("Resolved")
    survey = panel.locator(".odc-csat")
    expect(survey).to_contain_text("How would you rate this conversation?", timeout=LIVE)
    survey.get_by_role("button", name="4 out of 5").click()
    expect(survey.get_by_role("button", name="4 out of 5")).to_have_attribute("aria-pressed", "true")
    survey.get_by_label("Comment (optional)").fill("Quick and friendly")
    survey.get_by_role("button", name="Send rating").click()
    expect(survey).to_have_text("You rated us 4 out of 5. Thank you!")
    answered = wait_for(lambda: CsatSurvey.objects.for_tenant(tenant).filter(score__isnull=False).first(),
                        what="the rating stored")
    assert (answered.score, answered.comment) == (4, "Quick and friendly")


def test_when_nobody_is_online_the_visitor_leaves_a_message_for_e_mail(asgi_server, browser: Browser, shop_site):
    tenant, inbox, alex = in_thread(chat_setup, shop_site.origin)

    def close_the_team():
        agent_set_presence(tenant=tenant, membership=alex, presence=Presence.OFFLINE)
        calendar = BusinessCalendar.objects.create(tenant=tenant, name="Shop hours", time_zone="America/New_York")
        # Open one hour a day, at a time that is never now: the widget must say when.
        opens = (datetime.now(ZoneInfo("America/New_York")) + timedelta(hours=6)).replace(minute=0, second=0,
                                                                                          microsecond=0)
        for weekday in range(7):
            CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=weekday, start=opens.time(),
                                            end=clock_time(opens.hour + 1) if opens.hour < 23 else clock_time(0))
        return opens

    opens = in_thread(close_the_team)
    shop_url = shop_site.page_with_widget("/", f"{asgi_server}/widget/{inbox.key}.js")
    # The visitor is in Tokyo: the time is hers, not the shop's.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Tokyo", locale="en-US")
    visitor = context.new_page()
    visitor.goto(shop_url)
    visitor.locator(f"{WIDGET} .odc-launcher").click()
    panel = visitor.locator(f"{WIDGET} .odc-panel")
    local = opens.astimezone(ZoneInfo("Asia/Tokyo"))
    expect(panel.locator(".odc-status")).to_contain_text(f"at {local.strftime('%-I:%M %p')}")
    expect(panel.locator(".odc-offline")).to_contain_text("the reply comes by e-mail")
    expect(panel.locator(".odc-input")).to_have_count(0)

    panel.get_by_label("Name (optional)").fill("Ken")
    panel.get_by_role("textbox", name="Message").fill("Do you ship to Japan?")
    panel.get_by_role("button", name="Send message").click()
    expect(panel.locator("#odc-field-email")).to_have_js_property("validity.valid", False)  # e-mail is required
    panel.get_by_label("E-mail").fill("ken@example.jp")
    panel.get_by_role("button", name="Send message").click()
    expect(panel.locator(".odc-offline-done")).to_have_text(
        "Thanks! We got your message and will reply by e-mail to ken@example.jp.")
    expect(panel.locator(".odc-mine .odc-body")).to_have_text("Do you ship to Japan?")
    stored = wait_for(lambda: chat_entries(tenant, Direction.INBOUND), what="the offline message on the timeline")
    assert stored[0].body == "Do you ship to Japan?"
    assert in_thread(lambda: Identity.objects.for_tenant(tenant).filter(
        customer=stored[0].customer, kind="email", value="ken@example.jp").exists())
