"""The conversations API: list and filters, detail, changes through the services, the timeline and new
replies or notes; visibility is the workspace's, another tenant's or team's conversation is a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel
from conversations.models import Conversation, DeliveryStatus, EntryKind, TimelineEntry
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_update,
    message_record_inbound,
    note_add,
)
from customers.models import Identity
from tests.channels.twilio.conftest import customer_writes, fake_twilio, twilio_inbox  # noqa: F401
from tests.factories import InboxFactory, TeamFactory


def writes(tenant, inbox, sender: str = "+12025550143", body: str = "Help") -> Conversation:
    message = InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


@pytest.fixture
def conversation(tenant, sms_inbox):
    return writes(tenant, sms_inbox)


@pytest.fixture
def billing(tenant, supervisor):
    return TeamFactory(tenant=tenant, name="Billing")


@pytest.fixture
def billings_conversation(tenant, sms_inbox, billing, supervisor):
    """Assigned to someone else in a team the agent is not in."""
    conversation = writes(tenant, sms_inbox, sender="+12025550199")
    return conversation_assign(tenant=tenant, conversation=conversation, assignee=supervisor, team=billing)


@pytest.fixture
def globex_conversation(other_tenant):
    inbox = InboxFactory(tenant=other_tenant, channel=Channel.SMS, address="+442079460000")
    return writes(other_tenant, inbox, sender="+447911123456")


def numbers(response) -> list[int]:
    return [row["number"] for row in response.json()["results"]]


def test_it_lists_what_the_member_may_see_newest_change_first(agent_api, supervisor_api, conversation, billings_conversation):
    assert numbers(agent_api.get("/api/v1/conversations/")) == [conversation.number]
    assert numbers(supervisor_api.get("/api/v1/conversations/")) == [billings_conversation.number, conversation.number]


def test_the_list_row_has_the_customer_assignee_team_channels_and_sla(supervisor_api, supervisor, billings_conversation):
    [row] = [r for r in supervisor_api.get("/api/v1/conversations/").json()["results"] if r["number"] == billings_conversation.number]

    assert row["customer"]["id"] == billings_conversation.customer_id
    assert row["assignee"] == {"id": supervisor.pk, "name": supervisor.membership.name}
    assert row["team"]["name"] == "Billing"
    assert (row["status"], row["priority"], row["channels"]) == ("open", "normal", ["sms"])
    assert set(row["sla"]) == {"first_response_due_at", "next_response_due_at", "resolution_due_at"}


def test_the_filters_narrow_the_list(supervisor_api, tenant, agent, conversation, billings_conversation, billing, sms_inbox):
    conversation_update(tenant=tenant, conversation=conversation, priority="urgent", tags=["Refund"])

    def listed(**params) -> list[int]:
        response = supervisor_api.get("/api/v1/conversations/", params)
        assert response.status_code == 200, response.json()
        return numbers(response)

    assert listed(priority="urgent") == [conversation.number]
    assert listed(tag="REFUND") == [conversation.number]
    assert listed(team=billing.pk) == [billings_conversation.number]
    assert listed(assignee="none") == [conversation.number]
    assert listed(assignee="me") == [billings_conversation.number]
    assert listed(assignee=str(agent.pk)) == []
    assert listed(channel="email") == []
    assert listed(inbox=sms_inbox.pk, status="open") == [conversation.number, billings_conversation.number]


def test_bad_filter_values_are_400s_naming_the_parameter(agent_api):
    for params, field in [
        ({"updated_since": "yesterday"}, "updated_since"), ({"status": "lost"}, "status"),
        ({"assignee": "someone"}, "assignee"), ({"inbox": "abc"}, "inbox"), ({"team": "99999999999999999999999"}, "team"),
    ]:
        response = agent_api.get("/api/v1/conversations/", params)
        assert response.status_code == 400, params
        assert field in response.json()["errors"], params
        assert response.json()["detail"].startswith(f"{field}:")


def test_updated_since_gives_only_what_changed_after_it(agent_api, tenant, sms_inbox, conversation):
    later = writes(tenant, sms_inbox, sender="+12025550111")
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    assert numbers(agent_api.get("/api/v1/conversations/", {"updated_since": since})) == [later.number]


def test_the_cursor_walks_every_conversation_exactly_once_even_with_equal_times(agent_api, tenant, sms_inbox):
    made = [writes(tenant, sms_inbox, sender=f"+1202555{n:04d}").number for n in range(120, 127)]
    same_moment = timezone.now()
    Conversation.objects.filter(number__in=made[:4]).update(updated_at=same_moment)

    seen: list[int] = []
    url = "/api/v1/conversations/?page_size=2"
    while url:
        body = agent_api.get(url).json()
        seen += [row["number"] for row in body["results"]]
        url = body["next"]

    assert sorted(seen) == sorted(made)
    assert len(seen) == len(made)


def test_the_detail_is_found_by_number(agent_api, conversation):
    response = agent_api.get(f"/api/v1/conversations/{conversation.number}/")

    assert response.status_code == 200
    assert response.json()["id"] == conversation.pk
    assert response.json()["last_channel"] == "sms"


def test_another_teams_conversation_is_a_404_for_an_agent_and_visible_to_a_supervisor(
    agent_api, supervisor_api, admin_api, billings_conversation
):
    path = f"/api/v1/conversations/{billings_conversation.number}/"

    assert agent_api.get(path).status_code == 404
    assert agent_api.get(path + "timeline/").status_code == 404
    assert agent_api.patch(path, {"status": "resolved"}, format="json").status_code == 404
    assert agent_api.post(path + "messages/", {"text": "hi", "private": True}, format="json").status_code == 404
    assert supervisor_api.get(path).status_code == 200
    assert admin_api.get(path + "timeline/").status_code == 200


def test_another_tenants_conversation_is_a_404_everywhere(agent_api, outsider_api, conversation, globex_conversation):
    path = f"/api/v1/conversations/{globex_conversation.number}/"
    # Both tenants have a #1: the outsider's token finds theirs, never ours.
    assert globex_conversation.number == conversation.number

    assert outsider_api.get(path).json()["id"] == globex_conversation.pk
    assert outsider_api.get("/api/v1/conversations/").json()["results"][0]["id"] == globex_conversation.pk
    assert agent_api.get("/api/v1/conversations/").json()["results"][0]["id"] == conversation.pk
    assert outsider_api.patch(path, {"priority": "urgent"}, format="json").status_code == 200
    conversation.refresh_from_db()
    assert conversation.priority == "normal"


def test_a_nonsense_or_huge_number_is_a_404(agent_api):
    for number in ("abc", "99999999999", "-1", "1.5"):
        response = agent_api.get(f"/api/v1/conversations/{number}/")
        assert response.status_code == 404, number
        assert response.json() == {"detail": "Not found."}


def test_patch_changes_status_priority_tags_assignee_and_team_through_the_services(
    agent_api, agent, tenant, conversation, billing
):
    response = agent_api.patch(f"/api/v1/conversations/{conversation.number}/", {
        "status": "pending", "priority": "high", "tags": ["VIP", "refund", "vip"], "assignee": agent.pk,
        "team": billing.pk,
    }, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["priority"], body["tags"]) == ("pending", "high", ["refund", "vip"])
    assert (body["assignee"]["id"], body["team"]["id"]) == (agent.pk, billing.pk)
    events = set(TimelineEntry.objects.filter(conversation=conversation, kind=EntryKind.EVENT).values_list("event", flat=True))
    assert {"status_changed", "assigned", "updated"} <= events


def test_patch_snoozes_until_a_time_and_refuses_a_snooze_without_one(agent_api, conversation):
    path = f"/api/v1/conversations/{conversation.number}/"
    until = timezone.now() + timedelta(hours=3)

    refused = agent_api.patch(path, {"status": "snoozed"}, format="json")
    snoozed = agent_api.patch(path, {"status": "snoozed", "snoozed_until": until.isoformat()}, format="json")

    assert refused.status_code == 400
    assert refused.json()["errors"]["snoozed_until"] == ["Snoozing needs a time in the future to wake up at."]
    assert snoozed.status_code == 200
    assert snoozed.json()["status"] == "snoozed"


def test_patch_unassigns_with_null_and_keeps_the_team_when_it_is_left_out(supervisor_api, billings_conversation, billing):
    response = supervisor_api.patch(
        f"/api/v1/conversations/{billings_conversation.number}/", {"assignee": None}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["assignee"], response.json()["team"]["id"]) == (None, billing.pk)


def test_another_tenants_assignee_or_team_is_a_field_error_and_nothing_changes(agent_api, outsider, other_tenant, conversation):
    foreign_team = TeamFactory(tenant=other_tenant)
    path = f"/api/v1/conversations/{conversation.number}/"

    by_person = agent_api.patch(path, {"assignee": outsider.pk, "priority": "urgent"}, format="json")
    by_team = agent_api.patch(path, {"team": foreign_team.pk}, format="json")

    assert by_person.status_code == by_team.status_code == 400
    assert by_person.json()["errors"]["assignee"] == [f"No member of this tenant has the user id {outsider.pk}."]
    assert by_team.json()["errors"]["team"] == [f"This tenant has no team with the id {foreign_team.pk}."]
    conversation.refresh_from_db()
    assert (conversation.assignee_id, conversation.team_id, conversation.priority) == (None, None, "normal")


def test_patch_with_bad_values_names_the_fields(agent_api, conversation):
    response = agent_api.patch(
        f"/api/v1/conversations/{conversation.number}/",
        {"status": "lost", "priority": 3, "assignee": "me", "tags": "not-a-list"}, format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "priority", "assignee", "tags"}


def test_the_timeline_is_oldest_first_with_channels_authors_and_safe_data(agent_api, agent, tenant, conversation):
    note_add(tenant=tenant, conversation=conversation, author=agent, body="Checking with the warehouse")

    body = agent_api.get(f"/api/v1/conversations/{conversation.number}/timeline/").json()

    kinds = [(e["kind"], e["channel"], e["direction"]) for e in body["results"]]
    assert kinds == [("message", "sms", "inbound"), ("note", "", "")]
    message, note = body["results"]
    assert (message["body"], message["delivery_status"], message["author"]) == ("Help", "received", None)
    assert note["author"] == {"id": agent.pk, "name": agent.membership.name}
    assert note["conversation"] == conversation.number
    assert message["data"] == {}


def test_the_timeline_leaves_out_provider_urls_and_raw_html(agent_api, tenant, sms_inbox):
    message = InboundMessage(
        channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="Photo attached",
        data={"from": "+12025550143", "media": [{"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"}],
              "html": "<img src=x onerror=alert(1)>"},
    )
    conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).conversation

    [entry] = agent_api.get(f"/api/v1/conversations/{conversation.number}/timeline/").json()["results"]

    assert entry["data"] == {"from": "+12025550143"}


def test_the_timeline_pages_walk_every_entry_once_in_order(agent_api, agent, tenant, conversation):
    for n in range(5):
        note_add(tenant=tenant, conversation=conversation, author=agent, body=f"note {n}")

    seen: list[str] = []
    url = f"/api/v1/conversations/{conversation.number}/timeline/?page_size=2"
    while url:
        page = agent_api.get(url).json()
        seen += [entry["body"] for entry in page["results"]]
        url = page["next"]

    assert seen == ["Help", "note 0", "note 1", "note 2", "note 3", "note 4"]


def test_the_timeline_lists_attachments_with_their_member_checked_download(agent_api, tenant, agent, conversation):
    from conversations.services import OutgoingFile

    note = note_add(
        tenant=tenant, conversation=conversation, author=agent, body="Receipt",
        files=[OutgoingFile(name="receipt.pdf", content=b"%PDF-1.4", content_type="application/pdf")],
    )

    entries = agent_api.get(f"/api/v1/conversations/{conversation.number}/timeline/").json()["results"]

    [attachment] = [e for e in entries if e["id"] == note.pk][0]["attachments"]
    assert (attachment["name"], attachment["size"], attachment["content_type"]) == ("receipt.pdf", 8, "application/pdf")
    assert attachment["url"] == f"http://testserver/app/attachments/{attachment['id']}/"


def test_a_private_message_is_a_note(agent_api, agent, conversation):
    response = agent_api.post(
        f"/api/v1/conversations/{conversation.number}/messages/", {"text": "Internal: call back", "private": True},
        format="json",
    )

    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["author"]["id"]) == ("note", agent.pk)
    assert TimelineEntry.objects.get(pk=response.json()["id"]).kind == EntryKind.NOTE


def test_an_sms_reply_is_stored_queued_and_reaches_twilio(
    client, agent_api, tenant, fake_twilio, celery_eager, django_capture_on_commit_callbacks  # noqa: F811
):
    inbox = twilio_inbox(tenant, Channel.SMS, "+15550100000")
    inbound = customer_writes(client, inbox, From="+12025550143", Body="My parcel is late")

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(
            f"/api/v1/conversations/{inbound.conversation.number}/messages/", {"channel": "sms", "text": "On its way!"},
            format="json",
        )

    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["direction"], response.json()["delivery_status"]) == (
        "message", "outbound", "queued",
    )
    [create] = fake_twilio.creates()
    assert (create["form"]["To"], create["form"]["Body"]) == ("+12025550143", "On its way!")
    assert TimelineEntry.objects.get(pk=response.json()["id"]).delivery_status == DeliveryStatus.SENT


def test_a_reply_from_an_inbox_uses_its_channel(agent_api, tenant, conversation, sms_inbox):
    response = agent_api.post(
        f"/api/v1/conversations/{conversation.number}/messages/", {"inbox": sms_inbox.pk, "text": "Hi"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["channel"], response.json()["inbox"]) == ("sms", sms_inbox.pk)


def test_a_reply_to_an_opted_out_number_is_refused_with_the_reason_and_not_stored(agent_api, tenant, conversation):
    stopped = timezone.now()
    Identity.objects.for_tenant(tenant).filter(customer=conversation.customer).update(opted_out_at=stopped)
    before = TimelineEntry.objects.count()

    response = agent_api.post(
        f"/api/v1/conversations/{conversation.number}/messages/", {"channel": "sms", "text": "Hello?"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {"detail": (
        f"+12025550143 opted out of messages on {stopped:%Y-%m-%d}; "
        "they must send START before you can write to them here. Reply on another channel."
    )}
    assert TimelineEntry.objects.count() == before


def test_a_reply_without_a_channel_or_text_or_with_another_tenants_inbox_is_a_400(agent_api, other_tenant, conversation):
    foreign_inbox = InboxFactory(tenant=other_tenant, channel=Channel.SMS)
    path = f"/api/v1/conversations/{conversation.number}/messages/"

    no_channel = agent_api.post(path, {"text": "Hi"}, format="json")
    no_text = agent_api.post(path, {"channel": "sms", "text": "  "}, format="json")
    foreign = agent_api.post(path, {"inbox": foreign_inbox.pk, "text": "Hi"}, format="json")

    assert no_channel.status_code == no_text.status_code == foreign.status_code == 400
    assert no_channel.json()["errors"]["channel"] == ["Say which channel (or inbox) to reply on, or send private: true."]
    assert no_text.json()["errors"]["text"] == ["Write some text."]
    assert foreign.json()["errors"]["inbox"] == [f"This tenant has no active inbox with the id {foreign_inbox.pk}."]


def test_a_conversation_get_repeated_with_its_etag_is_a_304(agent_api, conversation):
    path = f"/api/v1/conversations/{conversation.number}/"
    first = agent_api.get(path)

    assert agent_api.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert agent_api.get("/api/v1/conversations/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_an_edited_cursor_is_a_404_and_an_out_of_range_updated_since_a_400(agent_api, conversation):
    import base64

    forged = base64.b64encode(b"o=0&p=not-a-date").decode()

    assert agent_api.get("/api/v1/conversations/", {"cursor": forged}).json() == {"detail": "Invalid cursor"}
    assert agent_api.get(f"/api/v1/conversations/{conversation.number}/timeline/", {"cursor": forged}).status_code == 404
    far = agent_api.get("/api/v1/conversations/", {"updated_since": "9999-12-31T23:59:59-23:59"})
    assert far.status_code == 400
    assert far.json()["errors"]["updated_since"] == ["The date-time is out of range once converted to UTC."]


def test_the_list_and_the_timeline_take_a_fixed_number_of_queries(
    agent_api, agent, tenant, sms_inbox, django_assert_max_num_queries
):
    for n in range(6):
        conversation = writes(tenant, sms_inbox, sender=f"+1202555{n + 200:04d}")
        note_add(tenant=tenant, conversation=conversation, author=agent, body="seen")
    agent_api.get("/api/v1/me/")  # the token's last use is written once, outside the counted requests

    with django_assert_max_num_queries(6):
        assert len(agent_api.get("/api/v1/conversations/").json()["results"]) == 6
    with django_assert_max_num_queries(6):
        assert len(agent_api.get(f"/api/v1/conversations/{conversation.number}/timeline/").json()["results"]) == 2
