"""Drill: the outbound provider is down (errors, then timeouts), then recovers.

Agent replies are stored as queued before the provider is called; a real Celery worker (in a thread) retries
them; when the provider is back each is delivered exactly once, counted at the provider. The retry backoff
(10 s, 20 s, 40 s …, unit-tested in tests/channels) is shortened to a fraction of a second here so the drill
takes seconds; everything else is the production path. The Twilio drills run in every suite run (`.ci/run`);
the SMTP one with the other drills (`make drills`).
"""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes

import pytest

from channels_app import services
from channels_app.models import Channel, DeliveryAttempt
from channels_app.services import reply_send
from channels_app.tasks import deliver_message
from conversations.models import DeliveryStatus, TimelineEntry
from tests.channels.email.conftest import SmtpRecorder
from tests.channels.email.conftest import free_port as smtp_port
from tests.channels.email.mails import WEBHOOK_SECRET, mail, post_raw
from tests.channels.twilio.conftest import inbound_form, sign, twilio_inbox
from tests.drills.conftest import wait_until
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(services, "retry_delay", lambda attempt: 0.2)


@pytest.fixture
def unanswered_port():
    """A port whose accept queue is full: connecting times out, as with a provider that has fallen over."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def customer_writes(client, inbox, **fields) -> TimelineEntry:
    """A signed inbound SMS; the running worker stores it."""
    form = inbound_form(**fields)
    path = f"/hooks/twilio/{inbox.key}/messages/"
    assert client.post(path, data=form, HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + path, form)).status_code == 200
    stored = TimelineEntry.objects.for_tenant(inbox.tenant_id).filter(inbox=inbox, external_id=form["MessageSid"])
    assert wait_until(stored.exists)
    return stored.get()


def attempts(entry: TimelineEntry) -> list[DeliveryAttempt]:
    return list(DeliveryAttempt.objects.for_tenant(entry.tenant_id).filter(entry=entry).order_by("number"))


def status_of(entry: TimelineEntry) -> str:
    return TimelineEntry.objects.for_tenant(entry.tenant_id).values_list("delivery_status", flat=True).get(pk=entry.pk)


def every_reply_has(replies, predicate) -> bool:
    return all(predicate(attempts(reply)) for reply in replies)


def reply_after_the_queue_drains(tenant, agent, conversation, channel: str) -> TimelineEntry:
    """One more reply, waited for until sent: the one-process worker takes tasks in order, so every task
    enqueued before it has run by then."""
    marker = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=channel, body="Queue drained")
    assert wait_until(lambda: status_of(marker) == DeliveryStatus.SENT)
    return marker


def test_twilio_errors_then_timeouts_then_recovery_deliver_each_reply_exactly_once(
    client, tenant, agent, fake_twilio, settings, celery_worker_live, quick_retries, unanswered_port
):
    inbox = twilio_inbox(tenant)
    conversations = [customer_writes(client, inbox, From=f"+120255501{i:02d}").conversation for i in range(3)]
    fake_twilio.answer(*[("error", 503, 20500, "Service Unavailable")] * 10_000)

    replies = [
        reply_send(tenant=tenant, conversation=c, author=agent, channel=Channel.SMS, body=f"Reply {i} during the outage")
        for i, c in enumerate(conversations)
    ]
    assert wait_until(lambda: every_reply_has(replies, lambda tries: sum(t.status_code == 503 for t in tries) >= 2))
    assert {status_of(r) for r in replies} <= {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}

    # Now Twilio stops accepting connections at all: connect timeouts, which provably sent nothing.
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{unanswered_port}"
    assert wait_until(lambda: every_reply_has(replies, lambda tries: "Could not reach Twilio" in tries[-1].error))
    assert {status_of(r) for r in replies} <= {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}

    with fake_twilio.lock:
        fake_twilio.script.clear()
    settings.TWILIO_API_BASE_URL = fake_twilio.url
    assert wait_until(lambda: {status_of(r) for r in replies} == {DeliveryStatus.SENT})

    # The sweeper (and a broker redelivering an unacknowledged task) may hand a message over again:
    # nothing sent goes out twice.
    for reply in replies:
        deliver_message.delay(reply.pk)
    marker = reply_after_the_queue_drains(tenant, agent, conversations[0], Channel.SMS)

    accepted_bodies = [r["form"]["Body"] for r in fake_twilio.accepted()]
    assert sorted(accepted_bodies) == sorted([*(r.body for r in replies), marker.body])
    assert [sum(t.succeeded for t in attempts(r)) for r in replies] == [1, 1, 1]
    assert all(attempts(r)[-1].succeeded for r in replies)


def test_a_twilio_request_that_times_out_unanswered_is_failed_honestly_never_sent_twice(
    client, tenant, agent, fake_twilio, celery_worker_live, quick_retries
):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    fake_twilio.answer(("hang", 1.5))

    reply = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.SMS, body="Did this go?")

    assert wait_until(lambda: status_of(reply) == DeliveryStatus.FAILED)
    deliver_message.delay(reply.pk)  # a redelivered task finds nothing to claim
    reply_after_the_queue_drains(tenant, agent, conversation, Channel.SMS)
    reply.refresh_from_db()
    assert "may or may not have gone out" in reply.failure_reason
    assert [r["form"]["Body"] for r in fake_twilio.creates()] == ["Did this go?", "Queue drained"]
    assert len(attempts(reply)) == 1


class FlakySmtp(SmtpRecorder):
    """SMTP that answers 451 to every message ("refusing"), or takes the message and never answers
    ("hanging", the client's timeout fires), or works ("up")."""

    mode = "up"
    hang_seconds = 3.0

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "refusing":
            return "451 4.3.0 Mail server temporarily unavailable"
        if self.mode == "hanging":
            await asyncio.sleep(self.hang_seconds)
            return "451 4.3.0 Timed out"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    from channels_app.adapters.email import adapter as email_adapter

    monkeypatch.setattr(email_adapter, "SMTP_TIMEOUT_SECONDS", 0.5)
    handler = FlakySmtp()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.mark.drill
def test_smtp_refusals_then_timeouts_then_recovery_deliver_each_mail_exactly_once(
    tenant, agent, flaky_smtp, celery_worker_live, quick_retries
):
    """SMTP's transient answers are 4xx (a 5xx is a permanent refusal there, and fails the message at once,
    see tests/channels/email/test_outbound.py)."""
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Support mail", address="support@acme.test",
                         settings={"smtp_host": "127.0.0.1", "smtp_port": flaky_smtp.port})
    inbox.set_secrets(webhook_secret=WEBHOOK_SECRET)
    inbox.save()
    conversations = []
    for i in range(2):
        response = post_raw(mail(sender=f"customer{i}@example.org", message_id=f"<q{i}@example.org>").as_bytes(), inbox)
        conversations.append(TimelineEntry.objects.for_tenant(tenant).get(pk=response.entry_id).conversation)
    flaky_smtp.mode = "refusing"

    replies = [
        reply_send(tenant=tenant, conversation=c, author=agent, channel=Channel.EMAIL, body=f"Mail reply {i}")
        for i, c in enumerate(conversations)
    ]
    assert wait_until(lambda: every_reply_has(replies, lambda tries: sum(t.status_code == 451 for t in tries) >= 2))
    flaky_smtp.mode = "hanging"
    assert wait_until(lambda: every_reply_has(replies, lambda tries: "timed out" in tries[-1].error.lower()))
    assert {status_of(r) for r in replies} <= {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}
    flaky_smtp.mode = "up"

    assert wait_until(lambda: {status_of(r) for r in replies} == {DeliveryStatus.SENT})
    for reply in replies:
        deliver_message.delay(reply.pk)
    marker = reply_after_the_queue_drains(tenant, agent, conversations[0], Channel.EMAIL)

    received_ids = sorted(message_from_bytes(e.content)["Message-ID"] for e in flaky_smtp.received)
    sent = TimelineEntry.objects.for_tenant(tenant).filter(pk__in=[r.pk for r in replies] + [marker.pk])
    assert received_ids == sorted(f"<{entry.external_id}>" for entry in sent)
    assert [sum(t.succeeded for t in attempts(r)) for r in replies] == [1, 1]
