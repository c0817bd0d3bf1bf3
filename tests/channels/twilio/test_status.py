from __future__ import annotations

import pytest

from channels_app.services import message_deliver, reply_send

from .conftest import customer_writes, post_signed, twilio_inbox

pytestmark = pytest.mark.django_db


def sent_reply(client, tenant, agent, inbox):
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hi")
    message_deliver(entry_id=reply.pk)
    reply.refresh_from_db()
    return reply


def callback(client, inbox, sid: str, status: str, query: str = "", **extra):
    path = f"/hooks/twilio/{inbox.key}/status/{query}"
    return post_signed(client, path, {"MessageSid": sid, "MessageStatus": status, **extra})


def test_it_moves_a_message_forward_only(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    reply = sent_reply(client, tenant, agent, inbox)
    statuses = []
    for status in ("delivered", "sent", "read", "delivered"):
        assert callback(client, inbox, reply.external_id, status).status_code == 200
        reply.refresh_from_db()
        statuses.append(reply.delivery_status)
    assert statuses == ["delivered", "delivered", "read", "read"]


def test_it_records_undelivered_with_a_human_explanation(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    reply = sent_reply(client, tenant, agent, inbox)
    callback(client, inbox, reply.external_id, "undelivered", ErrorCode="30003", ErrorMessage="Unreachable")
    reply.refresh_from_db()
    assert (reply.delivery_status, reply.error_code) == ("failed", "30003")
    assert reply.failure_reason == (
        "The customer's phone is unreachable (switched off or out of coverage). (Twilio error 30003)"
    )


def test_it_ignores_an_unknown_message_sid_with_200(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    reply = sent_reply(client, tenant, agent, inbox)
    response = callback(client, inbox, "SM" + "0" * 32, "delivered")
    reply.refresh_from_db()
    assert (response.status_code, reply.delivery_status) == (200, "sent")


def test_it_rejects_an_unsigned_callback(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    reply = sent_reply(client, tenant, agent, inbox)
    response = client.post(f"/hooks/twilio/{inbox.key}/status/", {"MessageSid": reply.external_id, "MessageStatus": "failed"})
    reply.refresh_from_db()
    assert (response.status_code, reply.delivery_status) == (403, "sent")


def test_it_never_touches_another_tenants_message(client, tenant, other_tenant, agent, outsider, fake_twilio):
    theirs_inbox = twilio_inbox(other_tenant, address="+14155552671", token="test-auth-token-acme")
    theirs = sent_reply(client, other_tenant, outsider, theirs_inbox)
    ours = twilio_inbox(tenant)
    response = callback(client, ours, theirs.external_id, "failed", query=f"?entry={theirs.pk}", ErrorCode="30005")
    theirs.refresh_from_db()
    assert (response.status_code, theirs.delivery_status) == (200, "sent")


def test_it_finds_a_message_whose_sid_is_not_recorded_yet(client, tenant, agent, fake_twilio):
    inbox = twilio_inbox(tenant)
    inbound = customer_writes(client, inbox)
    reply = reply_send(tenant=tenant, conversation=inbound.conversation, author=agent, channel="sms", body="Hi")
    sid = "SM" + "1" * 32
    callback(client, inbox, sid, "delivered", query=f"?entry={reply.pk}")
    reply.refresh_from_db()
    assert (reply.delivery_status, reply.external_id) == ("delivered", sid)


def test_it_answers_400_without_a_status(client, tenant):
    inbox = twilio_inbox(tenant)
    assert callback(client, inbox, "SM" + "0" * 32, "").status_code == 400
