"""Hostile input at every way in: refused with a reason (or stored harmlessly), logged, never a 500, no rows.

The test client re-raises any exception a view lets escape, so a would-be 500 fails here loudly.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import zipfile

import pytest
from django.test import Client

from channels_app.models import Channel, InboundReceipt
from conversations.models import Attachment, Conversation, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound, note_add
from customers.models import Customer, Identity
from tests.channels.api.conftest import SECRET as API_SECRET
from tests.channels.api.conftest import make_api_inbox
from tests.channels.api.conftest import sign as api_sign
from tests.channels.email.mails import WEBHOOK_SECRET, mail, post_raw
from tests.channels.twilio.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    inbound_form,
    sign,
    twilio_inbox,
    worker_stores_receipts,
)
from tests.channels.web_chat.conftest import chat_inbox_for, start
from tests.channels.web_chat.conftest import post as chat_post

SQL_LOOKING = [
    "' OR 1=1 --",
    "'; DROP TABLE conversations_conversation; --",
    "%' OR '1'='1 \\ 1) UNION SELECT password FROM auth_user --",
    "!!! & | <-> :* ((((",
    "a\x00b",
    "\ud7ff" * 300,
]


@pytest.fixture(autouse=True)
def clean_caches(settings, tmp_path):
    from django.core.cache import cache

    from channels_app.inbound import inbox_cache_clear

    settings.MEDIA_ROOT = tmp_path
    inbox_cache_clear()
    cache.clear()
    yield
    inbox_cache_clear()
    cache.clear()


def stored_rows(tenant) -> dict[str, int]:
    return {
        model.__name__: model.objects.filter(tenant=tenant).count()
        for model in (Customer, Identity, Conversation, TimelineEntry, Attachment, InboundReceipt)
    }


def logged(caplog, *words: str) -> bool:
    """A WARNING or INFO line mentioning every word (case-insensitive)."""
    return any(
        record.levelno in (logging.INFO, logging.WARNING)
        and all(word.lower() in record.getMessage().lower() for word in words)
        for record in caplog.records
    )


@pytest.fixture
def mail_inbox(tenant):
    from tests.factories import InboxFactory

    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Support mail", address="support@acme.test")
    inbox.set_secrets(webhook_secret=WEBHOOK_SECRET)
    inbox.save()
    return inbox


# ------------------------------------------------------------------------------------------------ e-mail


def test_an_email_declared_over_the_size_limit_is_a_413_before_it_is_read(tenant, mail_inbox, caplog):
    before = stored_rows(tenant)

    response = Client().post(
        f"/hooks/email/{mail_inbox.key}/", data=mail().as_bytes(), content_type="message/rfc822",
        HTTP_X_OMNIDESK_SECRET=WEBHOOK_SECRET, CONTENT_LENGTH=str(30 * 1024 * 1024),
    )

    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert logged(caplog, "e-mail", "limit")
    assert stored_rows(tenant) == before


def test_an_email_over_the_size_limit_without_a_length_is_a_413(tenant, mail_inbox, caplog, settings):
    from channels_app.adapters.email.services import MAX_MESSAGE_BYTES

    before = stored_rows(tenant)
    raw = mail().as_bytes() + b"x" * (MAX_MESSAGE_BYTES + 1 - len(mail().as_bytes()) + 1)

    response = post_raw(raw, mail_inbox)

    assert response.status_code == 413
    assert logged(caplog, "e-mail", "limit")
    assert stored_rows(tenant) == before


def _mail_with_file(content: bytes, filename: str, maintype: str, subtype: str, **part_headers) -> bytes:
    message = mail()
    message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    part = list(message.iter_attachments())[-1]
    for name, value in part_headers.items():
        part[name.replace("_", "-")] = value
    return message.as_bytes()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 20_000_000)
    return buffer.getvalue()


@pytest.mark.parametrize(("filename", "maintype", "subtype", "part_headers", "payload"), [
    ("bomb.gz", "application", "gzip", {}, lambda: gzip.compress(b"\0" * 20_000_000)),
    ("bomb.zip", "application", "zip", {}, _zip_bomb),
    # A MIME part that claims an HTTP-style encoding: mail has no such thing, so nothing may inflate it.
    ("report.txt", "text", "plain", {"Content_Encoding": "gzip"}, lambda: gzip.compress(b"A" * 20_000_000)),
], ids=["gzip", "zip", "content-encoding-part"])
def test_a_compressed_attachment_is_stored_as_sent_and_never_expanded(
    tenant, mail_inbox, filename, maintype, subtype, part_headers, payload
):
    compressed = payload()
    assert len(compressed) < 100_000  # the point: a tiny upload that would expand to 20 MB

    response = post_raw(_mail_with_file(compressed, filename, maintype, subtype, **part_headers), mail_inbox)

    assert response.status_code == 202, response.content
    stored = Attachment.objects.get(tenant=tenant, filename=filename)
    assert stored.size == len(compressed)
    assert stored.file.read() == compressed


def test_a_gzip_encoded_request_body_is_not_inflated(tenant, mail_inbox, caplog):
    before = stored_rows(tenant)

    response = Client().post(
        f"/hooks/email/{mail_inbox.key}/", data=gzip.compress(mail().as_bytes() * 1000),
        content_type="message/rfc822", HTTP_CONTENT_ENCODING="gzip", HTTP_X_OMNIDESK_SECRET=WEBHOOK_SECRET,
    )

    assert response.status_code == 400
    assert logged(caplog, "e-mail", "not an e-mail")
    assert stored_rows(tenant) == before


WRONG_CHARSETS = {
    "body-not-the-declared-utf8": (
        b"From: Jane <jane@example.org>\r\nTo: support@acme.test\r\nSubject: Hi\r\nMessage-ID: <c1@example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 \xff\xfe broken\r\n"
    ),
    "unknown-charset": (
        b"From: Jane <jane@example.org>\r\nTo: support@acme.test\r\nSubject: Hi\r\nMessage-ID: <c2@example.org>\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nHello \xe9\r\n"
    ),
    "raw-8bit-headers": (
        b"From: Jos\xe9 \xff <jose@example.org>\r\nTo: support@acme.test\r\nSubject: R\xe9sum\xe9 \xc3\x28\r\n"
        b"Message-ID: <c3@example.org>\r\n\r\nHello\r\n"
    ),
    "invalid-encoded-word": (
        b"From: =?utf-8?b?/+4=?= <jane@example.org>\r\nTo: support@acme.test\r\nSubject: =?utf-8?q?bad=FF=FE?=\r\n"
        b"Message-ID: <c4@example.org>\r\n\r\nHello\r\n"
    ),
    "nul-bytes": (
        b"From: =?utf-8?q?Ja=00ne?= <jane@example.org>\r\nTo: support@acme.test\r\nSubject: =?utf-8?q?a=00b?=\r\n"
        b"Message-ID: <c5@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnul \x00 here\r\n"
    ),
}


@pytest.mark.parametrize("raw", WRONG_CHARSETS.values(), ids=WRONG_CHARSETS.keys())
def test_an_email_with_a_wrong_charset_or_nul_bytes_is_stored_as_clean_text(tenant, mail_inbox, raw):
    # Real mail gets charsets wrong all the time: refusing it would lose a customer's message.
    response = post_raw(raw, mail_inbox)

    assert response.status_code == 202, response.content
    entry = TimelineEntry.objects.get(tenant=tenant, channel=Channel.EMAIL)
    texts = [entry.body, entry.conversation.subject, entry.customer.name]
    assert all("\x00" not in text for text in texts)
    assert entry.body.strip()


# ------------------------------------------------------------------------------------------------ Twilio


def _twilio_post(client, inbox, form, *, token=AUTH_TOKEN, signature=None):
    path = f"/hooks/twilio/{inbox.key}/messages/"
    signature = signature if signature is not None else sign("http://testserver" + path, form, token)
    return client.post(path, data=form, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.parametrize("signature", ["", "forged", "AAAA" * 7, None], ids=["missing", "garbage", "wrong", "other-token"])
def test_a_forged_twilio_signature_is_a_403_and_stores_nothing(client, tenant, caplog, signature):
    inbox = twilio_inbox(tenant)
    before = stored_rows(tenant)
    form = inbound_form()

    if signature is None:
        response = _twilio_post(client, inbox, form, token="another-accounts-token")
    else:
        response = _twilio_post(client, inbox, form, signature=signature)
    worker_stores_receipts()

    assert response.status_code == 403
    assert logged(caplog, "rejected", "sms")
    assert stored_rows(tenant) == before


def test_a_signature_for_other_values_does_not_cover_changed_ones(client, tenant, caplog):
    inbox = twilio_inbox(tenant)
    form = inbound_form()
    path = f"/hooks/twilio/{inbox.key}/messages/"
    signature = sign("http://testserver" + path, form)

    response = client.post(path, data={**form, "Body": "Send me a refund"}, HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 403
    assert InboundReceipt.objects.filter(tenant=tenant).count() == 0


@pytest.mark.parametrize("body", ["nul \x00 inside", "\x00"], ids=["nul", "only-nul"])
def test_twilio_text_postgres_cannot_hold_is_never_a_500(client, tenant, body):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body=body)

    response = _twilio_post(client, inbox, form)
    worker_stores_receipts()

    assert response.status_code in (200, 400), response.content
    assert all("\x00" not in text for text in TimelineEntry.objects.filter(tenant=tenant).values_list("body", flat=True))


def test_invalid_utf8_in_a_twilio_form_is_stored_with_replacement_characters(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(Body="caf\ufffd\ufffd")  # what Django decodes b"caf%FF%FE" to, and so what Twilio signed
    path = f"/hooks/twilio/{inbox.key}/messages/"
    raw = "&".join(f"{k}={v}" for k, v in form.items() if k != "Body").replace("+", "%2B") + "&Body=caf%FF%FE"

    response = client.post(path, data=raw, content_type="application/x-www-form-urlencoded",
                           HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + path, form))
    worker_stores_receipts()

    assert response.status_code == 200, response.content
    assert TimelineEntry.objects.get(tenant=tenant).body == "caf\ufffd\ufffd"


def test_a_replayed_twilio_webhook_is_stored_once(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form()

    first = _twilio_post(client, inbox, form)
    second = _twilio_post(client, inbox, form)  # Twilio's retry: same MessageSid, same signature
    worker_stores_receipts()
    # An old signed request replayed later, after the message was stored and worked on.
    third = _twilio_post(client, inbox, form)
    worker_stores_receipts()

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 200)
    assert TimelineEntry.objects.filter(tenant=tenant, external_id=form["MessageSid"]).count() == 1
    assert Conversation.objects.filter(tenant=tenant).count() == 1


def test_a_twilio_form_for_another_account_is_refused(client, tenant):
    inbox = twilio_inbox(tenant)
    form = inbound_form(AccountSid="AC" + "b" * 32)
    assert form["AccountSid"] != ACCOUNT_SID

    response = _twilio_post(client, inbox, form)
    worker_stores_receipts()

    assert response.status_code in (400, 403)
    assert TimelineEntry.objects.filter(tenant=tenant).count() == 0


# ------------------------------------------------------------------------------------------------ API channel


def _api_post(inbox, body: bytes, *, secret=API_SECRET, signature=None):
    signature = signature if signature is not None else api_sign(secret, body)
    return Client().post(f"/hooks/api/{inbox.key}/messages/", data=body, content_type="application/json",
                         HTTP_X_OMNIDESK_SIGNATURE=signature)


def _api_message(**fields) -> dict:
    return {"external_id": "m-1", "customer": {"identifier": "u-42", "name": "Bot user"}, "text": "Hello", **fields}


API_BAD_BODIES = {
    "invalid-utf8": b'{"external_id": "m-1", "customer": {"identifier": "u-42"}, "text": "caf\xff\xfe"}',
    "latin1-declared-as-json": '{"external_id": "m-1", "customer": {"identifier": "u-42"}, "text": "Café"}'.encode("latin-1"),
    "nul-in-text": json.dumps(_api_message(text="a\x00b")).encode(),
    "nul-in-name": json.dumps(_api_message(customer={"identifier": "u-42", "name": "A\x00"})).encode(),
    "nul-in-identifier": json.dumps(_api_message(customer={"identifier": "u\x0042"})).encode(),
    "nul-in-external-id": json.dumps(_api_message(external_id="m\x001")).encode(),
    "lone-surrogate": b'{"external_id": "m-1", "customer": {"identifier": "u-42"}, "text": "\\ud800"}',
    "gzip-body": gzip.compress(json.dumps(_api_message()).encode()),
    "not-an-object": b'"just a string"',
}


@pytest.mark.parametrize("body", API_BAD_BODIES.values(), ids=API_BAD_BODIES.keys())
def test_bad_api_channel_bodies_are_a_400_with_a_reason_and_store_nothing(tenant, body, caplog):
    inbox = make_api_inbox(tenant)
    before = stored_rows(tenant)

    response = _api_post(inbox, body)

    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert logged(caplog, "api")
    assert stored_rows(tenant) == before


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha256=nothex", "md5=abc"])
def test_a_forged_api_channel_signature_is_a_403(tenant, signature, caplog):
    inbox = make_api_inbox(tenant)
    before = stored_rows(tenant)

    response = _api_post(inbox, json.dumps(_api_message()).encode(), signature=signature)

    assert response.status_code == 403
    assert logged(caplog, "rejected", "api")
    assert stored_rows(tenant) == before


def test_a_replayed_api_channel_message_is_stored_once(tenant):
    inbox = make_api_inbox(tenant)
    body = json.dumps(_api_message()).encode()

    answers = [_api_post(inbox, body).status_code for _ in range(3)]

    assert all(status in (200, 201) for status in answers)
    assert TimelineEntry.objects.filter(tenant=tenant, external_id="m-1").count() == 1


# ------------------------------------------------------------------------------------------------ web chat


CHAT_BAD_BODIES = {
    "invalid-utf8": b'{"body": "caf\xff\xfe", "client_id": "c-1"}',
    "nul-client-id": json.dumps({"body": "hello", "client_id": "c\x001"}).encode(),
    "lone-surrogate": b'{"body": "\\udfff", "client_id": "c-1"}',
}


@pytest.mark.parametrize("body", CHAT_BAD_BODIES.values(), ids=CHAT_BAD_BODIES.keys())
def test_bad_chat_messages_are_a_400_and_store_nothing(client, tenant, body, caplog):
    inbox = chat_inbox_for(tenant)
    token = start(client, inbox)["visitor_token"]
    before = stored_rows(tenant)

    response = chat_post(client, inbox, "messages", body, token=token)

    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert stored_rows(tenant) == before


def test_nul_and_surrogates_in_a_chat_message_are_dropped_from_the_text(client, tenant):
    inbox = chat_inbox_for(tenant)
    token = start(client, inbox)["visitor_token"]

    response = chat_post(client, inbox, "messages", b'{"body": "a\\u0000b\\udfffc", "client_id": "c-1"}', token=token)

    assert response.status_code == 201, response.content
    assert TimelineEntry.objects.get(tenant=tenant).body == "abc"


def test_nul_and_surrogates_in_a_chat_visitor_name_are_dropped(client, tenant):
    inbox = chat_inbox_for(tenant)

    session = chat_post(client, inbox, "session", b'{"visitor_token": null, "name": "An\\u0000n\\udcff"}')
    response = chat_post(client, inbox, "messages", {"body": "hi", "client_id": "c-1"},
                         token=session.json()["visitor_token"])

    assert (session.status_code, response.status_code) == (200, 201), session.content
    assert Customer.objects.get(tenant=tenant).name == "Ann"


@pytest.mark.parametrize("token", ["", "forged-token", "x" * 5000, "\x00"])
def test_a_forged_chat_visitor_token_is_a_401(client, tenant, token):
    inbox = chat_inbox_for(tenant)
    before = stored_rows(tenant)

    response = chat_post(client, inbox, "messages", {"body": "hi", "client_id": "c-1"}, token=token or None)

    assert response.status_code == 401
    assert stored_rows(tenant) == before


def test_a_forged_chat_identity_hash_is_refused(client, tenant, caplog):
    inbox = chat_inbox_for(tenant)
    before = stored_rows(tenant)

    response = chat_post(client, inbox, "session", {"visitor_token": None, "user_id": "7", "user_hash": "0" * 64})

    assert response.status_code == 403
    assert stored_rows(tenant) == before


# ------------------------------------------------------------------------------------------------ search boxes


@pytest.fixture
def searchable(tenant, other_tenant, sms_inbox):
    """One conversation here and a secret one in another tenant that no search may reveal."""
    from tests.factories import InboxFactory

    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="my order", sender_name="Ann",
        external_id="S1"))
    theirs = InboxFactory(tenant=other_tenant, channel=Channel.SMS, address="+15550109999")
    message_record_inbound(tenant=other_tenant, inbox=theirs, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+442071838750", body="globex secret order",
        sender_name="Globex Person", external_id="S2"))


@pytest.mark.parametrize("query", SQL_LOOKING)
def test_workspace_search_and_filters_take_any_string(client, agent, searchable, query):
    client.force_login(agent)

    answers = [client.get("/app/", {param: query}) for param in ("q", "tag", "channel", "sort", "after", "view")]

    assert [response.status_code for response in answers] == [200] * len(answers)
    assert not any(b"Globex Person" in response.content for response in answers)


@pytest.mark.parametrize("path", [
    "/api/v1/customers/?q=", "/api/v1/conversations/?tag=", "/api/v1/conversations/?assignee=",
    "/api/v1/conversations/?status=", "/api/v1/conversations/?updated_since=", "/api/v1/conversations/?cursor=",
])
def test_api_filters_take_any_string(client, agent, searchable, path):
    from urllib.parse import quote

    client.force_login(agent)

    answers = [client.get(path + quote(query)) for query in SQL_LOOKING]

    assert {response.status_code for response in answers} <= {200, 400, 404}
    assert not any(b"Globex" in response.content for response in answers)


@pytest.mark.parametrize("path", [
    "/admin/customers/customer/", "/admin/conversations/conversation/", "/admin/conversations/timelineentry/",
    "/admin/conversations/attachment/", "/admin/channels_app/inbox/", "/admin/customers/identity/",
])
def test_admin_search_takes_any_string(client, tenant_admin, searchable, path):
    client.force_login(tenant_admin)

    answers = [client.get(path, {"q": query}) for query in SQL_LOOKING]

    assert [response.status_code for response in answers] == [200] * len(answers)
    assert not any(b"Globex Person" in response.content for response in answers)


REPORT_PARAMETERS = ["kpi", "weekday", "hour", "channel", "inbox", "since", "until", "page", "team", "agent", "kind"]


@pytest.mark.parametrize("path", ["/analytics/reports/", "/analytics/reports/conversations/", "/analytics/reports/export.csv"])
def test_analytics_report_parameters_take_any_string(client, supervisor, searchable, path):
    client.force_login(supervisor)

    answers = [client.get(path, dict.fromkeys(REPORT_PARAMETERS, query)) for query in SQL_LOOKING]
    answers += [client.get(path, {param: "' OR 1=1 --\x00"}) for param in REPORT_PARAMETERS]

    assert {response.status_code for response in answers} <= {200, 400}


# ------------------------------------------------------------------------------------------------ workspace forms


@pytest.fixture
def conversation(tenant, sms_inbox, agent):
    result = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="hello", external_id="F1"))
    return result.conversation


@pytest.mark.parametrize(("path", "fields"), [
    ("notes/", {"body": "note \x00 with nul"}),
    ("reply/", {"body": "reply \x00", "channel": "sms"}),
    ("details/", {"priority": "normal", "tags": "vip,\x00bad"}),
    ("status/", {"status": "pending\x00"}),
    ("assign/", {"assignee": "\x00", "team": ""}),
    ("merge/", {"other": "1\x00"}),
], ids=["note", "reply", "tags", "status", "assign", "merge"])
def test_nul_bytes_in_workspace_forms_are_form_errors_not_500s(client, tenant, agent, conversation, path, fields):
    client.force_login(agent)
    entries_before = TimelineEntry.objects.filter(tenant=tenant).count()

    response = client.post(f"/app/conversations/{conversation.number}/{path}", fields)

    assert response.status_code in (200, 302, 400), response.status_code
    assert TimelineEntry.objects.filter(tenant=tenant).count() == entries_before
    conversation.refresh_from_db()
    assert all("\x00" not in tag for tag in conversation.tags)


def test_nul_bytes_in_a_customer_address_are_a_form_error(client, tenant, agent, conversation):
    client.force_login(agent)
    before = stored_rows(tenant)

    response = client.post(f"/app/customers/{conversation.customer_id}/identities/", {"kind": "email", "value": "a\x00@b.c"})

    assert response.status_code in (200, 302, 400)
    assert stored_rows(tenant) == before


def test_nul_bytes_at_login_are_a_form_error(client, agent):
    response = client.post("/accounts/login/", {"username": "agent@acme.test\x00", "password": "x\x00"})

    assert response.status_code == 200
    assert b"Null characters are not allowed" in response.content


# ------------------------------------------------------------------------------------------------ rendering

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">"><svg onload=alert(1)>'


@pytest.fixture
def hostile_conversation(tenant, sms_inbox, agent):
    from conversations.services import attachment_store, conversation_update

    result = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body=f"body {PAYLOAD}",
        sender_name=f"name {PAYLOAD}", subject=f"subject {PAYLOAD}", external_id="X1"))
    attachment_store(tenant=tenant, entry=result.entry, filename='file"><img src=x onerror=alert(1)>.txt',
                     content=b"x", content_type="text/plain")
    note_add(tenant=tenant, conversation=result.conversation, author=agent, body=f"note {PAYLOAD}")
    conversation_update(tenant=tenant, conversation=result.conversation, actor=agent, tags=['<b onmouseover="x">'])
    return result.conversation


def test_every_rendered_text_field_is_escaped(client, agent, hostile_conversation):
    client.force_login(agent)
    pages = [
        "/app/",
        f"/app/conversations/{hostile_conversation.number}/",
        f"/app/customers/{hostile_conversation.customer_id}/",
        "/app/?q=order",
    ]

    for page in pages:
        html = client.get(page).content.decode()
        assert "<script>window.__pwned" not in html, page
        assert "onerror=" not in html.replace("onerror=&quot;", "").replace("onerror=alert(1)&gt;", ""), page
        assert "<svg onload" not in html, page
        assert "<b onmouseover" not in html, page
    detail = client.get(f"/app/conversations/{hostile_conversation.number}/").content.decode()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in detail
