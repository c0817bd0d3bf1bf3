"""CSAT end to end: a real Celery worker, concurrent sends, and the figures the reports read."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from analytics.reports import ReportScope, report_table
from analytics.rollups import rollups_check
from conversations.csat import csat_answer_record, csat_survey_send
from conversations.models import CsatSurvey, Status
from conversations.services import InboundMessage, conversation_set_status, message_record_inbound
from tests.channels.twilio import conftest as twilio_conftest
from tests.channels.twilio.conftest import customer_writes, twilio_inbox
from tests.conversations.conftest import run_in_threads

fake_twilio = twilio_conftest.fake_twilio
inbox_cache_cleared = twilio_conftest.inbox_cache_cleared


def sms_conversation(tenant, inbox, number="+12025550143", sid="SM" + "1" * 32):
    return message_record_inbound(tenant=tenant, inbox=inbox, message=InboundMessage(
        channel="sms", sender_kind="phone", sender_value=number, body="Hello", external_id=sid,
        data={"from": number, "to": inbox.address},
    )).conversation


def resolved(tenant, conversation):
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    conversation.refresh_from_db()
    return conversation


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_survey_once_after_the_resolve_commits(client, tenant, fake_twilio, celery_worker_live):
    inbox = twilio_inbox(tenant)
    conversation = customer_writes(client, inbox).conversation

    resolved(tenant, conversation)

    deadline = time.monotonic() + 15
    while not fake_twilio.accepted() and time.monotonic() < deadline:
        time.sleep(0.1)
    [create] = fake_twilio.accepted()
    assert create["form"]["To"] == "+12025550143"
    survey = CsatSurvey.objects.get(tenant=tenant, conversation=conversation)
    # A repeated task (a redelivery after a lost ack) sends nothing more.
    assert csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk) is None
    time.sleep(0.5)
    assert len(fake_twilio.creates()) == 1
    survey.sent_entry.refresh_from_db()
    assert survey.sent_entry.delivery_status == "sent"


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_at_once_make_one_survey(tenant):
    inbox = twilio_inbox(tenant)
    conversation = resolved(tenant, sms_conversation(tenant, inbox))

    results = run_in_threads(lambda: csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk), 4)

    assert len([r for r in results if r is not None]) == 1
    assert CsatSurvey.objects.filter(conversation=conversation).count() == 1
    assert AnalyticsEvent.objects.filter(name=EventName.CSAT_SENT, conversation=conversation).count() == 1


@pytest.mark.django_db
def test_a_conversation_reopened_before_the_task_runs_gets_no_survey_yet(tenant):
    inbox = twilio_inbox(tenant)
    conversation = resolved(tenant, sms_conversation(tenant, inbox))
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.OPEN)

    assert csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk) is None
    assert not CsatSurvey.objects.filter(conversation=conversation).exists()


@pytest.mark.django_db
def test_the_task_for_another_tenant_finds_nothing(tenant, other_tenant):
    conversation = resolved(tenant, sms_conversation(tenant, twilio_inbox(tenant)))
    assert csat_survey_send(tenant_id=other_tenant.pk, conversation_id=conversation.pk) is None
    assert not CsatSurvey.objects.exists()


@pytest.mark.django_db
def test_answers_feed_the_csat_average_and_response_rate_and_the_rollups_follow_changes(tenant):
    inbox = twilio_inbox(tenant)
    surveys = []
    for index, number in enumerate(["+12025550143", "+12025550144", "+12025550145"]):
        conversation = resolved(tenant, sms_conversation(tenant, inbox, number=number, sid=f"SM{index:032d}"))
        surveys.append(csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk))

    csat_answer_record(tenant=tenant, survey_id=surveys[0].pk, score=2, via="link")
    csat_answer_record(tenant=tenant, survey_id=surveys[1].pk, score=5, via="link")
    # The first customer changes their mind: the latest answer counts, once.
    csat_answer_record(tenant=tenant, survey_id=surveys[0].pk, score=4, via="form")

    today = timezone.now().date()  # a few days either side covers the tenant's time zone
    scope = ReportScope(tenant=tenant, start=today - timedelta(days=2), end=today + timedelta(days=2))
    overall = report_table(scope)[-1].values
    assert overall["csat_average"] == pytest.approx(4.5)
    assert overall["csat_response_rate"] == pytest.approx(2 / 3)
    assert rollups_check(tenant=tenant, start=scope.start, end=scope.end) == []
