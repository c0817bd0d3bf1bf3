"""The rollups equal a recomputation from the events: the check command, a tampered row and its rebuild,
concurrent writers, and revised events."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from analytics.models import AnalyticsEvent, AnalyticsRollup, EventName
from analytics.reports import ReportScope, report_table
from analytics.rollups import rollups_check, rollups_rebuild
from analytics.services import analytics_event_record, analytics_event_revise
from channels_app.models import Channel
from conversations.models import Conversation, Status
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    message_record_inbound,
    message_record_outbound,
)
from tests.analytics.conftest import MONDAY, NEXT_MONDAY, local
from tests.factories import CustomerFactory

RANGE = ["--tenant", "acme", "--start", MONDAY.isoformat(), "--end", NEXT_MONDAY.isoformat()]


def inbound(tenant, inbox, number: str, body: str = "Help") -> Conversation:
    message = InboundMessage(channel=inbox.channel, sender_kind="phone" if inbox.channel == Channel.SMS else "email",
                             sender_value=number, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


@pytest.fixture
def history(tenant, sms_inbox, email_inbox, agent, clock):
    """A day of work on two channels: arrivals, assignment, replies, a resolution and a reopen."""
    clock.at(local(MONDAY, 10))
    sms = inbound(tenant, sms_inbox, "+12025550101")
    clock.advance(90)
    conversation_assign(tenant=tenant, conversation=sms, assignee=agent)
    clock.advance(30)
    message_record_outbound(tenant=tenant, conversation=sms, author=agent, channel=Channel.SMS, inbox=sms_inbox, body="Hi")
    clock.advance(600)
    conversation_set_status(tenant=tenant, conversation=sms, status=Status.RESOLVED, actor=agent)
    clock.at(local(MONDAY, 23, 30))  # late in New York, already Tuesday in UTC
    inbound(tenant, sms_inbox, "+12025550101", "again")
    mail = inbound(tenant, email_inbox, "someone@example.org")
    analytics_event_record(conversation=mail, name=EventName.CSAT_SENT)
    return {"sms": sms, "mail": mail}


def check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("analytics_rollups_check", *RANGE, *args, stdout=out, stderr=StringIO())
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def figures(tenant) -> list:
    return [(row.channel, row.values) for row in report_table(ReportScope(tenant=tenant, start=MONDAY, end=NEXT_MONDAY))]


@pytest.mark.django_db
def test_the_check_passes_on_a_clean_history(tenant, history):
    code, out = check()
    assert code == 0
    assert "match the events" in out
    assert AnalyticsRollup.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_a_tampered_row_fails_the_check_and_a_rebuild_repairs_it(tenant, history):
    before = figures(tenant)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE analytics_analyticsrollup SET count = count + 5 "
            "WHERE tenant_id = %s AND level = 'channel' AND hour = -1 AND channel = 'sms' AND metric = 'new'",
            [tenant.pk],
        )
        assert cursor.rowcount == 1
    assert figures(tenant) != before

    code, out = check()
    assert code == 1
    assert out.splitlines() == [
        f"level=channel day={MONDAY} hour=-1 channel=sms inbox_id=0 team_id=0 agent_id=0 tier= metric=new: "
        "stored count=6 total=0.0, recomputed count=1 total=0.0"
    ]

    call_command("analytics_rollups_rebuild", *RANGE, stdout=StringIO())
    assert check() == (0, f"acme: rollups of {MONDAY}..{NEXT_MONDAY} match the events\n")
    assert figures(tenant) == before


@pytest.mark.django_db
def test_a_deleted_row_and_a_stray_row_are_both_listed(tenant, history, other_tenant):
    AnalyticsRollup.objects.filter(tenant=tenant, level="full", metric="resolved").delete()
    AnalyticsRollup.objects.create(tenant=tenant, day=MONDAY, level="channel", channel="voice", metric="new", count=2)
    mismatches = rollups_check(tenant=tenant, start=MONDAY, end=NEXT_MONDAY)
    assert sorted((m.key["level"], m.key["metric"], m.stored_count, m.expected_count) for m in mismatches) == [
        ("channel", "new", 2, None), ("full", "resolved", None, 1)]
    assert rollups_check(tenant=other_tenant, start=MONDAY, end=NEXT_MONDAY) == []  # another tenant is untouched

    rollups_rebuild(tenant=tenant, start=MONDAY, end=NEXT_MONDAY)
    assert rollups_check(tenant=tenant, start=MONDAY, end=NEXT_MONDAY) == []


@pytest.mark.django_db
def test_revising_an_event_keeps_the_check_clean(tenant, history):
    answer = analytics_event_record(conversation=history["mail"], name=EventName.CSAT_ANSWER, data={"score": 2})
    analytics_event_revise(event=answer, data={"score": 5})
    analytics_event_revise(event=answer, data={"score": "not a number"})  # an unusable answer leaves the rollups
    assert rollups_check(tenant=tenant, start=MONDAY, end=NEXT_MONDAY) == []
    assert not AnalyticsRollup.objects.filter(tenant=tenant, metric="csat_answer").exists()

    analytics_event_revise(event=answer, data={"score": 4})
    assert rollups_check(tenant=tenant, start=MONDAY, end=NEXT_MONDAY) == []
    overall = dict(figures(tenant))[""]
    assert overall["csat_average"] == 4.0 and overall["csat_response_rate"] == 1.0


@pytest.mark.django_db
def test_a_range_in_the_tenants_days_counts_an_event_at_23_30_local_on_its_local_day(tenant, history):
    late = AnalyticsRollup.objects.get(tenant=tenant, level="channel", hour=23, channel="email", metric="new")
    assert late.day == MONDAY and late.count == 1
    assert rollups_check(tenant=tenant, start=MONDAY, end=MONDAY) == []


WRITERS = 2
EVENTS_PER_WRITER = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_the_same_rollup_rows_lose_no_update(tenant, sms_inbox, agent):
    """Two threads, each with its own connection, add events to the same tenant, day, channel and agent
    rows at the same moments; the rows must equal the recomputation."""
    at = local(MONDAY, 10)
    conversations = [
        Conversation.objects.create(
            tenant=tenant, number=n, customer=CustomerFactory(tenant=tenant), first_channel=Channel.SMS,
            last_channel=Channel.SMS, channels=[Channel.SMS], first_inbox=sms_inbox, assignee=agent,
            created_at=at, updated_at=at,
        )
        for n in range(1, WRITERS + 1)
    ]
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(conversation: Conversation) -> None:
        try:
            start.wait(timeout=10)
            for i in range(EVENTS_PER_WRITER):
                with transaction.atomic():
                    analytics_event_record(conversation=conversation, name=EventName.FIRST_RESPONSE,
                                           value_seconds=60.0 + i, occurred_at=at + timedelta(seconds=60 + i))
                    analytics_event_record(conversation=conversation, name=EventName.CSAT_SENT,
                                           occurred_at=at + timedelta(seconds=60 + i))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(c,)) for c in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert AnalyticsEvent.objects.filter(tenant=tenant).count() == 2 * WRITERS * EVENTS_PER_WRITER
    assert rollups_check(tenant=tenant, start=MONDAY, end=MONDAY) == []
    row = AnalyticsRollup.objects.get(tenant=tenant, level="full", hour=-1, metric="first_response")
    assert row.count == WRITERS * EVENTS_PER_WRITER
    assert row.total == WRITERS * sum(60.0 + i for i in range(EVENTS_PER_WRITER))
    assert AnalyticsRollup.objects.get(tenant=tenant, level="channel", hour=-1, metric="csat_sent").count == (
        WRITERS * EVENTS_PER_WRITER)


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_running_beside_a_writer_neither_loses_nor_doubles_its_events(tenant, sms_inbox):
    """The writer holds its transaction open while the rebuild starts: the rebuild waits for it."""
    at = local(MONDAY, 10)
    conversation = Conversation.objects.create(
        tenant=tenant, number=1, customer=CustomerFactory(tenant=tenant), first_channel=Channel.SMS,
        last_channel=Channel.SMS, channels=[Channel.SMS], first_inbox=sms_inbox, created_at=at, updated_at=at,
    )
    analytics_event_record(conversation=conversation, name=EventName.CSAT_SENT, occurred_at=at)
    recorded, rebuilt = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    rebuilt_while_open: list[bool] = []

    def writer() -> None:
        try:
            with transaction.atomic():
                analytics_event_record(conversation=conversation, name=EventName.CSAT_SENT, occurred_at=at)
                recorded.set()
                rebuilt_while_open.append(rebuilt.wait(timeout=1))  # it must not: it waits for this commit
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    def rebuild() -> None:
        try:
            recorded.wait(timeout=10)
            rollups_rebuild(tenant=tenant, start=MONDAY, end=MONDAY)
            rebuilt.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=rebuild)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert rebuilt_while_open == [False] and rebuilt.is_set()
    assert rollups_check(tenant=tenant, start=MONDAY, end=MONDAY) == []
    assert AnalyticsRollup.objects.get(tenant=tenant, level="channel", hour=-1, metric="csat_sent").count == 2
