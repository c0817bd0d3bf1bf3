from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import conversation_set_status
from tests.channels.email.mails import mail, post_raw

pytestmark = pytest.mark.django_db


def entry_of(response) -> TimelineEntry:
    return TimelineEntry.objects.select_related("conversation").get(pk=response.entry_id)


def resolve_long_ago(tenant, conversation) -> None:
    """Resolved, and outside the reopen window, so only threading can bring a message back to it."""
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    Conversation.objects.filter(pk=conversation.pk).update(resolved_at=timezone.now() - timedelta(days=365))


def test_a_reply_joins_the_conversation_its_in_reply_to_names(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, first.conversation)

    reply = entry_of(post_raw(mail(message_id="<a2@example.org>", subject="Re: Printer on fire",
                                   headers={"In-Reply-To": "<a1@example.org>"}).as_bytes(), mail_inbox))

    assert reply.conversation_id == first.conversation_id
    assert reply.data["threaded_by"] == "headers"
    assert Conversation.objects.get(pk=first.conversation_id).status == Status.OPEN


def test_without_threading_a_message_after_the_reopen_window_opens_a_new_conversation(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, first.conversation)

    later = entry_of(post_raw(mail(message_id="<a2@example.org>", subject="Another thing").as_bytes(), mail_inbox))

    assert later.conversation_id != first.conversation_id
    assert later.data["threaded_by"] == "continuity"


def test_a_reply_joins_by_references_when_in_reply_to_is_unknown(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, first.conversation)

    reply = entry_of(post_raw(mail(message_id="<a3@example.org>", headers={
        "In-Reply-To": "<lost@example.org>", "References": "<a1@example.org> <lost@example.org>",
    }).as_bytes(), mail_inbox))

    assert reply.conversation_id == first.conversation_id


def test_the_direct_parent_wins_over_older_references(tenant, mail_inbox):
    old = entry_of(post_raw(mail(message_id="<old@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, old.conversation)
    new = entry_of(post_raw(mail(message_id="<new@example.org>", subject="New topic").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, new.conversation)

    reply = entry_of(post_raw(mail(message_id="<r@example.org>", headers={
        "In-Reply-To": "<new@example.org>", "References": "<old@example.org> <new@example.org>",
    }).as_bytes(), mail_inbox))

    assert reply.conversation_id == new.conversation_id


def test_a_subject_token_joins_the_senders_conversation(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, first.conversation)

    reply = entry_of(post_raw(mail(
        message_id="<a2@example.org>", subject=f"Re: Printer on fire [#{first.conversation.number}]"
    ).as_bytes(), mail_inbox))

    assert reply.conversation_id == first.conversation_id
    assert reply.data["threaded_by"] == "subject"


def test_a_subject_token_never_reaches_another_customers_conversation(tenant, mail_inbox):
    theirs = entry_of(post_raw(mail(sender="bob@example.org", message_id="<b1@example.org>").as_bytes(), mail_inbox))

    mine = entry_of(post_raw(mail(
        sender="mallory@example.org", message_id="<m1@example.org>", subject=f"Hi [#{theirs.conversation.number}]"
    ).as_bytes(), mail_inbox))

    assert mine.conversation_id != theirs.conversation_id
    assert mine.conversation.customer_id == mine.customer_id
    assert TimelineEntry.objects.filter(conversation=theirs.conversation, kind="message").count() == 1


def test_a_forwarded_message_id_never_reaches_another_customers_conversation(tenant, mail_inbox):
    theirs = entry_of(post_raw(mail(sender="bob@example.org", message_id="<b1@example.org>").as_bytes(), mail_inbox))

    mine = entry_of(post_raw(mail(
        sender="mallory@example.org", message_id="<m1@example.org>", headers={"In-Reply-To": "<b1@example.org>"}
    ).as_bytes(), mail_inbox))

    assert mine.conversation_id != theirs.conversation_id
    assert mine.data["threaded_by"] == "continuity"


def test_an_unknown_subject_token_falls_back_to_the_continuity_rule(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    resolve_long_ago(tenant, first.conversation)

    reply = entry_of(post_raw(mail(message_id="<a2@example.org>", subject="Re: [#999]").as_bytes(), mail_inbox))

    assert reply.conversation_id != first.conversation_id
    assert reply.data["threaded_by"] == "continuity"


def test_a_closed_conversation_is_not_reopened_by_threading(tenant, mail_inbox):
    first = entry_of(post_raw(mail(message_id="<a1@example.org>").as_bytes(), mail_inbox))
    conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.CLOSED)

    reply = entry_of(post_raw(mail(message_id="<a2@example.org>", headers={"In-Reply-To": "<a1@example.org>"}).as_bytes(),
                              mail_inbox))

    assert reply.conversation_id != first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == Status.CLOSED
