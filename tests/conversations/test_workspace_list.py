"""The workspace list: keyset pages, sorts, filters, unread markers, channel icons, view counts."""

from __future__ import annotations

import importlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from conversations import selectors
from conversations.models import Conversation, Priority, Status, TimelineEntry
from conversations.selectors import ListFilters, workspace_page, workspace_view_counts
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_update,
    message_record_inbound,
)
from tests.factories import CustomerFactory, InboxFactory, TeamFactory

NOW = timezone.now().replace(microsecond=0)


def conversation_at(tenant, number, *, waiting_minutes=None, updated_minutes=0, priority=Priority.NORMAL, **fields):
    """A conversation made directly (no timeline), waiting since `waiting_minutes` ago (None: not waiting)."""
    fields = {
        "status": Status.OPEN, "first_channel": "sms", "last_channel": "sms", "channels": ["sms"],
        "customer": fields.get("customer") or CustomerFactory(tenant=tenant), **fields,
    }
    return Conversation.objects.create(
        tenant=tenant, number=number, priority=priority,
        waiting_since=None if waiting_minutes is None else NOW - timedelta(minutes=waiting_minutes),
        updated_at=NOW - timedelta(minutes=updated_minutes), **fields,
    )


def inbound(tenant, inbox, sender, body="Hi", channel="sms", kind="phone"):
    message = InboundMessage(channel=channel, sender_kind=kind, sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def every_page(tenant, membership, filters):
    """Follow the next-page cursors to the end; the conversation numbers in the order listed."""
    numbers, cursor, pages = [], "", 0
    while True:
        page = workspace_page(tenant=tenant, membership=membership, filters=filters, cursor=cursor)
        numbers += [c.number for c in page.conversations]
        pages += 1
        if page.next_cursor is None:
            return numbers, pages
        cursor = page.next_cursor


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(selectors, "LIST_PAGE_SIZE", 4)


def test_pages_list_every_conversation_once_longest_waiting_first(tenant, supervisor, small_pages):
    # Ties on waiting_since and on updated_at, and conversations nobody waits on (last), across page ends.
    specs = [(30, 5), (30, 5), (30, 1), (90, 0), (None, 3), (None, 3), (None, 0), (10, 9), (60, 2), (None, 8), (30, 5)]
    made = [conversation_at(tenant, n + 1, waiting_minutes=w, updated_minutes=u) for n, (w, u) in enumerate(specs)]
    expected = [c.number for c in sorted(
        made, key=lambda c: (c.waiting_since is None, c.waiting_since or NOW, -c.updated_at.timestamp(), -c.pk)
    )]

    numbers, pages = every_page(tenant, supervisor.membership, ListFilters(view="all"))

    assert numbers == expected
    assert pages == 3


def test_the_priority_sort_puts_urgent_first_then_the_longest_waiting(tenant, supervisor, small_pages):
    low = conversation_at(tenant, 1, waiting_minutes=500, priority=Priority.LOW)
    urgent_new = conversation_at(tenant, 2, waiting_minutes=1, priority=Priority.URGENT)
    urgent_old = conversation_at(tenant, 3, waiting_minutes=50, priority=Priority.URGENT)
    normal = conversation_at(tenant, 4, waiting_minutes=400)
    high = conversation_at(tenant, 5, waiting_minutes=None, priority=Priority.HIGH)
    normal_idle = conversation_at(tenant, 6, waiting_minutes=None)

    numbers, _ = every_page(tenant, supervisor.membership, ListFilters(view="all", sort="priority"))

    assert numbers == [c.number for c in (urgent_old, urgent_new, high, normal, normal_idle, low)]


@pytest.mark.parametrize("cursor", ["garbage", "a:b:c", "W1siYWxsIl1d:1kXyZ:forged", "x" * 5000])
def test_a_bad_cursor_gives_page_one(client, tenant, supervisor, small_pages, cursor):
    for n in range(6):
        conversation_at(tenant, n + 1, waiting_minutes=n)
    client.force_login(supervisor)

    first = client.get("/app/", {"view": "all"})
    bad = client.get("/app/", {"view": "all", "after": cursor})

    assert bad.status_code == 200
    assert [c.number for c in bad.context["conversations"]] == [c.number for c in first.context["conversations"]]


def test_a_cursor_made_for_another_sort_or_edited_gives_page_one(tenant, supervisor, small_pages):
    for n in range(6):
        conversation_at(tenant, n + 1, waiting_minutes=n)
    page_one = workspace_page(tenant=tenant, membership=supervisor.membership, filters=ListFilters(view="all"))
    by_priority = ListFilters(view="all", sort="priority")

    foreign = workspace_page(
        tenant=tenant, membership=supervisor.membership, filters=by_priority, cursor=page_one.next_cursor
    )
    edited = workspace_page(
        tenant=tenant, membership=supervisor.membership, filters=ListFilters(view="all"),
        cursor=page_one.next_cursor[:-3] + "abc",
    )

    assert [c.number for c in foreign.conversations] == [6, 5, 4, 3]
    assert [c.number for c in edited.conversations] == [c.number for c in page_one.conversations]


def test_the_page_links_to_the_next_page_keeping_the_filters(client, tenant, supervisor, small_pages):
    for n in range(6):
        conversation_at(tenant, n + 1, waiting_minutes=n, priority=Priority.HIGH)
    client.force_login(supervisor)

    first = client.get("/app/", {"view": "all", "priority": "high", "sort": "priority"})
    params = parse_qs(urlsplit(first.context["next_page_url"]).query)
    second = client.get("/app/", {key: values[0] for key, values in params.items()})

    assert params["view"] == ["all"] and params["priority"] == ["high"] and params["sort"] == ["priority"]
    assert [c.number for c in first.context["conversations"]] == [6, 5, 4, 3]
    assert [c.number for c in second.context["conversations"]] == [2, 1]
    assert second.context["next_page_url"] == ""
    assert first.context["next_page_url"] in first.content.decode().replace("&amp;", "&")


def test_filters_by_channel_inbox_team_priority_and_tag(tenant, other_tenant, supervisor, sms_inbox, email_inbox):
    billing = TeamFactory(tenant=tenant, name="Billing")
    by_sms = inbound(tenant, sms_inbox, "+12025550101")
    by_mail_then_sms = inbound(tenant, email_inbox, "ann@example.org", channel="email", kind="email")
    conversation_assign(tenant=tenant, conversation=by_mail_then_sms, assignee=None, team=billing)
    conversation_update(tenant=tenant, conversation=by_mail_then_sms, actor=None, tags=["Refund"], priority="urgent")
    theirs = InboxFactory(tenant=other_tenant, channel="sms")
    their_team = TeamFactory(tenant=other_tenant, name="Theirs")

    def listed(**filters) -> set[int]:
        page = workspace_page(tenant=tenant, membership=supervisor.membership, filters=ListFilters(view="all", **filters))
        return {c.pk for c in page.conversations}

    assert listed() == {by_sms.pk, by_mail_then_sms.pk}
    assert listed(channel="email") == {by_mail_then_sms.pk}
    assert listed(inbox=sms_inbox.pk) == {by_sms.pk}
    assert listed(team=billing.pk) == {by_mail_then_sms.pk}
    assert listed(priority="urgent") == {by_mail_then_sms.pk}
    assert listed(tag="refund") == {by_mail_then_sms.pk}
    assert listed(inbox=theirs.pk) == set()
    assert listed(team=their_team.pk) == set()


def test_filter_values_from_the_query_string_are_checked(tenant, agent):
    views = [name for name, _, _ in workspace_view_counts(tenant=tenant, membership=agent.membership)]

    parsed = ListFilters.parse(
        {"view": "all", "channel": "fax", "inbox": "1 OR 1=1", "team": "-3", "priority": "asap", "tag": " VIP ",
         "sort": "random"},
        views=views,
    )

    assert parsed == ListFilters(view="mine", tag="vip")  # an agent has no "all" view
    assert ListFilters(view="all", team=4, sort="priority").query_string() == "view=all&team=4&sort=priority"


def test_an_unread_marker_until_the_agent_opens_the_conversation(client, tenant, sms_inbox, agent, teammate):
    conversation = inbound(tenant, sms_inbox, "+12025550101")
    client.force_login(agent)

    def unread_for(user) -> bool:
        page = workspace_page(tenant=tenant, membership=user.membership, filters=ListFilters(view="unassigned"))
        return next(c.unread for c in page.conversations if c.pk == conversation.pk)

    before = unread_for(agent)
    client.get(f"/app/conversations/{conversation.number}/")
    after_reading = unread_for(agent)
    inbound(tenant, sms_inbox, "+12025550101", body="Hello again?")
    after_new_message = unread_for(agent)

    assert (before, after_reading, after_new_message) == (True, False, True)
    assert unread_for(teammate) is True  # read markers are per member
    assert 'class="conv unread' in client.get("/app/", {"view": "unassigned"}).content.decode()


def test_a_conversation_lists_every_channel_it_used_in_order(client, tenant, sms_inbox, email_inbox, agent):
    from customers.services import customer_add_identity

    conversation = inbound(tenant, sms_inbox, "+12025550101")
    customer_add_identity(tenant=tenant, customer=conversation.customer, kind="email", value="jo@example.org")
    inbound(tenant, email_inbox, "jo@example.org", channel="email", kind="email")
    inbound(tenant, sms_inbox, "+12025550101")
    client.force_login(agent)

    conversation.refresh_from_db()
    page = client.get("/app/", {"view": "unassigned"}).content.decode()

    assert conversation.channels == ["sms", "email"]
    assert 'title="sms"' in page and 'title="email"' in page


def test_the_backfill_reads_channels_from_the_timeline(tenant, sms_inbox, email_inbox):
    from customers.services import customer_add_identity

    conversation = inbound(tenant, email_inbox, "jo@example.org", channel="email", kind="email")
    customer_add_identity(tenant=tenant, customer=conversation.customer, kind="phone", value="+12025550101")
    inbound(tenant, sms_inbox, "+12025550101")
    quiet = conversation_at(tenant, 99, first_channel="chat", last_channel="whatsapp")
    Conversation.objects.filter(pk__in=[conversation.pk, quiet.pk]).update(channels=[])
    migration = importlib.import_module("conversations.migrations.0008_workspace_list")

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL_CHANNELS)

    assert dict(Conversation.objects.filter(pk__in=[conversation.pk, quiet.pk]).values_list("pk", "channels")) == {
        conversation.pk: ["email", "sms"], quiet.pk: ["chat", "whatsapp"],
    }


def test_view_counts_stop_at_the_cap(tenant, supervisor, monkeypatch):
    monkeypatch.setattr(selectors, "VIEW_COUNT_CAP", 3)
    for n in range(5):
        conversation_at(tenant, n + 1, waiting_minutes=n)
    conversation_at(tenant, 6, status=Status.PENDING)

    counts = {name: count for name, _, count in workspace_view_counts(tenant=tenant, membership=supervisor.membership)}

    assert (counts["all"], counts["unassigned"], counts["pending"], counts["resolved"]) == (3, 3, 1, 0)


def test_the_sla_view_takes_the_soonest_running_due_time(tenant, supervisor):
    soon = conversation_at(tenant, 1, next_response_due_at=NOW + timedelta(minutes=10))
    conversation_at(tenant, 2, resolution_due_at=NOW + timedelta(hours=5))
    breached = conversation_at(tenant, 3, first_response_due_at=NOW - timedelta(minutes=1), resolution_due_at=NOW + timedelta(days=1))
    conversation_at(tenant, 4)

    page = workspace_page(tenant=tenant, membership=supervisor.membership, filters=ListFilters(view="sla"))
    counts = dict((name, count) for name, _, count in workspace_view_counts(tenant=tenant, membership=supervisor.membership))

    assert {c.pk for c in page.conversations} == {soon.pk, breached.pk}
    assert counts["sla"] == 2


def test_list_pages_run_a_bounded_number_of_queries(client, tenant, sms_inbox, agent, django_assert_max_num_queries):
    billing = TeamFactory(tenant=tenant, name="Billing")
    billing.members.add(agent.membership)
    for n in range(60):
        inbound(tenant, sms_inbox, f"+120255502{n:02d}")
    client.force_login(agent)
    client.get("/app/conversations/1/")

    # session, user, membership, view counts, the page, filter choices, teammates (presence, members)
    with django_assert_max_num_queries(9):
        first = client.get("/app/", {"view": "unassigned", "team": billing.pk, "tag": "x", "channel": "sms"})
    with django_assert_max_num_queries(9):
        first = client.get("/app/", {"view": "unassigned"})
    with django_assert_max_num_queries(9):
        second = client.get(first.context["next_page_url"].replace("?", "/app/?", 1))

    assert len(first.context["conversations"]) == 50
    assert len(second.context["conversations"]) == 10
    assert not {c.pk for c in first.context["conversations"]} & {c.pk for c in second.context["conversations"]}


def test_a_merge_gives_the_survivor_the_channels_and_words_of_the_merged_conversation(tenant, sms_inbox, supervisor):
    from conversations.selectors import conversation_search_page
    from conversations.services import conversation_merge

    survivor = inbound(tenant, sms_inbox, "+12025550101", body="first")
    merged = conversation_at(
        tenant, 99, customer=survivor.customer, first_channel="email", last_channel="chat", channels=["email", "chat"]
    )
    TimelineEntry.objects.create(
        tenant=tenant, customer=survivor.customer, conversation=merged, kind="message", direction="inbound",
        channel="email", body="quokka sighting",
    )

    conversation_merge(tenant=tenant, survivor=survivor, merged=merged)
    survivor.refresh_from_db()
    found = conversation_search_page(tenant=tenant, membership=supervisor.membership, query="quokka").conversations

    assert survivor.channels == ["sms", "email", "chat"]
    assert survivor.pk in {c.pk for c in found}
