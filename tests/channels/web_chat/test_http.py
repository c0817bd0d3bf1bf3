"""The widget's HTTP endpoints: origins, sessions and identity, messages, limits, polling, read marks, offline."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from channels_app.models import Channel
from conversations.models import Conversation, DeliveryStatus, Direction, Status, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.models import ChatVisitor, Customer, Identity, IdentityKind
from tests.channels.web_chat.conftest import IDENTITY_SECRET, SITE, get, post, say, start, user_hash
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db


def sms_from(tenant, number="+12025550143", body="My order is late"):
    inbox = InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS line", address="+15550100000")
    message = InboundMessage(channel=Channel.SMS, sender_kind=IdentityKind.PHONE, sender_value=number, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


def email_from(tenant, address="jane@example.org", body="Where is my parcel?"):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Mail", address="help@acme.test")
    message = InboundMessage(channel=Channel.EMAIL, sender_kind=IdentityKind.EMAIL, sender_value=address, body=body,
                             external_id=f"<{address}-1@example.org>")
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


# --- origins --------------------------------------------------------------------------------------


def test_an_allowed_origin_gets_the_config_with_cors_headers(client, chat_inbox):
    response = get(client, chat_inbox, "config")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    body = response.json()
    assert body["config"]["max_message_length"] == 5000
    assert (body["agents_online"], body["next_open_at"]) == (False, None)


def test_another_origin_is_refused_on_every_endpoint(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]

    refused = [
        get(client, chat_inbox, "config", origin="https://evil.example"),
        post(client, chat_inbox, "session", {}, origin="https://evil.example"),
        post(client, chat_inbox, "messages", {"body": "x", "client_id": "a"}, token=token, origin="https://evil.example"),
        get(client, chat_inbox, "messages", token=token, origin="https://shop.example.evil.test"),
        post(client, chat_inbox, "typing", {}, token=token, origin="null"),
    ]

    assert [r.status_code for r in refused] == [403] * 5
    assert refused[0].json() == {"detail": "This site is not allowed to use this chat."}
    assert "Access-Control-Allow-Origin" not in refused[0]
    assert not TimelineEntry.objects.filter(kind="message").exists()


def test_a_preflight_from_an_allowed_origin_is_answered(client, chat_inbox):
    response = client.options(f"/chat/{chat_inbox.key}/messages", HTTP_ORIGIN=SITE,
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_the_omnidesk_origin_itself_is_always_allowed(client, chat_inbox):
    assert get(client, chat_inbox, "config", origin="http://testserver").status_code == 200


def test_an_unknown_or_inactive_key_is_a_404(client, chat_inbox):
    chat_inbox.is_active = False
    chat_inbox.save()

    assert get(client, chat_inbox, "config").status_code == 404
    assert client.get("/chat/no-such-key/config", HTTP_ORIGIN=SITE).status_code == 404


# --- sessions -------------------------------------------------------------------------------------


def test_a_new_visitor_gets_a_token_stored_only_as_its_hash(client, chat_inbox):
    session = start(client, chat_inbox)

    token = session["visitor_token"]
    assert len(token) >= 22
    visitor = ChatVisitor.objects.get()
    assert visitor.identity.kind == IdentityKind.CHAT_VISITOR
    assert token not in visitor.identity.value
    assert session["ws_url"] == f"ws://testserver/ws/chat/{chat_inbox.key}/?token={token}"
    assert (session["messages"], session["unread"], session["visitor"]["verified"]) == ([], 0, False)


def test_a_returning_visitor_sees_their_history_oldest_first(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "First", "c-1")
    say(client, chat_inbox, token, "Second", "c-2")

    again = post(client, chat_inbox, "session", {"visitor_token": token}).json()

    assert again["visitor_token"] == token
    assert [(m["body"], m["direction"], m["client_id"]) for m in again["messages"]] == [
        ("First", "in", "c-1"), ("Second", "in", "c-2"),
    ]
    assert ChatVisitor.objects.count() == 1


def test_an_unknown_token_starts_a_new_visitor(client, chat_inbox):
    session = post(client, chat_inbox, "session", {"visitor_token": "x" * 32}).json()

    assert session["visitor_token"] != "x" * 32
    assert session["messages"] == []


def test_prechat_fields_are_recorded_and_an_impossible_email_is_a_400(client, chat_inbox):
    session = start(client, chat_inbox, name="Jane Roe", email=" Jane@Example.org ", phone="(202) 555-0143")

    assert session["visitor"] == {"name": "Jane Roe", "email": "jane@example.org", "phone": "+12025550143",
                                  "verified": False}
    customer = Customer.objects.get()
    assert customer.name == "Jane Roe"
    assert sorted(customer.identities.values_list("kind", flat=True)) == ["chat_visitor", "email", "phone"]
    bad = post(client, chat_inbox, "session", {"email": "not-an-address"})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("email:")


def test_a_known_email_joins_the_customer_and_their_open_conversation(client, chat_inbox, tenant):
    earlier = email_from(tenant, "jane@example.org")
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hi, it's about my parcel", "c-1")

    post(client, chat_inbox, "session", {"visitor_token": token, "email": "jane@example.org"})
    say(client, chat_inbox, token, "Any news?", "c-2")

    visitor = ChatVisitor.objects.select_related("identity").get()
    assert visitor.identity.customer_id == earlier.entry.customer_id
    conversation = Conversation.objects.get(pk=earlier.conversation.pk)
    bodies = list(conversation.entries.filter(kind="message").order_by("created_at").values_list("body", flat=True))
    assert bodies == ["Where is my parcel?", "Hi, it's about my parcel", "Any news?"]
    assert conversation.channels == ["email", "chat"]
    # The visitor sees their own chat, not the e-mail they did not prove they wrote.
    history = post(client, chat_inbox, "session", {"visitor_token": token}).json()["messages"]
    assert [m["body"] for m in history] == ["Hi, it's about my parcel", "Any news?"]


def test_a_known_phone_given_before_chatting_joins_the_sms_conversation(client, chat_inbox, tenant):
    earlier = sms_from(tenant, "+12025550143")
    token = start(client, chat_inbox, phone="202-555-0143")["visitor_token"]

    say(client, chat_inbox, token, "Following up from SMS")

    entry = TimelineEntry.objects.get(channel=Channel.CHAT)
    assert (entry.customer_id, entry.conversation_id) == (earlier.entry.customer_id, earlier.conversation.pk)
    assert Conversation.objects.count() == 1


# --- verified identity ----------------------------------------------------------------------------


def test_a_good_hmac_verifies_the_visitor(client, chat_inbox):
    session = start(client, chat_inbox, user_id="u-42", user_hash=user_hash("u-42"))

    assert session["visitor"]["verified"] is True
    identity = Identity.objects.get(kind=IdentityKind.EXTERNAL)
    assert (identity.value, identity.verified_at is not None) == ("chat-user:u-42", True)


def test_a_bad_hmac_is_refused_and_stores_nothing(client, chat_inbox):
    response = post(client, chat_inbox, "session", {"user_id": "u-42", "user_hash": user_hash("u-43")})
    wrong_key = post(client, chat_inbox, "session", {"user_id": "u-42", "user_hash": user_hash("u-42", "guess")})

    assert (response.status_code, wrong_key.status_code) == (403, 403)
    assert "user_hash" in response.json()["detail"]
    assert (Customer.objects.count(), ChatVisitor.objects.count()) == (0, 0)


def test_a_hash_without_an_identity_secret_is_refused(client, tenant):
    inbox = InboxFactory(tenant=tenant, channel=Channel.CHAT, name="No secret", settings={"allowed_origins": [SITE]})

    response = post(client, inbox, "session", {"user_id": "u-42", "user_hash": user_hash("u-42")})

    assert response.status_code == 403
    assert "identity secret" in response.json()["detail"]


def test_the_same_verified_user_on_two_devices_is_one_customer_with_one_history(client, chat_inbox):
    laptop = start(client, chat_inbox, user_id="u-42", user_hash=user_hash("u-42"))["visitor_token"]
    say(client, chat_inbox, laptop, "From my laptop")

    phone = start(client, chat_inbox, user_id="u-42", user_hash=user_hash("u-42"))

    assert phone["visitor_token"] != laptop
    assert [m["body"] for m in phone["messages"]] == ["From my laptop"]
    assert Customer.objects.filter(merged_into__isnull=True).count() == 1


def test_an_unverified_claim_never_merges_into_a_verified_customer(client, chat_inbox):
    owner = start(client, chat_inbox, user_id="u-42", user_hash=user_hash("u-42"), email="jane@example.org")
    say(client, chat_inbox, owner["visitor_token"], "My private order details")

    stranger = start(client, chat_inbox, email="jane@example.org")

    assert stranger["messages"] == []
    visitors = {v.verified_user_id: v.identity.customer_id for v in ChatVisitor.objects.select_related("identity")}
    assert visitors["u-42"] != visitors[""]
    assert Identity.objects.get(kind=IdentityKind.EMAIL, value="jane@example.org").customer_id == visitors["u-42"]


def test_a_verified_token_does_not_resume_for_someone_else_or_after_sign_out(client, chat_inbox):
    token = start(client, chat_inbox, user_id="u-42", user_hash=user_hash("u-42"))["visitor_token"]
    say(client, chat_inbox, token, "Signed in as 42")

    other_user = post(client, chat_inbox, "session",
                      {"visitor_token": token, "user_id": "u-7", "user_hash": user_hash("u-7")}).json()
    signed_out = post(client, chat_inbox, "session", {"visitor_token": token}).json()

    assert other_user["visitor_token"] != token and other_user["messages"] == []
    assert signed_out["visitor_token"] != token and signed_out["messages"] == []
    assert IDENTITY_SECRET not in str(other_user)


# --- messages -------------------------------------------------------------------------------------


def test_a_message_is_stored_on_the_timeline_and_answered_201(client, chat_inbox):
    token = start(client, chat_inbox, name="Jane")["visitor_token"]

    response = say(client, chat_inbox, token, "<b>Hello</b> there", "c-1")

    assert response.status_code == 201
    message = response.json()["message"]
    assert (message["body"], message["direction"], message["client_id"], message["author"]) == (
        "<b>Hello</b> there", "in", "c-1", None,
    )
    entry = TimelineEntry.objects.get(pk=message["id"])
    assert (entry.channel, entry.direction, entry.body, entry.conversation.first_channel) == (
        Channel.CHAT, Direction.INBOUND, "<b>Hello</b> there", Channel.CHAT,
    )


def test_the_same_client_id_never_duplicates_a_message(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]

    first = say(client, chat_inbox, token, "Hello", "c-1")
    again = say(client, chat_inbox, token, "Hello", "c-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    assert TimelineEntry.objects.filter(kind="message").count() == 1


def test_another_visitor_reusing_a_client_id_gets_their_own_message(client, chat_inbox):
    mine = start(client, chat_inbox)["visitor_token"]
    theirs = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, mine, "My secret", "c-1")

    response = say(client, chat_inbox, theirs, "Hello", "c-1")

    assert response.status_code == 201
    assert response.json()["message"]["body"] == "Hello"


def test_a_missing_or_unknown_token_is_a_401(client, chat_inbox):
    assert post(client, chat_inbox, "messages", {"body": "x"}).status_code == 401
    assert say(client, chat_inbox, "y" * 32).status_code == 401
    assert get(client, chat_inbox, "messages", token="y" * 32).status_code == 401


@pytest.mark.parametrize(("payload", "status", "reason"), [
    ({"body": "   ", "client_id": "c-1"}, 400, "empty"),
    ({"body": "x" * 5001, "client_id": "c-1"}, 413, "at most 5000"),
    ({"body": 42, "client_id": "c-1"}, 400, "string"),
    ({"body": "hi", "client_id": "has spaces in it"}, 400, "client_id"),
    ("[1, 2]", 400, "JSON object"),
    ("{not json", 400, "not valid JSON"),
])
def test_bad_messages_get_a_reason_and_store_nothing(client, chat_inbox, payload, status, reason):
    token = start(client, chat_inbox)["visitor_token"]

    response = post(client, chat_inbox, "messages", payload, token=token)

    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert TimelineEntry.objects.filter(kind="message").count() == 0


def test_an_oversized_request_is_refused_before_it_is_read(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]

    response = post(client, chat_inbox, "messages", {"body": "x" * 70_000}, token=token)

    assert response.status_code == 413


def test_the_inbox_can_set_a_shorter_message_limit(client, tenant):
    from tests.channels.web_chat.conftest import chat_inbox_for

    inbox = chat_inbox_for(tenant, name="Short", max_message_length=10)
    token = start(client, inbox)["visitor_token"]

    assert say(client, inbox, token, "x" * 11).status_code == 413
    assert start(client, inbox)["config"]["max_message_length"] == 10


def test_sending_too_fast_is_a_429_with_retry_after(client, tenant):
    from tests.channels.web_chat.conftest import chat_inbox_for

    inbox = chat_inbox_for(tenant, name="Strict", rate_limit_per_minute=3)
    token = start(client, inbox)["visitor_token"]

    answers = [say(client, inbox, token, f"m{n}", f"c-{n}") for n in range(4)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[3]["Retry-After"]) >= 1
    assert answers[3].json()["retry_after"] == int(answers[3]["Retry-After"])
    assert TimelineEntry.objects.filter(kind="message").count() == 3
    # Another visitor has their own allowance.
    assert say(client, inbox, start(client, inbox)["visitor_token"], "hi").status_code == 201


def test_a_file_is_stored_as_an_attachment_with_a_link_the_widget_can_fetch(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]
    upload = SimpleUploadedFile("receipt.png", b"\x89PNG fake image", content_type="image/png")

    response = client.post(f"/chat/{chat_inbox.key}/messages", {"file": upload, "client_id": "f-1"},
                           HTTP_ORIGIN=SITE, HTTP_AUTHORIZATION=f"Visitor {token}")

    assert response.status_code == 201
    attachment = response.json()["message"]["attachments"][0]
    assert (attachment["name"], attachment["size"], attachment["content_type"]) == ("receipt.png", 15, "image/png")
    download = client.get(attachment["url"].removeprefix("http://testserver"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"\x89PNG fake image"


def test_a_refused_file_type_is_a_400(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]
    upload = SimpleUploadedFile("page.html", b"<script>alert(1)</script>", content_type="text/html")

    response = client.post(f"/chat/{chat_inbox.key}/messages", {"file": upload},
                           HTTP_ORIGIN=SITE, HTTP_AUTHORIZATION=f"Visitor {token}")

    assert response.status_code == 400
    assert "text/html" in response.json()["detail"]


# --- polling, read, unread ------------------------------------------------------------------------


def agent_reply(tenant, agent, body="We're on it"):
    from channels_app.services import reply_send

    conversation = Conversation.objects.get(first_channel=Channel.CHAT)
    return reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.CHAT, body=body)


def test_polling_returns_newer_messages_with_the_agent_as_author(client, chat_inbox, tenant, agent):
    token = start(client, chat_inbox)["visitor_token"]
    first = say(client, chat_inbox, token, "Hello").json()["message"]
    agent.first_name, agent.last_name = "Ada", "Lovelace"
    agent.save()
    reply = agent_reply(tenant, agent)

    polled = get(client, chat_inbox, "messages", token=token, after=first["id"]).json()

    assert [m["id"] for m in polled["messages"]] == [reply.pk]
    assert polled["messages"][0]["author"] == {"name": "Ada Lovelace", "avatar_url": None, "initials": "AL"}
    assert (polled["unread"], polled["agent_typing"], polled["agents_online"]) == (1, None, False)
    reply.refresh_from_db()
    assert reply.delivery_status == DeliveryStatus.DELIVERED
    assert get(client, chat_inbox, "messages", token=token, after="x").status_code == 400


def test_an_avatar_is_shown_when_the_agent_has_one(client, chat_inbox, tenant, agent):
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hello")
    agent.membership.avatar_url = "https://cdn.acme.test/ada.png"
    agent.membership.save()
    agent_reply(tenant, agent)

    author = get(client, chat_inbox, "messages", token=token).json()["messages"][1]["author"]

    assert author["avatar_url"] == "https://cdn.acme.test/ada.png"


def test_reading_marks_agent_messages_read_and_clears_unread(client, chat_inbox, tenant, agent):
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hello")
    first, second = agent_reply(tenant, agent, "One"), agent_reply(tenant, agent, "Two")
    assert post(client, chat_inbox, "session", {"visitor_token": token}).json()["unread"] == 2

    assert post(client, chat_inbox, "read", {"up_to": first.pk}, token=token).status_code == 204
    assert get(client, chat_inbox, "messages", token=token).json()["unread"] == 1
    post(client, chat_inbox, "read", {"up_to": 10**12}, token=token)

    assert get(client, chat_inbox, "messages", token=token).json()["unread"] == 0
    statuses = set(TimelineEntry.objects.filter(pk__in=[first.pk, second.pk]).values_list("delivery_status", flat=True))
    assert statuses == {DeliveryStatus.READ}
    assert post(client, chat_inbox, "read", {"up_to": "all"}, token=token).status_code == 400
    # A later reply is unread again: reading "up to a huge id" did not read the future.
    agent_reply(tenant, agent, "Three")
    assert get(client, chat_inbox, "messages", token=token).json()["unread"] == 1


# --- presence and offline -------------------------------------------------------------------------


def test_the_widget_is_told_when_the_team_is_back(client, chat_inbox, tenant):
    import datetime

    from routing.models import BusinessCalendar, CalendarInterval

    calendar = BusinessCalendar.objects.create(tenant=tenant, name="Never now", time_zone="UTC")
    # Open one minute a week, at a time that is not now: closed now, and a next opening exists.
    now = datetime.datetime.now(datetime.UTC)
    later = (now + datetime.timedelta(hours=3)).replace(second=0, microsecond=0)
    CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=later.weekday(), start=later.time(),
                                    end=(later + datetime.timedelta(minutes=1)).time())

    body = get(client, chat_inbox, "config").json()

    assert body["agents_online"] is False
    assert datetime.datetime.fromisoformat(body["next_open_at"]) == later


def test_agents_online_is_reported(client, chat_inbox, online_agent):
    assert get(client, chat_inbox, "config").json()["agents_online"] is True


def test_an_offline_message_gives_the_conversation_an_email_to_follow_up_on(client, chat_inbox, tenant, email_inbox):
    from conversations.selectors import conversation_reply_channels

    token = start(client, chat_inbox)["visitor_token"]

    response = post(client, chat_inbox, "offline",
                    {"name": "Jane", "email": "jane@example.org", "body": "Call me back about my order"}, token=token)

    assert response.status_code == 201
    assert response.json()["follow_up"] == "email"
    entry = TimelineEntry.objects.get(pk=response.json()["message"]["id"])
    assert entry.data["offline"] is True
    assert entry.customer.identities.filter(kind=IdentityKind.EMAIL, value="jane@example.org").exists()
    assert "chat-offline" in entry.conversation.tags
    channels = [value for value, _ in conversation_reply_channels(conversation=entry.conversation)]
    assert "email" in channels


def test_an_offline_message_needs_an_email(client, chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]

    response = post(client, chat_inbox, "offline", {"name": "Jane", "body": "Hello?"}, token=token)

    assert response.status_code == 400
    assert "e-mail" in response.json()["detail"]
    assert not TimelineEntry.objects.filter(kind="message").exists()


# --- tenant isolation -----------------------------------------------------------------------------


def test_a_token_of_tenant_a_never_reaches_tenant_b(client, chat_inbox, other_chat_inbox):
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Acme only")

    assert say(client, other_chat_inbox, token, "Hello").status_code == 401
    assert get(client, other_chat_inbox, "messages", token=token).status_code == 401
    resumed = post(client, other_chat_inbox, "session", {"visitor_token": token}).json()
    assert resumed["visitor_token"] != token and resumed["messages"] == []
    assert ChatVisitor.objects.filter(tenant=other_chat_inbox.tenant).count() == 1


def test_an_email_known_in_another_tenant_joins_nothing_there(client, chat_inbox, other_tenant):
    foreign = email_from(other_tenant, "jane@example.org")

    start(client, chat_inbox, email="jane@example.org")

    mine = Identity.objects.get(tenant=chat_inbox.tenant, kind=IdentityKind.EMAIL)
    assert mine.customer_id != foreign.entry.customer_id
    assert Conversation.objects.get(pk=foreign.conversation.pk).status == Status.OPEN


# --- the workspace's typing ping ------------------------------------------------------------------


def test_an_agent_writing_a_chat_reply_shows_as_typing_when_the_visitor_polls(client, chat_inbox, agent):
    from django.test import Client

    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hello")
    conversation = Conversation.objects.get()
    workspace = Client()
    workspace.force_login(agent)

    response = workspace.post(f"/app/chat/conversations/{conversation.number}/typing/")

    assert response.status_code == 204
    polled = get(client, chat_inbox, "messages", token=token).json()
    assert polled["agent_typing"] == {"name": agent.membership.name}


def test_another_tenants_agent_cannot_send_typing_to_a_visitor(client, chat_inbox, outsider):
    from django.test import Client

    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hello")
    conversation = Conversation.objects.get()
    stranger = Client()
    stranger.force_login(outsider)

    response = stranger.post(f"/app/chat/conversations/{conversation.number}/typing/")

    assert response.status_code == 404
    assert get(client, chat_inbox, "messages", token=token).json()["agent_typing"] is None


def test_an_agent_reply_from_the_workspace_composer_reaches_the_visitor(client, chat_inbox, agent, celery_eager,
                                                                         django_capture_on_commit_callbacks):
    from django.test import Client

    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Hello")
    conversation = Conversation.objects.get()
    workspace = Client()
    workspace.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = workspace.post(f"/app/conversations/{conversation.number}/reply/",
                                  {"channel": "chat", "body": "Hi, Ada here"})

    assert response.status_code in (200, 302)
    entry = TimelineEntry.objects.get(direction=Direction.OUTBOUND)
    assert (entry.channel, entry.delivery_status, entry.external_id) == (Channel.CHAT, DeliveryStatus.SENT, f"chat-{entry.pk}")
    polled = get(client, chat_inbox, "messages", token=token).json()["messages"]
    assert [m["body"] for m in polled] == ["Hello", "Hi, Ada here"]


def test_a_chat_reply_to_an_offline_message_is_refused_in_favour_of_email(client, chat_inbox, tenant, agent):
    from channels_app.adapters.base import SendRefused

    token = start(client, chat_inbox)["visitor_token"]
    post(client, chat_inbox, "offline", {"email": "jane@example.org", "body": "Please write back"}, token=token)

    with pytest.raises(SendRefused, match="reply by e-mail to jane@example.org"):
        agent_reply(tenant, agent)
    # Once the visitor chats again, chat replies are fine.
    say(client, chat_inbox, token, "I'm back", "c-2")
    assert agent_reply(tenant, agent).channel == Channel.CHAT


def test_a_satisfaction_survey_carries_its_link_and_score(client, chat_inbox, tenant, agent):
    token = start(client, chat_inbox)["visitor_token"]
    say(client, chat_inbox, token, "Thanks, solved")
    survey = agent_reply(tenant, agent, "How did we do?")
    survey.data = {**survey.data, "csat": {"token": "tok-123", "score": None}}
    survey.save()

    message = get(client, chat_inbox, "messages", token=token).json()["messages"][-1]

    assert message["csat"] == {"url": "http://testserver/csat/tok-123/", "score": None}
    assert "csat" not in get(client, chat_inbox, "messages", token=token).json()["messages"][0]
