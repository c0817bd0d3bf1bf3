"""Workspace search: the per-conversation word document kept by triggers, and its two bounded plans."""

from __future__ import annotations

import pytest
from django.db import connection

from conversations import selectors
from conversations.models import TimelineEntry
from conversations.selectors import conversation_search_page
from conversations.services import (
    InboundMessage,
    conversation_assign,
    message_record_inbound,
    note_add,
)
from tests.factories import InboxFactory, TeamFactory


def inbound(tenant, inbox, sender, body):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def found(tenant, user, query, cursor="") -> list[int]:
    return [c.number for c in conversation_search_page(tenant=tenant, membership=user.membership, query=query, cursor=cursor).conversations]


def document(conversation) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_document::text FROM conversations_conversation WHERE id = %s", [conversation.pk])
        return cursor.fetchone()[0] or ""


def test_messages_and_notes_add_their_words_to_the_conversation_document(tenant, sms_inbox, agent):
    conversation = inbound(tenant, sms_inbox, "+12025550101", "Where is my parcel")
    note_add(tenant=tenant, conversation=conversation, author=agent, body="Courier says Tuesday")
    conversation.save()  # a save of the model never clears the document: it is not a model field

    assert document(conversation) == "'courier' 'is' 'my' 'parcel' 'says' 'tuesday' 'where'"
    assert found(tenant, agent, "tues") == [conversation.number]
    assert found(tenant, agent, "parcel courier") == [conversation.number]
    assert found(tenant, agent, "parcel monday") == []


def test_an_entry_moved_to_another_conversation_is_found_there(tenant, sms_inbox, agent):
    source = inbound(tenant, sms_inbox, "+12025550101", "invoice 4711 is wrong")
    target = inbound(tenant, sms_inbox, "+12025550102", "hello")

    TimelineEntry.objects.filter(conversation=source).update(conversation=target)

    assert found(tenant, agent, "4711") == [target.number, source.number]  # the source keeps its old words


@pytest.mark.parametrize("window", [2, 2000])
def test_common_and_rare_words_page_the_same_way(tenant, sms_inbox, supervisor, monkeypatch, window):
    monkeypatch.setattr(selectors, "SEARCH_RECENT_WINDOW", window)
    monkeypatch.setattr(selectors, "LIST_PAGE_SIZE", 2)
    numbers = [inbound(tenant, sms_inbox, f"+120255501{n:02d}", f"hello number {n}").number for n in range(5)]
    rare = inbound(tenant, sms_inbox, "+12025550199", "hello, my zeppelin is late").number
    for n in range(5):
        inbound(tenant, sms_inbox, f"+120255502{n:02d}", f"hello again {n}")

    pages, cursor = [], ""
    while True:
        page = conversation_search_page(tenant=tenant, membership=supervisor.membership, query="hello number", cursor=cursor)
        pages.append([c.number for c in page.conversations])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert pages == [numbers[4:2:-1], numbers[2:0:-1], numbers[:1]]
    # Beyond the recent window, the rare word is found through the index.
    assert found(tenant, supervisor, "zeppelin") == [rare]


def test_search_stays_within_the_tenant_and_what_the_agent_may_see(tenant, other_tenant, sms_inbox, agent, teammate):
    billing = TeamFactory(tenant=tenant, name="Billing")
    theirs = inbound(tenant, sms_inbox, "+12025550101", "refund please")
    conversation_assign(tenant=tenant, conversation=theirs, assignee=teammate, team=billing)
    visible = inbound(tenant, sms_inbox, "+12025550102", "refund now")
    elsewhere = InboxFactory(tenant=other_tenant, channel="sms", name="Their SMS")
    inbound(other_tenant, elsewhere, "+12025550103", "refund")

    assert found(tenant, agent, "refund") == [visible.number]
    assert found(tenant, agent, "5550101") == []
    assert found(tenant, agent, "5550102") == [visible.number]


def test_a_search_page_runs_a_bounded_number_of_queries(client, tenant, sms_inbox, agent, django_assert_max_num_queries):
    for n in range(60):
        inbound(tenant, sms_inbox, f"+120255502{n:02d}", f"my parcel {n}")
    client.force_login(agent)

    # session, user, membership, counts, customers, the window's oldest row, the window, (the index and its
    # page), filter choices, teammates
    with django_assert_max_num_queries(12):
        common = client.get("/app/", {"q": "parcel"})
    with django_assert_max_num_queries(12):
        rare = client.get("/app/", {"q": "nothing"})

    assert len(common.context["conversations"]) == 50
    assert common.context["next_page_url"].startswith("?q=parcel&after=")
    assert rare.context["conversations"] == []
