"""The CSAT sweeper: surveys whose send task never ran (broker down at the resolve) still go out, once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from analytics.models import AnalyticsEvent, EventName
from conversations.csat import csat_set_enabled, csat_survey_send, csat_surveys_due, csat_surveys_sweep
from conversations.models import Conversation, CsatSurvey, Direction, Status, TimelineEntry
from conversations.services import InboundMessage, conversation_set_status, message_record_inbound
from conversations.tasks import send_csat_survey, sweep_csat_surveys
from tests.channels.twilio import conftest as twilio_conftest
from tests.channels.twilio.conftest import twilio_inbox

fake_twilio = twilio_conftest.fake_twilio
inbox_cache_cleared = twilio_conftest.inbox_cache_cleared


def resolved_conversation(tenant, inbox, *, number="+12025550143", minutes_ago: float = 3):
    """A conversation resolved `minutes_ago` while the broker was down, so its survey task never ran."""
    conversation = message_record_inbound(tenant=tenant, inbox=inbox, message=InboundMessage(
        channel=inbox.channel, sender_kind="phone", sender_value=number, body="Hello",
        external_id=f"SM{number[1:]:0>32}", data={"from": number, "to": inbox.address},
    )).conversation
    with mock.patch.object(send_csat_survey, "apply_async", side_effect=BrokerDown("Redis is down")):
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    conversation.refresh_from_db()
    return conversation


def survey_messages(conversation) -> int:
    return TimelineEntry.objects.filter(
        conversation=conversation, direction=Direction.OUTBOUND, data__csat__isnull=False
    ).count()


def run_together(*jobs):
    """Start every job at the same moment, each in its own thread with its own database connection."""
    start = threading.Barrier(len(jobs))
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(index, job) -> None:
        try:
            start.wait()
            results[index] = job()
        except BaseException as exc:  # noqa: B036 - re-raised in the calling thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, job)) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == len(jobs), "a job did not finish"
    return [results[index] for index in range(len(jobs))]


@pytest.mark.django_db
def test_a_survey_whose_task_was_lost_is_sent_by_the_sweep(
    tenant, fake_twilio, celery_eager, django_capture_on_commit_callbacks
):
    conversation = resolved_conversation(tenant, twilio_inbox(tenant))

    with django_capture_on_commit_callbacks(execute=True):
        sent = csat_surveys_sweep()

    assert sent == 1
    [create] = fake_twilio.creates()
    assert create["form"]["To"] == "+12025550143"
    survey = CsatSurvey.objects.for_tenant(tenant).get(conversation=conversation)
    assert (survey.channel, survey.sent_at is not None) == ("sms", True)
    # The next sweep finds nothing left to do.
    assert csat_surveys_sweep() == 0
    assert len(fake_twilio.creates()) == 1


@pytest.mark.django_db
def test_only_resolves_between_two_minutes_and_seven_days_old_are_due(tenant):
    inbox = twilio_inbox(tenant)
    just_now = resolved_conversation(tenant, inbox, number="+12025550141", minutes_ago=1)
    due = resolved_conversation(tenant, inbox, number="+12025550142", minutes_ago=3)
    last_week = resolved_conversation(tenant, inbox, number="+12025550143", minutes_ago=8 * 24 * 60)

    assert csat_surveys_due() == [(tenant.pk, due.pk)]
    assert {just_now.status, last_week.status} == {Status.RESOLVED}


@pytest.mark.django_db
def test_the_send_delay_is_added_to_the_grace(tenant, settings):
    settings.CSAT_SEND_DELAY_SECONDS = 300
    resolved_conversation(tenant, twilio_inbox(tenant), minutes_ago=3)

    assert csat_surveys_due() == []


@pytest.mark.django_db
def test_reopened_surveyed_refused_and_switched_off_conversations_are_not_due(tenant, other_tenant):
    inbox = twilio_inbox(tenant)
    reopened = resolved_conversation(tenant, inbox, number="+12025550141")
    conversation_set_status(tenant=tenant, conversation=reopened, status=Status.OPEN)
    surveyed = resolved_conversation(tenant, inbox, number="+12025550142")
    csat_survey_send(tenant_id=tenant.pk, conversation_id=surveyed.pk)
    quiet_inbox = twilio_inbox(tenant, address="+15550100001")
    csat_set_enabled(quiet_inbox, False)
    quiet_inbox.save()
    resolved_conversation(tenant, quiet_inbox, number="+12025550143")
    theirs = resolved_conversation(other_tenant, twilio_inbox(other_tenant), number="+12025550144")

    assert csat_surveys_due() == [(other_tenant.pk, theirs.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_sweep_and_the_normal_task_at_once_make_one_survey(tenant):
    conversation = resolved_conversation(tenant, twilio_inbox(tenant))

    results = run_together(
        csat_surveys_sweep,
        lambda: csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk),
        csat_surveys_sweep,
        lambda: csat_survey_send(tenant_id=tenant.pk, conversation_id=conversation.pk),
    )

    # Two sweeps report 0 or 1 each, two tasks a survey or None: exactly one of the four sent it.
    assert [bool(result) for result in results].count(True) == 1
    assert CsatSurvey.objects.filter(conversation=conversation).count() == 1
    assert survey_messages(conversation) == 1
    assert AnalyticsEvent.objects.filter(name=EventName.CSAT_SENT, conversation=conversation).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_sweep_task(tenant, fake_twilio, celery_worker_live):
    conversation = resolved_conversation(tenant, twilio_inbox(tenant))

    sweep_csat_surveys.delay()

    deadline = time.monotonic() + 15
    while not fake_twilio.accepted() and time.monotonic() < deadline:
        time.sleep(0.1)
    [create] = fake_twilio.accepted()
    assert create["form"]["To"] == "+12025550143"
    assert survey_messages(conversation) == 1


def test_beat_runs_the_sweep_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["csat-sweep"]
    assert (entry["task"], entry["schedule"]) == (sweep_csat_surveys.name, 60.0)
