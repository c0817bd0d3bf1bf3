from __future__ import annotations

from conversations.models import Status
from conversations.selectors import workspace_view, workspace_view_counts
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    message_record_inbound,
)
from tests.factories import InboxFactory, TeamFactory


def conversation_from(tenant, inbox, sender):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=sender, body="Hi")
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def counts(tenant, user):
    return {name: count for name, _, count in workspace_view_counts(tenant=tenant, membership=user.membership)}


def test_views_count_what_each_person_may_see(tenant, sms_inbox, agent, teammate, supervisor):
    billing = TeamFactory(tenant=tenant, name="Billing")
    billing.members.add(teammate.membership)
    mine = conversation_from(tenant, sms_inbox, "+12025550101")
    conversation_assign(tenant=tenant, conversation=mine, assignee=agent)
    theirs = conversation_from(tenant, sms_inbox, "+12025550102")
    conversation_assign(tenant=tenant, conversation=theirs, assignee=teammate, team=billing)
    conversation_from(tenant, sms_inbox, "+12025550103")
    waiting = conversation_from(tenant, sms_inbox, "+12025550104")
    conversation_set_status(tenant=tenant, conversation=waiting, status=Status.PENDING)

    assert counts(tenant, agent) == {
        "mine": 1, "unassigned": 1, "teams": 0, "pending": 1, "snoozed": 0, "resolved": 0, "sla": 0,
    }
    assert counts(tenant, supervisor)["all"] == 3
    assert counts(tenant, teammate)["teams"] == 1


def test_an_agent_never_lists_another_teams_conversation(tenant, sms_inbox, agent, teammate):
    billing = TeamFactory(tenant=tenant, name="Billing")
    theirs = conversation_from(tenant, sms_inbox, "+12025550102")
    conversation_assign(tenant=tenant, conversation=theirs, assignee=teammate, team=billing)

    listed = {
        c.pk for view in ("mine", "unassigned", "teams", "pending", "snoozed", "resolved", "sla", "all")
        for c in workspace_view(tenant=tenant, membership=agent.membership, view=view)
    }

    assert theirs.pk not in listed


def test_the_list_page_runs_a_bounded_number_of_queries(client, tenant, sms_inbox, agent, django_assert_max_num_queries):
    for n in range(30):
        conversation_from(tenant, sms_inbox, f"+120255502{n:02d}")
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get("/app/?view=unassigned")

    assert response.status_code == 200
    assert response.content.decode().count('href="/app/conversations/') == 30


def test_search_finds_conversations_by_message_text_name_and_address(client, tenant, other_tenant, sms_inbox, agent):
    parcel = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
        channel="sms", sender_kind="phone", sender_value="+12025550101", body="My parcels never arrived", sender_name="Maria Garcia",
    )).conversation
    other = conversation_from(tenant, sms_inbox, "+12025550199")
    elsewhere_inbox = InboxFactory(tenant=other_tenant, channel="sms", name="Their SMS")
    message_record_inbound(tenant=other_tenant, inbox=elsewhere_inbox, message=InboundMessage(
        channel="sms", sender_kind="phone", sender_value="+12025550101", body="parcel", sender_name="Maria Garcia",
    ))
    client.force_login(agent)

    def found(query: str) -> set[int]:
        return {c.pk for c in client.get("/app/", {"q": query}).context["conversations"]}

    assert found("parcel") == {parcel.pk}  # a word prefix finds "parcels"; the other tenant is never searched
    assert found("maria") == {parcel.pk}
    assert found("5550199") == {other.pk}
    assert found("nothing like this") == set()


def test_a_long_conversation_page_runs_a_bounded_number_of_queries(
    client, tenant, sms_inbox, agent, django_assert_max_num_queries
):
    for n in range(40):
        conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
            channel="sms", sender_kind="phone", sender_value="+12025550101", body=f"message {n}",
        )).conversation
    client.force_login(agent)

    # The pane alone, as htmx asks for it when an agent opens a conversation from the list
    # (one statement is the upsert of the agent's read marker).
    with django_assert_max_num_queries(16):
        pane = client.get(
            f"/app/conversations/{conversation.number}/", headers={"HX-Request": "true", "HX-Target": "conversation-pane"}
        )
    # The whole page: the pane plus the views' counts, the list and the filters' choices.
    with django_assert_max_num_queries(20):
        page = client.get(f"/app/conversations/{conversation.number}/")

    assert pane.content.decode().count("entry-message") == 40
    assert 'class="pane pane-list"' not in pane.content.decode()
    assert page.content.decode().count("entry-message") == 40
    assert 'class="pane pane-list"' in page.content.decode()


def test_a_long_conversation_shows_its_newest_entries_and_offers_the_earlier_ones(client, tenant, sms_inbox, agent, monkeypatch):
    from conversations import selectors

    monkeypatch.setattr(selectors, "TIMELINE_PAGE", 5)
    for n in range(7):
        conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=InboundMessage(
            channel="sms", sender_kind="phone", sender_value="+12025550101", body=f"message number {n}",
        )).conversation
    client.force_login(agent)

    first = client.get(f"/app/conversations/{conversation.number}/").content.decode()
    everything = client.get(f"/app/conversations/{conversation.number}/?all=1").content.decode()

    assert "Show 2 earlier entries" in first
    assert [f'<div class="body">message number {n}<' in first for n in range(7)] == [False, False, True, True, True, True, True]
    assert [f'<div class="body">message number {n}<' in everything for n in range(7)] == [True] * 7
    assert "earlier entr" not in everything
