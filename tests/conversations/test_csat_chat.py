"""CSAT in web chat: an inline survey message carrying the token; the widget answers with a JSON POST (CORS)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from analytics.models import AnalyticsEvent, EventName
from conversations.models import CsatSurvey, Status, TimelineEntry
from conversations.services import conversation_set_status
from tests.channels.web_chat import conftest as chat_conftest
from tests.channels.web_chat.conftest import SITE, chat_inbox_for, get, post, start

pytestmark = pytest.mark.django_db

fresh_rate_limits = chat_conftest.fresh_rate_limits


@pytest.fixture(autouse=True)
def eager_tasks(celery_eager):
    yield


@pytest.fixture
def chat(client, tenant, django_capture_on_commit_callbacks):
    """A visitor who wrote in the widget, and the survey sent when their conversation was resolved."""
    inbox = chat_inbox_for(tenant)
    token = start(client, inbox, name="Vera")["visitor_token"]
    response = post(client, inbox, "messages", {"body": "Where is my parcel?", "client_id": "c-1"}, token=token)
    assert response.status_code == 201, response.content
    entry = TimelineEntry.objects.get(tenant=tenant, inbox=inbox, direction="inbound")
    with django_capture_on_commit_callbacks(execute=True):
        conversation_set_status(tenant=tenant, conversation=entry.conversation, status=Status.RESOLVED)
    survey = CsatSurvey.objects.for_tenant(tenant).get(conversation=entry.conversation)
    return inbox, token, survey


def answer(client, survey, payload, *, origin=SITE):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(f"/csat/{survey.token}/", data=body, content_type="application/json", **headers)


def test_the_survey_is_a_chat_message_carrying_the_token(client, tenant, chat):
    inbox, token, survey = chat
    entry = survey.sent_entry
    entry.refresh_from_db()
    assert (survey.channel, entry.channel, entry.direction, entry.delivery_status) == ("chat", "chat", "outbound", "sent")
    assert entry.data["csat"]["token"] == survey.token and entry.data["csat"]["score"] is None
    # What the widget reads: the survey URL it posts to.
    messages = get(client, inbox, "messages", token=token, after=0).json()["messages"]
    [survey_message] = [m for m in messages if m.get("csat")]
    assert survey_message["csat"] == {"url": f"{settings.PUBLIC_BASE_URL}/csat/{survey.token}/", "score": None}
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_SENT, channel="chat").count() == 1


def test_the_widget_posts_the_rating_with_cors_for_an_allowed_origin(client, tenant, chat):
    _, _, survey = chat

    response = answer(client, survey, {"score": 5, "comment": "Lovely"})

    assert response.status_code == 200, response.content
    assert response.json() == {"score": 5, "comment": "Lovely"}
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in response["Vary"]
    survey.refresh_from_db()
    assert (survey.score, survey.comment, survey.answered_via) == (5, "Lovely", "widget")
    survey.sent_entry.refresh_from_db()
    assert survey.sent_entry.data["csat"]["score"] == 5
    [event] = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER)
    assert (event.channel, event.data["score"], event.data["survey_id"]) == ("chat", 5, survey.pk)
    [entry] = TimelineEntry.objects.filter(conversation=survey.conversation, event="csat_answered")
    assert (entry.data["score"], entry.data["comment"]) == (5, "Lovely")
    survey.conversation.refresh_from_db()
    assert survey.conversation.status == Status.RESOLVED


def test_the_preflight_allows_the_inbox_origin(client, chat):
    _, _, survey = chat
    response = client.options(f"/csat/{survey.token}/", HTTP_ORIGIN=SITE,
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://shop.example.evil.test", "null", ""])
def test_another_origin_is_refused_with_403(client, chat, origin):
    _, _, survey = chat
    response = answer(client, survey, {"score": 1}, origin=origin)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    preflight = client.options(f"/csat/{survey.token}/", HTTP_ORIGIN=origin)
    assert preflight.status_code == 403
    survey.refresh_from_db()
    assert survey.score is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"score": 0}, "1 to 5"), ({"score": "great"}, "1 to 5"), ({"score": True}, "1 to 5"), ({}, "score"),
        ("[5]", "score"), ("{not json", "not valid JSON"), ({"score": 4, "comment": 5}, "text"),
        ({"score": 4, "comment": "x" * 2001}, "2000"),
    ],
)
def test_bad_answers_are_a_400_with_the_reason(client, chat, payload, reason):
    _, _, survey = chat
    response = answer(client, survey, payload)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert response["Access-Control-Allow-Origin"] == SITE


def test_an_unknown_token_is_a_json_404(client, chat):
    response = client.post("/csat/not-a-real-token/", data="{}", content_type="application/json", HTTP_ORIGIN=SITE)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_an_email_survey_cannot_be_answered_by_json_even_from_a_listed_origin(client, email_survey):
    assert answer(client, email_survey, {"score": 5}).status_code == 403


def test_another_tenants_chat_site_cannot_answer(client, tenant, other_tenant, chat):
    _, _, survey = chat
    other = chat_inbox_for(other_tenant, name="Globex chat", allowed_origins=["https://globex.example"])
    assert other.pk
    assert answer(client, survey, {"score": 2}, origin="https://globex.example").status_code == 403


@pytest.fixture
def email_survey(tenant):
    """A sent e-mail survey whose inbox (oddly) lists the chat site as an origin."""
    from django.utils import timezone

    from conversations.services import InboundMessage, message_record_inbound
    from tests.factories import InboxFactory

    inbox = InboxFactory(tenant=tenant, channel="email", name="Mail", address="support@acme.test",
                         settings={"allowed_origins": [SITE]})
    result = message_record_inbound(tenant=tenant, inbox=inbox, message=InboundMessage(
        channel="email", sender_kind="email", sender_value="jane@example.org", body="Hi", external_id="<e1@x>",
        data={"from": "jane@example.org"},
    ))
    return CsatSurvey.objects.create(tenant=tenant, conversation=result.conversation, customer=result.conversation.customer,
                                     channel="email", inbox=inbox, recipient="jane@example.org", sent_at=timezone.now())
