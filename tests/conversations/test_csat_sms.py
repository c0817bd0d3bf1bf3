"""CSAT on SMS and WhatsApp: the survey reaches (fake) Twilio; a signed reply with a digit answers it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.csat import TEXT_SURVEY, csat_parse_text_answer
from conversations.models import CsatSurvey, Status, TimelineEntry
from conversations.services import conversation_set_status
from customers.models import Identity
from tests.channels.twilio import conftest as twilio_conftest
from tests.channels.twilio.conftest import customer_writes, twilio_inbox

pytestmark = pytest.mark.django_db

# The Twilio tests' fake REST server, used here too.
fake_twilio = twilio_conftest.fake_twilio
inbox_cache_cleared = twilio_conftest.inbox_cache_cleared


@pytest.fixture(autouse=True)
def eager_tasks(celery_eager):
    yield


def resolve(tenant, conversation, capture):
    """Resolve and run what follows the commit: the survey task, then its delivery (Celery runs eagerly)."""
    with capture(execute=True):
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    conversation.refresh_from_db()
    return CsatSurvey.objects.for_tenant(tenant).filter(conversation=conversation).first()


def test_a_resolved_sms_conversation_gets_one_survey_through_twilio(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation

    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    [create] = fake_twilio.creates()
    assert (create["form"]["To"], create["form"]["From"], create["form"]["Body"]) == (
        "+12025550143", "+15550100000", TEXT_SURVEY,
    )
    assert (survey.channel, survey.inbox, survey.recipient, survey.refused_reason) == ("sms", inbox, "+12025550143", "")
    entry = survey.sent_entry
    entry.refresh_from_db()
    assert (entry.direction, entry.channel, entry.delivery_status, entry.conversation) == (
        "outbound", "sms", "sent", conversation,
    )
    assert entry.data["csat"] == {"token": survey.token, "score": None, "survey_id": survey.pk}
    assert entry.external_id.startswith("SM")
    [sent_event] = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_SENT)
    assert (sent_event.channel, sent_event.inbox_id_snapshot, sent_event.data) == ("sms", inbox.pk, {"survey_id": survey.pk})
    # A survey is not an agent's reply.
    assert conversation.first_response_at is None


def test_a_digit_reply_records_the_score_without_reopening(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    reply = customer_writes(client, inbox, Body="4")

    conversation.refresh_from_db()
    survey.refresh_from_db()
    assert conversation.status == Status.RESOLVED
    assert conversation.reopen_count == 0 and conversation.waiting_since is None
    assert (reply.conversation, reply.direction, reply.body) == (conversation, "inbound", "4")
    assert (survey.score, survey.comment, survey.answered_via, survey.answer_entry.event) == (4, "", "reply", "csat_answered")
    assert survey.answer_entry.data["score"] == 4
    [answer] = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER)
    assert (answer.channel, answer.data["score"], answer.data["survey_id"]) == ("sms", 4, survey.pk)
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.REOPEN).count() == 0


def test_a_reply_with_words_after_the_digit_keeps_them_as_the_comment(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    customer_writes(client, inbox, Body="4 great job")

    survey.refresh_from_db()
    conversation.refresh_from_db()
    assert (survey.score, survey.comment, conversation.status) == (4, "great job", Status.RESOLVED)


def test_any_other_text_reopens_the_conversation_as_usual(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    reply = customer_writes(client, inbox, Body="my order is late")

    conversation.refresh_from_db()
    survey.refresh_from_db()
    assert (reply.conversation, conversation.status, conversation.reopen_count) == (conversation, Status.OPEN, 1)
    assert survey.score is None
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER).count() == 0


def test_a_later_reply_changes_the_answer_and_the_latest_counts(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    customer_writes(client, inbox, Body="2")
    customer_writes(client, inbox, Body="5!")

    survey.refresh_from_db()
    assert survey.score == 5
    [answer] = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER)
    assert (answer.data["score"], answer.data["changes"]) == (5, 1)
    events = TimelineEntry.objects.filter(conversation=conversation, event="csat_answered").order_by("id")
    assert [(e.data["score"], e.data["previous_score"]) for e in events] == [(2, None), (5, 2)]


def test_a_redelivered_reply_is_one_answer(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    resolve(tenant, conversation, django_capture_on_commit_callbacks)

    first = customer_writes(client, inbox, Body="3")
    again = customer_writes(client, inbox, Body="3", MessageSid=first.external_id)

    assert first.pk == again.pk
    assert TimelineEntry.objects.filter(conversation=conversation, event="csat_answered").count() == 1


def test_a_digit_after_the_answer_window_is_an_ordinary_message(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    tenant.reopen_window_days = 30
    tenant.save()
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)
    CsatSurvey.objects.filter(pk=survey.pk).update(sent_at=timezone.now() - timedelta(days=8))

    customer_writes(client, inbox, Body="5")

    conversation.refresh_from_db()
    survey.refresh_from_db()
    assert (conversation.status, survey.score) == (Status.OPEN, None)


def test_a_digit_from_another_number_of_the_customer_is_an_ordinary_message(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    customer_writes(client, inbox, From="+12025550199", Body="5")

    survey.refresh_from_db()
    assert survey.score is None


def test_resolve_reopen_resolve_sends_one_survey(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    resolve(tenant, conversation, django_capture_on_commit_callbacks)
    customer_writes(client, inbox, Body="Actually, one more thing")
    conversation.refresh_from_db()
    assert conversation.status == Status.OPEN

    resolve(tenant, conversation, django_capture_on_commit_callbacks)

    assert len(fake_twilio.creates()) == 1
    assert CsatSurvey.objects.for_tenant(tenant).count() == 1
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_SENT).count() == 1


def test_an_inbox_with_surveys_off_sends_none(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    inbox.settings = {**inbox.settings, "csat": {"enabled": False}}
    inbox.save()
    conversation = customer_writes(client, inbox).conversation

    assert resolve(tenant, conversation, django_capture_on_commit_callbacks) is None
    assert fake_twilio.creates() == []


def test_an_opted_out_number_gets_no_survey_and_the_timeline_says_why(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    customer_writes(client, inbox, Body="STOP")
    assert Identity.objects.get(tenant=tenant, kind="phone").opted_out_at is not None

    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    assert fake_twilio.creates() == []
    assert (survey.sent_entry, survey.sent_at) == (None, None)
    assert "opted out" in survey.refused_reason
    [note] = TimelineEntry.objects.filter(conversation=conversation, event="csat_not_sent")
    assert "opted out" in note.data["reason"]
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_SENT).count() == 0
    # Refused once is asked once: resolving again does not try again.
    customer_writes(client, inbox, Body="START")
    customer_writes(client, inbox, Body="Hello again")
    resolve(tenant, conversation, django_capture_on_commit_callbacks)
    assert fake_twilio.creates() == []


def test_a_provider_failure_marks_the_survey_message_failed(client, tenant, fake_twilio, django_capture_on_commit_callbacks):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation
    fake_twilio.answer(("error", 400, 21211, "The 'To' number is not a valid phone number."))

    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    survey.sent_entry.refresh_from_db()
    assert (survey.sent_entry.delivery_status, survey.sent_entry.error_code) == ("failed", "21211")


def test_whatsapp_surveys_go_as_whatsapp_and_take_a_digit_reply(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    conversation = customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671").conversation

    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)

    [create] = fake_twilio.creates()
    assert (create["form"]["To"], create["form"]["From"], create["form"]["Body"]) == (
        "whatsapp:+12025550143", "whatsapp:+14155552671", TEXT_SURVEY,
    )
    customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671", Body=" 5 thanks ")
    survey.refresh_from_db()
    conversation.refresh_from_db()
    assert (survey.channel, survey.score, survey.comment, conversation.status) == ("whatsapp", 5, "thanks", Status.RESOLVED)


def test_whatsapp_outside_the_24_hour_window_is_refused_not_sent(
    client, tenant, fake_twilio, django_capture_on_commit_callbacks
):
    inbox = twilio_inbox(tenant, channel=Channel.WHATSAPP, address="+14155552671")
    inbound = customer_writes(client, inbox, From="whatsapp:+12025550143", To="whatsapp:+14155552671")
    TimelineEntry.objects.filter(pk=inbound.pk).update(created_at=timezone.now() - timedelta(hours=25))

    survey = resolve(tenant, inbound.conversation, django_capture_on_commit_callbacks)

    assert fake_twilio.creates() == []
    assert "24" in survey.refused_reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("5", (5, "")), (" 4 ", (4, "")), ("5!", (5, "")), ("5 thanks", (5, "thanks")), ("3/5", (3, "")),
        ("4 - quick and kind", (4, "quick and kind")), ("1\nnobody called me back", (1, "nobody called me back")),
    ],
)
def test_text_answers_are_a_digit_and_an_optional_comment(body, expected):
    answer = csat_parse_text_answer(body)
    assert (answer.score, answer.comment) == expected


@pytest.mark.parametrize(
    "body", ["my order is late", "0", "6", "10", "4.5", "2nd time asking", "5 but where is my refund?", "", "five"]
)
def test_other_texts_are_not_answers(body):
    assert csat_parse_text_answer(body) is None
