from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from channels_app.adapters.base import SendRefused
from channels_app.models import Channel, DeliveryAttempt
from channels_app.services import message_deliver, reply_send
from conversations.models import DeliveryStatus, TimelineEntry
from tests.channels.email.conftest import free_port
from tests.channels.email.mails import mail, post_raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_inbox(mail_inbox, smtp_server):
    mail_inbox.settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port}
    mail_inbox.save()
    return mail_inbox


@pytest.fixture
def conversation(smtp_inbox):
    response = post_raw(mail(message_id="<q1@example.org>", subject="Re: Re: Printer on fire").as_bytes(), smtp_inbox)
    return TimelineEntry.objects.get(pk=response.entry_id).conversation


def reply(tenant, agent, conversation, body="Unplug it, then plug it back in."):
    return reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.EMAIL, body=body)


def received(smtp_server, index=0):
    return message_from_bytes(smtp_server.received[index].content, policy=policy.default)


def test_a_reply_goes_out_with_threading_headers_and_the_subject_token(tenant, agent, conversation, smtp_server):
    agent.first_name, agent.last_name = "Ada", "Agent"
    agent.save()
    entry = reply(tenant, agent, conversation)

    message_deliver(entry_id=entry.pk)

    sent = received(smtp_server)
    assert smtp_server.received[0].rcpt_tos == ["jane@example.org"]
    assert sent["From"] == "Ada Agent <support@acme.test>"
    assert sent["To"] == "jane@example.org"
    assert sent["Subject"] == f"Re: Printer on fire [#{conversation.number}]"
    assert sent["In-Reply-To"] == "<q1@example.org>"
    assert sent["References"] == "<q1@example.org>"
    assert sent.get_content().strip() == "Unplug it, then plug it back in."
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.SENT
    assert sent["Message-ID"] == f"<{entry.external_id}>"
    assert entry.external_id.endswith("@acme.test")


def test_references_carry_the_whole_thread_and_in_reply_to_the_customers_latest(tenant, agent, conversation, smtp_server):
    first = reply(tenant, agent, conversation, body="First answer.")
    message_deliver(entry_id=first.pk)
    first.refresh_from_db()
    post_raw(mail(message_id="<q2@example.org>", headers={"In-Reply-To": f"<{first.external_id}>"}).as_bytes(),
             first.inbox)
    second = reply(tenant, agent, conversation, body="Second answer.")

    message_deliver(entry_id=second.pk)

    sent = received(smtp_server, 1)
    assert sent["In-Reply-To"] == "<q2@example.org>"
    assert sent["References"] == f"<q1@example.org> <{first.external_id}> <q2@example.org>"


def test_the_customers_answer_to_our_reply_threads_back_by_its_message_id(tenant, agent, conversation, smtp_server):
    entry = reply(tenant, agent, conversation)
    message_deliver(entry_id=entry.pk)
    sent = received(smtp_server)

    answer = post_raw(mail(message_id="<q3@example.org>", subject=sent["Subject"],
                           headers={"In-Reply-To": sent["Message-ID"]}).as_bytes(), entry.inbox)

    answered = TimelineEntry.objects.get(pk=answer.entry_id)
    assert answered.conversation_id == conversation.pk
    assert answered.data["threaded_by"] == "headers"


def test_a_transient_smtp_failure_is_retried_and_the_mail_is_sent_once(tenant, agent, conversation, smtp_server):
    smtp_server.data_failures = ["451 4.3.0 Try again later"]
    entry = reply(tenant, agent, conversation)

    retry_in = message_deliver(entry_id=entry.pk)
    entry.refresh_from_db()
    status_between = entry.delivery_status
    message_deliver(entry_id=entry.pk)
    message_deliver(entry_id=entry.pk)

    assert retry_in == 10
    assert status_between == DeliveryStatus.QUEUED
    assert len(smtp_server.received) == 1
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.SENT
    attempts = list(DeliveryAttempt.objects.filter(entry=entry).values_list("succeeded", "status_code"))
    assert attempts == [(False, 451), (True, None)]


def test_every_attempt_carries_the_same_message_id(tenant, agent, conversation, smtp_server):
    smtp_server.data_failures = ["451 4.3.0 Try again later"]
    entry = reply(tenant, agent, conversation)

    message_deliver(entry_id=entry.pk)
    message_deliver(entry_id=entry.pk)

    entry.refresh_from_db()
    assert received(smtp_server)["Message-ID"] == f"<{entry.external_id}>"
    assert DeliveryAttempt.objects.get(entry=entry, succeeded=True).provider_id == entry.external_id


def test_a_refused_recipient_fails_the_message_for_good(tenant, agent, conversation, smtp_server):
    smtp_server.refuse_recipient = "jane@example.org"
    entry = reply(tenant, agent, conversation)

    retry_in = message_deliver(entry_id=entry.pk)

    assert retry_in is None
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.FAILED
    assert entry.error_code == "550"
    assert entry.failure_reason == "Recipient refused: jane@example.org: 550 5.1.1 No such user here"
    assert smtp_server.received == []


def test_an_unreachable_smtp_server_is_retried(tenant, agent, conversation, smtp_inbox):
    smtp_inbox.settings = {"smtp_host": "127.0.0.1", "smtp_port": free_port()}
    smtp_inbox.save()
    entry = reply(tenant, agent, conversation)

    retry_in = message_deliver(entry_id=entry.pk)

    assert retry_in == 10
    entry.refresh_from_db()
    assert entry.delivery_status == DeliveryStatus.QUEUED
    assert DeliveryAttempt.objects.get(entry=entry).error.startswith("Could not talk to the SMTP server")


def test_a_reply_is_refused_before_storing_when_the_inbox_cannot_send(tenant, agent, conversation, smtp_inbox):
    smtp_inbox.settings = {}
    smtp_inbox.save()

    with pytest.raises(SendRefused, match="no from-address or SMTP server"):
        reply(tenant, agent, conversation)

    assert not TimelineEntry.objects.filter(direction="outbound").exists()
