from __future__ import annotations

import pytest

from channels_app.adapters.email.services import email_receive
from channels_app.models import Channel
from conversations.models import Conversation, DeliveryStatus, TimelineEntry
from conversations.services import message_record_outbound, message_set_delivery_status
from tests.channels.email.mails import mail, post_raw

pytestmark = pytest.mark.django_db


def dsn(original_id: str, *, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <jane@example.org>: Recipient address rejected: User unknown") -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: support@acme.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{action}@mx.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Mon, 2 Jun 2025 10:00:00 +0000

Final-Recipient: rfc822; jane@example.org
Original-Recipient: rfc822;jane@example.org
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}

--BOUNDARY
Content-Type: text/rfc822-headers

From: Agent <support@acme.test>
To: jane@example.org
Subject: Re: Printer on fire [#1]
Message-ID: <{original_id}>

--BOUNDARY--
""".replace("\n", "\r\n").encode()


@pytest.fixture
def sent_reply(tenant, agent, mail_inbox):
    """A conversation with Jane and one reply of ours that went out as <out1@acme.test>."""
    first = TimelineEntry.objects.get(pk=post_raw(mail().as_bytes(), mail_inbox).entry_id)
    reply = message_record_outbound(
        tenant=tenant, conversation=first.conversation, author=agent, channel=Channel.EMAIL, body="Unplug it.",
        inbox=mail_inbox, data={"to": "jane@example.org"},
    )
    return message_set_delivery_status(tenant=tenant, entry=reply, status=DeliveryStatus.SENT, external_id="out1@acme.test")


def test_a_bounce_marks_the_outbound_message_failed_with_the_diagnostic(sent_reply, mail_inbox):
    response = post_raw(dsn("out1@acme.test"), mail_inbox)

    assert response.status_code == 202
    assert response.outcome == "bounce"
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == DeliveryStatus.FAILED
    assert sent_reply.error_code == "5.1.1"
    assert sent_reply.failure_reason == (
        "Bounced by jane@example.org: 550 5.1.1 <jane@example.org>: Recipient address rejected: User unknown"
    )


def test_a_bounce_opens_no_conversation_and_stores_no_message(sent_reply, mail_inbox):
    post_raw(dsn("out1@acme.test"), mail_inbox)

    assert Conversation.objects.count() == 1
    assert TimelineEntry.objects.filter(kind="message").count() == 2


def test_a_delay_notice_leaves_the_message_as_it_was(sent_reply, mail_inbox):
    post_raw(dsn("out1@acme.test", action="delayed", status="4.4.1"), mail_inbox)

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == DeliveryStatus.SENT


def test_a_bounce_for_an_unknown_message_is_dropped(mail_inbox):
    response = post_raw(dsn("nobody@acme.test"), mail_inbox)

    assert response.outcome == "bounce"
    assert not Conversation.objects.exists()
    assert not TimelineEntry.objects.exists()


def test_a_plain_text_bounce_from_a_mailer_daemon_is_recognised(sent_reply, mail_inbox):
    raw = mail(
        sender="postmaster@mx.example.org", subject="Delivery Status Notification (Failure)", message_id="<p1@mx>",
        text="Delivery to jane@example.org failed permanently.\n\n----- Original message -----\nMessage-ID: <out1@acme.test>\n",
    ).as_bytes()

    post_raw(raw, mail_inbox)

    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == DeliveryStatus.FAILED
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize("headers,subject", [
    ({"Auto-Submitted": "auto-replied"}, "Re: Printer on fire"),
    ({"Precedence": "bulk"}, "Newsletter"),
    ({"X-Autoreply": "yes"}, "Re: Printer on fire"),
    ({}, "Out of Office: Re: Printer on fire"),
    ({}, "Automatic reply: Printer on fire"),
])
def test_an_auto_reply_opens_no_conversation(mail_inbox, headers, subject):
    response = post_raw(mail(subject=subject, headers=headers).as_bytes(), mail_inbox)

    assert response.status_code == 202
    assert response.outcome == "ignored"
    assert not Conversation.objects.exists()
    assert not TimelineEntry.objects.exists()


def test_auto_submitted_no_is_a_person(mail_inbox):
    response = post_raw(mail(headers={"Auto-Submitted": "no"}).as_bytes(), mail_inbox)

    assert response.outcome == "stored"


def test_an_auto_reply_to_our_mail_is_a_quiet_event_in_that_conversation(sent_reply, mail_inbox):
    raw = mail(subject="Out of office", message_id="<ooo@example.org>", text="Back Monday.",
               headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<out1@acme.test>"}).as_bytes()

    first = post_raw(raw, mail_inbox)
    again = post_raw(raw, mail_inbox)  # the webhook knows the receipt
    polled = email_receive(inbox=mail_inbox, raw=raw)  # IMAP has no receipt: the event is found

    assert (first.outcome, again.outcome, polled.outcome) == ("auto_reply", "duplicate", "auto_reply")
    assert first.entry_id == again.entry_id == polled.entry.pk
    event = TimelineEntry.objects.get(event="email_auto_reply")
    assert event.conversation_id == sent_reply.conversation_id
    assert event.data["reason"] == "Auto-Submitted: auto-replied"
    assert event.data["body"] == "Back Monday."
    assert TimelineEntry.objects.filter(kind="message").count() == 2
    assert Conversation.objects.get().waiting_since is None
