from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from django.core.exceptions import ValidationError

from channels_app.adapters.api.services import api_message_resend
from channels_app.models import Channel, DeliveryAttempt
from channels_app.services import message_deliver, reply_send
from conversations.models import DeliveryStatus, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from tests.channels.api.conftest import SECRET, make_api_inbox, message, post_signed


def customer_writes(tenant, inbox, external_id: str = "m-1"):
    inbound = InboundMessage(
        channel=Channel.API, sender_kind="external", sender_value="u-42", body="Hi", external_id=external_id,
        data={"from": "u-42"},
    )
    return message_record_inbound(tenant=tenant, inbox=inbox, message=inbound).conversation


def reply(tenant, conversation, agent, body: str = "How can I help?"):
    return reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.API, body=body)


def test_the_reply_is_posted_as_signed_json_the_receiver_can_verify(tenant, agent, api_inbox, receiver):
    agent.first_name, agent.last_name = "Ann", "Agent"
    agent.save()
    conversation = customer_writes(tenant, api_inbox)
    entry = reply(tenant, conversation, agent)

    message_deliver(entry_id=entry.pk)

    [request] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Omnidesk-Signature"] == expected
    assert request.headers["X-Omnidesk-Delivery"] == str(entry.pk)
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == "/omnidesk/events"
    body = request.json()
    assert abs(int(request.headers["X-Omnidesk-Timestamp"]) - time.time()) < 60
    assert body == {
        "event": "message.created", "message_id": entry.pk, "conversation": conversation.number,
        "customer": {"id": conversation.customer_id, "identifier": "u-42"}, "text": "How can I help?",
        "author": {"id": agent.pk, "name": "Ann Agent"}, "created_at": entry.created_at.isoformat(),
        "timestamp": int(request.headers["X-Omnidesk-Timestamp"]),
    }


def test_a_2xx_marks_it_sent_with_the_receivers_id(tenant, agent, api_inbox, receiver):
    receiver.answer(202, b'{"id": "bot-msg-9"}')
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert (entry.delivery_status, entry.external_id) == (DeliveryStatus.SENT, "bot-msg-9")
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry)
    assert (attempt.succeeded, attempt.provider_id, attempt.number) == (True, "bot-msg-9", 1)
    assert attempt.latency_ms is not None


@pytest.mark.parametrize("answer", [b"", b"OK", b'{"id": null}', b'["x"]', b'{"id": true}'])
def test_without_a_usable_id_in_the_answer_the_provider_id_is_made_up(tenant, agent, api_inbox, receiver, answer):
    receiver.answer(200, answer)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert (entry.delivery_status, entry.external_id) == (DeliveryStatus.SENT, f"api-{entry.pk}")


def test_a_receiver_repeating_an_id_does_not_break_recording(tenant, agent, api_inbox, receiver):
    receiver.answer(200, b'{"id": "same"}')
    receiver.answer(200, b'{"id": "same"}')
    conversation = customer_writes(tenant, api_inbox)
    first, second = reply(tenant, conversation, agent), reply(tenant, conversation, agent, "Anything else?")

    message_deliver(entry_id=first.pk)
    message_deliver(entry_id=second.pk)

    second.refresh_from_db()
    assert (second.delivery_status, second.external_id) == (DeliveryStatus.SENT, f"api-{second.pk}")


def test_a_500_is_retried_and_the_receiver_gets_one_successful_delivery(tenant, agent, api_inbox, receiver):
    receiver.answer(500, b"database is down")
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    delay = message_deliver(entry_id=entry.pk)
    entry.refresh_from_db()
    status_between = entry.delivery_status
    message_deliver(entry_id=entry.pk)

    assert (delay, status_between) == (10, DeliveryStatus.QUEUED)
    assert [r.status for r in receiver.requests] == [500, 200]
    assert len(receiver.successes) == 1
    assert {r.headers["X-Omnidesk-Delivery"] for r in receiver.requests} == {str(entry.pk)}
    failed, succeeded = DeliveryAttempt.objects.for_tenant(tenant).filter(entry=entry)
    assert (failed.status_code, failed.response_snippet, failed.succeeded, failed.permanent_failure) == (
        500, "database is down", False, False,
    )
    assert succeeded.succeeded
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.SENT


def test_a_delivery_that_is_already_sent_is_not_sent_again(tenant, agent, api_inbox, receiver):
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    message_deliver(entry_id=entry.pk)
    message_deliver(entry_id=entry.pk)

    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_transient_http_answers_are_retried(tenant, agent, api_inbox, receiver, status):
    receiver.answer(status)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    delay = message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert (delay, entry.delivery_status) == (10, DeliveryStatus.QUEUED)
    assert DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry).status_code == status


def test_a_timeout_is_retried_with_the_same_delivery_id_so_the_receiver_can_drop_the_repeat(
    tenant, agent, receiver
):
    inbox = make_api_inbox(tenant, outbound_url=receiver.url)
    inbox.settings["timeout_seconds"] = 1
    inbox.save()
    receiver.answer(200, b"{}", delay=1.5)
    entry = reply(tenant, customer_writes(tenant, inbox), agent)

    delay = message_deliver(entry_id=entry.pk)
    message_deliver(entry_id=entry.pk)

    assert delay == 10
    assert [r.headers["X-Omnidesk-Delivery"] for r in receiver.requests] == [str(entry.pk), str(entry.pk)]
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry, number=1)
    assert (attempt.status_code, attempt.permanent_failure) == (None, False)
    assert "timed out" in attempt.error


def test_an_unreachable_receiver_is_retried(tenant, agent):
    inbox = make_api_inbox(tenant, outbound_url="http://127.0.0.1:9/nothing-listens-here")
    entry = reply(tenant, customer_writes(tenant, inbox), agent)

    delay = message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert (delay, entry.delivery_status) == (10, DeliveryStatus.QUEUED)
    assert "Could not reach" in DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry).error


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
def test_other_answers_fail_the_message_for_good_with_the_reason(tenant, agent, api_inbox, receiver, status):
    receiver.answer(status, b'{"error": "unknown user u-42"}')
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)

    delay = message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert delay is None
    assert (entry.delivery_status, entry.error_code) == (DeliveryStatus.FAILED, f"http_{status}")
    assert entry.failure_reason == f"The receiver answered HTTP {status}. It will not be retried."
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry)
    assert (attempt.status_code, attempt.permanent_failure, attempt.response_snippet) == (
        status, True, '{"error": "unknown user u-42"}',
    )
    assert len(receiver.requests) == 1


def test_a_reply_is_refused_before_storing_when_the_inbox_has_no_outbound_url(tenant, agent):
    inbox = make_api_inbox(tenant, outbound_url="")
    conversation = customer_writes(tenant, inbox)

    with pytest.raises(ValidationError, match="has no outbound URL"):
        reply(tenant, conversation, agent)

    assert not TimelineEntry.objects.for_tenant(tenant).filter(direction="outbound").exists()


def test_a_reply_is_refused_when_the_outbound_url_is_not_http(tenant, agent):
    inbox = make_api_inbox(tenant, outbound_url="ftp://example.com/x")

    with pytest.raises(ValidationError, match="not http"):
        reply(tenant, customer_writes(tenant, inbox), agent)


def test_a_failed_message_can_be_resent_and_is_delivered(tenant, agent, api_inbox, receiver, celery_eager,
                                                          django_capture_on_commit_callbacks):
    receiver.answer(400)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)

    with django_capture_on_commit_callbacks(execute=True):
        api_message_resend(tenant=tenant, entry=entry, actor=agent)

    entry.refresh_from_db()
    assert (entry.delivery_status, entry.failure_reason) == (DeliveryStatus.SENT, "")
    assert [r.status for r in receiver.requests] == [400, 200]
    assert list(DeliveryAttempt.objects.for_tenant(tenant).filter(entry=entry).values_list("number", "succeeded")) == [
        (1, False), (2, True),
    ]
    assert TimelineEntry.objects.for_tenant(tenant).filter(event="message_resent", author=agent).exists()


def test_only_failed_messages_can_be_resent(tenant, agent, api_inbox, receiver):
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)

    with pytest.raises(ValidationError, match="Only a failed outbound API message"):
        api_message_resend(tenant=tenant, entry=entry)


def test_another_tenant_cannot_resend_a_message(tenant, other_tenant, agent, api_inbox, receiver):
    receiver.answer(400)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)

    with pytest.raises(ValidationError):
        api_message_resend(tenant=other_tenant, entry=entry)

    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.FAILED


def test_admin_shows_each_attempts_status_code_latency_and_response(client, tenant, tenant_admin, agent, api_inbox, receiver):
    receiver.answer(503, b"upstream overloaded")
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry)
    client.force_login(tenant_admin)

    listing = client.get("/admin/channels_app/deliveryattempt/").content.decode()
    detail = client.get(f"/admin/channels_app/deliveryattempt/{attempt.pk}/change/").content.decode()

    assert "503" in listing
    assert "The receiver answered HTTP 503." in listing
    assert "upstream overloaded" in detail
    assert f"{attempt.latency_ms}" in detail


def test_admin_resends_a_failed_api_message_from_its_attempts(client, tenant, tenant_admin, agent, api_inbox, receiver,
                                                              celery_eager, django_capture_on_commit_callbacks):
    receiver.answer(404)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry)
    client.force_login(tenant_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/channels_app/deliveryattempt/", {
            "action": "resend_failed_api_messages", "_selected_action": [attempt.pk],
        })

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.SENT
    assert len(receiver.successes) == 1


@pytest.mark.django_db(transaction=True)
def test_end_to_end_a_message_in_and_a_reply_out_through_a_real_worker(client, tenant, agent, receiver, celery_worker_live):
    inbox = make_api_inbox(tenant, outbound_url=receiver.url)
    response = post_signed(client, inbox, message())
    conversation = TimelineEntry.objects.for_tenant(tenant).get(pk=response.json()["message_id"]).conversation

    entry = reply(tenant, conversation, agent, "Hello from a human")
    receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while TimelineEntry.objects.get(pk=entry.pk).delivery_status != DeliveryStatus.SENT and time.monotonic() < deadline:
        time.sleep(0.05)

    assert response.status_code == 201
    assert [r.json()["text"] for r in receiver.requests] == ["Hello from a human"]
    assert TimelineEntry.objects.get(pk=entry.pk).delivery_status == DeliveryStatus.SENT


def test_an_admin_of_another_tenant_cannot_resend_our_messages(client, tenant, outsider, agent, api_inbox, receiver,
                                                               celery_eager, django_capture_on_commit_callbacks):
    receiver.answer(404)
    entry = reply(tenant, customer_writes(tenant, api_inbox), agent)
    message_deliver(entry_id=entry.pk)
    attempt = DeliveryAttempt.objects.for_tenant(tenant).get(entry=entry)
    client.force_login(outsider)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/channels_app/deliveryattempt/", {
            "action": "resend_failed_api_messages", "_selected_action": [attempt.pk],
        })

    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.FAILED
    assert len(receiver.requests) == 1
