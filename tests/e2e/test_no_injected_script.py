"""Script payloads in every text field the workspace renders stay text in a real browser: nothing runs.

Two things are checked on each page: the payload is visible as text (so the templates escape it, which the
Content-Security-Policy would otherwise hide), and `window.__pwned` stays undefined with no injected element.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from channels_app.models import Channel
from conversations.services import (
    InboundMessage,
    attachment_store,
    conversation_update,
    message_record_inbound,
    note_add,
)
from customers.models import Role
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

NAME = '<img src=x onerror="window.__pwned=1">Ann'
SUBJECT = '"><svg onload="window.__pwned=1">Refund'
BODY = "<script>window.__pwned=1</script> my parcel"
LINK = '<a href="javascript:window.__pwned=1">click me</a>'
NOTE = "<img src=x onerror=window.__pwned=1> checked"
TAG = "<b onmouseover=x>vip"
FILENAME = '"><img src=x onerror=window.__pwned=1>.txt'
CHAT_NAME = "<script>window.__pwned=1</script>Visitor"
INJECTED = "script:not([src]):not([type='application/json']), img[onerror], svg[onload], b[onmouseover], a[href^='javascript:']"


@pytest.fixture
def hostile_data(transactional_db):
    tenant = TenantFactory(slug="xss", name="XSS Inc")
    sms = InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS", address="+15550100000")
    email = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Mail", address="help@xss.test")
    chat = InboxFactory(tenant=tenant, channel=Channel.CHAT, name="Chat")
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN, user__email="xss-admin@example.com").user

    first = message_record_inbound(tenant=tenant, inbox=sms, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body=f"{BODY} {LINK}", sender_name=NAME,
        external_id="x-1"))
    mail = message_record_inbound(tenant=tenant, inbox=email, message=InboundMessage(
        channel=Channel.EMAIL, sender_kind="email", sender_value="ann@example.org", body=BODY, subject=SUBJECT,
        sender_name=NAME, external_id="<x-2@example.org>"))
    attachment_store(tenant=tenant, entry=first.entry, filename=FILENAME, content=b"hello", content_type="text/plain")
    note_add(tenant=tenant, conversation=first.conversation, author=admin, body=NOTE)
    conversation_update(tenant=tenant, conversation=first.conversation, actor=admin, tags=[TAG], subject=SUBJECT)
    visitor = message_record_inbound(tenant=tenant, inbox=chat, message=InboundMessage(
        channel=Channel.CHAT, sender_kind="chat_visitor", sender_value="visitor-x", body=BODY, sender_name=CHAT_NAME,
        external_id="x-3"))
    return {"user": admin, "sms": first.conversation, "email": mail.conversation, "chat": visitor.conversation}


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(INJECTED).count() == 0


def test_payloads_in_every_field_render_as_text_and_never_run(asgi_server, page: Page, hostile_data, screenshot):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("#id_username", hostile_data["user"].email)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    sms, chat = hostile_data["sms"], hostile_data["chat"]

    page.goto(f"{asgi_server}/app/?view=all")
    expect(page.locator(".conv-list")).to_contain_text(NAME)
    expect(page.locator(".conv-list")).to_contain_text(CHAT_NAME)
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/app/conversations/{sms.number}/")
    pane = page.locator("#conversation-pane")
    for text in (NAME, SUBJECT, BODY, "click me", NOTE, TAG):
        expect(pane).to_contain_text(text)
    expect(pane).to_contain_text("onerror=window.__pwned=1")  # the file's name, however storage cleaned it
    screenshot(page, "no-injected-script-conversation")
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/app/conversations/{chat.number}/")
    expect(page.locator("#conversation-pane")).to_contain_text(CHAT_NAME)
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/app/conversations/{hostile_data['email'].number}/")
    expect(page.locator("#conversation-pane")).to_contain_text(SUBJECT)
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/app/customers/{sms.customer_id}/")
    expect(page.locator("main")).to_contain_text(NAME)
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/app/?q=parcel")
    expect(page.locator(".conv-list")).to_contain_text(NAME)
    assert_nothing_ran(page)

    page.goto(f"{asgi_server}/analytics/reports/conversations/?kpi=backlog")
    expect(page.locator("main")).to_contain_text(NAME)
    expect(page.locator("main")).to_contain_text(SUBJECT)
    screenshot(page, "no-injected-script-drilldown")
    assert_nothing_ran(page)
    assert dialogs == []
