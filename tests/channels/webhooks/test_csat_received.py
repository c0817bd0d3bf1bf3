"""csat.received: one delivery per recorded (or changed) answer, with ids, score and channel but never the comment."""

from __future__ import annotations

import pytest

from channels_app.models import WebhookDelivery
from conversations.csat import csat_answer_record, csat_survey_send
from conversations.models import Status
from conversations.services import InboundMessage, conversation_set_status, message_record_inbound
from omnidesk.lib.events import EVENT_SCHEMAS
from tests.channels.twilio.conftest import twilio_inbox
from tests.channels.webhooks.conftest import make_subscription

pytestmark = pytest.mark.django_db

COMMENT = "The courier was rude but Sam sorted it"


@pytest.fixture
def survey(tenant):
    """An SMS survey sent for a resolved conversation (its delivery to Twilio is not needed here)."""
    inbox = twilio_inbox(tenant)
    conversation = message_record_inbound(tenant=tenant, inbox=inbox, message=InboundMessage(
        channel="sms", sender_kind="phone", sender_value="+12025550143", body="Hello", external_id="SM" + "1" * 32,
        data={"from": "+12025550143", "to": inbox.address},
    )).conversation
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    return csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk)


def answer(tenant, survey, capture, **fields):
    with capture(execute=True):
        csat_answer_record(tenant=tenant, survey_id=survey.pk, **fields)


def test_an_answer_is_delivered_once_with_ids_score_and_channel_but_no_comment(
    tenant, survey, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url, events=["csat.received"])

    answer(tenant, survey, django_capture_on_commit_callbacks, score=4, comment=COMMENT, via="link")

    [request] = receiver.requests
    body = request.json()
    conversation = survey.conversation
    assert (request.headers["X-Omnidesk-Event"], body["type"], body["tenant"]) == ("csat.received",) * 2 + ("acme",)
    assert {key: value for key, value in body["data"].items() if key != "conversation"} == {
        "conversation_id": conversation.pk, "number": conversation.number, "survey_id": survey.pk,
        "customer_id": conversation.customer_id, "score": 4, "previous_score": None, "has_comment": True,
        "channel": "sms", "via": "link",
    }
    assert (body["data"]["conversation"]["id"], body["data"]["conversation"]["status"]) == (conversation.pk, "resolved")
    assert "courier" not in request.body.decode()
    assert WebhookDelivery.objects.for_tenant(tenant).count() == 1


def test_a_changed_answer_is_a_second_delivery_with_the_previous_score(
    tenant, survey, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url, events=["csat.received"])
    answer(tenant, survey, django_capture_on_commit_callbacks, score=2, via="link")

    answer(tenant, survey, django_capture_on_commit_callbacks, score=5, via="form")

    assert [(r.json()["data"]["score"], r.json()["data"]["previous_score"], r.json()["data"]["via"])
            for r in receiver.requests] == [(2, None, "link"), (5, 2, "form")]
    assert len({r.headers["X-Omnidesk-Delivery"] for r in receiver.requests}) == 2


def test_the_same_answer_again_sends_nothing_more(
    tenant, survey, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url, events=["csat.received"])
    answer(tenant, survey, django_capture_on_commit_callbacks, score=3, via="link")

    # A mail scanner and then the customer opening the same one-click link.
    answer(tenant, survey, django_capture_on_commit_callbacks, score=3, via="link")

    assert len(receiver.requests) == 1


def test_a_subscription_to_other_events_gets_no_csat_delivery(
    tenant, survey, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url, events=["message.created"])

    answer(tenant, survey, django_capture_on_commit_callbacks, score=5, via="link")

    assert receiver.requests == []
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()


def test_another_tenants_subscription_hears_nothing(
    tenant, other_tenant, survey, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(other_tenant, receiver.url, events=["csat.received"])

    answer(tenant, survey, django_capture_on_commit_callbacks, score=5, via="link")

    assert receiver.requests == []


def test_the_domain_event_carries_exactly_its_schema(
    tenant, survey, captured_events, django_capture_on_commit_callbacks
):
    answer(tenant, survey, django_capture_on_commit_callbacks, score=1, comment="Slow", via="reply")

    [event] = [e for e in captured_events if e.name == "csat.received"]
    assert event.payload.keys() == EVENT_SCHEMAS["csat.received"]
    assert (event.tenant_id, event.payload["has_comment"], "Slow" in event.payload.values()) == (tenant.pk, True, False)
