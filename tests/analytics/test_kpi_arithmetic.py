"""Each KPI of the report table on a small hand-built history, driven through the real services on a
controlled clock, asserted exactly per channel and overall (percentiles within the histogram's ~5 %)."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics.models import AnalyticsSettings, EventName
from analytics.reports import KPI_NAMES, ReportScope, report_table
from analytics.services import analytics_event_build, analytics_event_record, analytics_events_save
from channels_app.models import Channel
from conversations.models import Conversation, Priority, Status
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    message_record_inbound,
    message_record_outbound,
)
from routing.models import (
    AgentProfile,
    BusinessCalendar,
    CalendarInterval,
    Presence,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
)
from routing.services import agent_set_presence
from routing.sla import sla_apply
from tests.analytics.conftest import FRIDAY, MONDAY, NEXT_MONDAY, local
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db

ACCURACY = 0.05  # the histogram's documented accuracy (bucket middle within 4.9 % of its values)


@pytest.fixture
def inboxes(tenant, sms_inbox, email_inbox):
    return {
        Channel.SMS: sms_inbox, Channel.EMAIL: email_inbox,
        Channel.WHATSAPP: InboxFactory(tenant=tenant, channel=Channel.WHATSAPP, name="WhatsApp", address="+15550100001"),
        Channel.VOICE: InboxFactory(tenant=tenant, channel=Channel.VOICE, name="Phone", address="+15550100002"),
    }


SENDER_KIND = {Channel.SMS: "phone", Channel.WHATSAPP: "whatsapp", Channel.VOICE: "phone", Channel.EMAIL: "email"}


def sender(channel: str, n: int) -> str:
    return f"customer{n}@example.org" if channel == Channel.EMAIL else f"+1202555{n:04d}"


def inbound(tenant, inboxes, channel: str, n: int, body: str = "Help") -> Conversation:
    """Customer n writes on `channel` now (the continuity rule picks the conversation)."""
    message = InboundMessage(channel=channel, sender_kind=SENDER_KIND[channel], sender_value=sender(channel, n), body=body)
    return message_record_inbound(tenant=tenant, inbox=inboxes[channel], message=message).conversation


def reply(tenant, inboxes, conversation: Conversation, agent, channel: str | None = None) -> None:
    channel = channel or conversation.last_channel
    message_record_outbound(
        tenant=tenant, conversation=conversation, author=agent, channel=channel, inbox=inboxes[channel], body="On it"
    )


def resolve(tenant, conversation: Conversation, agent=None) -> None:
    conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED, actor=agent)


def table(tenant, start: date = MONDAY, end: date = NEXT_MONDAY) -> dict[str, dict[str, float | int | None]]:
    """report_table as {channel or "": {kpi: value}} for the whole tenant (an admin's scope)."""
    rows = report_table(ReportScope(tenant=tenant, start=start, end=end))
    return {row.channel: row.values for row in rows}


def column(figures: dict, kpi: str) -> dict[str, float | int | None]:
    return {channel: values[kpi] for channel, values in figures.items()}


def near(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= ACCURACY * expected


def office_hours(tenant, *, zone: str = "America/New_York", name: str = "Office") -> BusinessCalendar:
    """Monday to Friday 09:00-18:00, closed nights and weekends; the tenant's analytics calendar."""
    calendar = BusinessCalendar.objects.create(tenant=tenant, name=name, time_zone=zone)
    for weekday in range(5):
        CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=weekday, start=time(9), end=time(18))
    AnalyticsSettings.objects.update_or_create(tenant=tenant, defaults={"default_calendar": calendar})
    return calendar


# Which test pins which KPIs (test_every_kpi_is_pinned_by_a_test keeps this complete).
PINNED: dict[str, tuple[str, ...]] = {}


def pins(*kpis: str):
    def mark(test):
        PINNED[test.__name__] = kpis
        return test
    return mark


# --- volume, reopens, first-contact resolution ------------------------------------------------------------


@pins("new", "reopened", "resolved", "reopen_rate", "fcr_rate")
def test_volume_reopens_and_first_contact_resolution(tenant, inboxes, clock, agent, teammate):
    clock.at(local(MONDAY, 10))
    one_agent = inbound(tenant, inboxes, Channel.SMS, 1)
    reply(tenant, inboxes, one_agent, agent)
    resolve(tenant, one_agent, agent)  # first-contact resolution, never reopened

    two_agents = inbound(tenant, inboxes, Channel.EMAIL, 2)
    reply(tenant, inboxes, two_agents, agent)
    inbound(tenant, inboxes, Channel.EMAIL, 2, "still broken")
    reply(tenant, inboxes, two_agents, teammate)
    resolve(tenant, two_agents, teammate)  # two agents replied: not first-contact

    reopened = inbound(tenant, inboxes, Channel.SMS, 3)
    reply(tenant, inboxes, reopened, agent)
    resolve(tenant, reopened, agent)  # first-contact at first...
    clock.advance(3600)
    inbound(tenant, inboxes, Channel.SMS, 3, "it broke again")  # ...until the customer reopens it
    reply(tenant, inboxes, reopened, agent)
    resolve(tenant, reopened, agent)

    inbound(tenant, inboxes, Channel.SMS, 4)  # still open

    figures = table(tenant)
    assert list(figures) == [Channel.EMAIL, Channel.SMS, ""]
    assert column(figures, "new") == {Channel.EMAIL: 1, Channel.SMS: 3, "": 4}
    assert column(figures, "reopened") == {Channel.EMAIL: 0, Channel.SMS: 1, "": 1}
    assert column(figures, "resolved") == {Channel.EMAIL: 1, Channel.SMS: 3, "": 4}
    assert column(figures, "reopen_rate") == {Channel.EMAIL: 0.0, Channel.SMS: 1 / 3, "": 0.25}
    # First resolutions: email 1 (two agents), SMS 2 (one kept, one lost to the reopen).
    assert column(figures, "fcr_rate") == {Channel.EMAIL: 0.0, Channel.SMS: 0.5, "": 1 / 3}


@pins("fcr_rate")
def test_a_reopen_on_another_channel_counts_on_the_channel_it_was_resolved_on(tenant, inboxes, clock, agent):
    clock.at(local(MONDAY, 10))
    conversation = inbound(tenant, inboxes, Channel.SMS, 1)
    reply(tenant, inboxes, conversation, agent)
    resolve(tenant, conversation, agent)
    clock.advance(86400)
    inbound(tenant, inboxes, Channel.WHATSAPP, 1, "me again")  # same number: the same customer, reopened

    figures = table(tenant)
    # The reopen (and the first-contact resolution it spoils) is on the resolution's channel; the switch
    # to WhatsApp that came with it is on WhatsApp.
    assert column(figures, "reopened") == {Channel.SMS: 1, Channel.WHATSAPP: 0, "": 1}
    assert column(figures, "fcr_rate") == {Channel.SMS: 0.0, Channel.WHATSAPP: None, "": 0.0}
    assert column(figures, "channel_switch_rate") == {Channel.SMS: 0.0, Channel.WHATSAPP: None, "": 0.5}


@pins("fcr_rate")
def test_a_reopen_spoils_first_contact_resolution_for_the_agent_who_resolved_even_after_a_reassignment(
    tenant, inboxes, clock, agent, teammate
):
    clock.at(local(MONDAY, 10))
    conversation = inbound(tenant, inboxes, Channel.SMS, 1)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=agent)
    reply(tenant, inboxes, conversation, agent)
    resolve(tenant, conversation, agent)
    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate)  # handed over while resolved
    clock.advance(3600)
    inbound(tenant, inboxes, Channel.SMS, 1, "not fixed")

    def fcr(user):
        scope = ReportScope(tenant=tenant, start=MONDAY, end=NEXT_MONDAY, agent_id=user.pk)
        return report_table(scope)[-1].values["fcr_rate"]

    assert fcr(agent) == 0.0
    assert fcr(teammate) is None  # nothing of theirs was resolved


# --- response and resolution times ----------------------------------------------------------------------


@pins("first_response_median", "first_response_p90", "resolution_median", "resolution_p90")
def test_first_response_and_resolution_percentiles(tenant, inboxes, clock, agent):
    waits = [60, 120, 180, 240, 600]
    for n, wait in enumerate(waits, start=1):
        clock.at(local(MONDAY, 10) + timedelta(hours=n))
        conversation = inbound(tenant, inboxes, Channel.SMS, n)
        clock.advance(wait)
        reply(tenant, inboxes, conversation, agent)
        clock.advance(wait)
        resolve(tenant, conversation, agent)  # resolved 2 x wait after it opened
    clock.at(local(MONDAY, 17))
    single = inbound(tenant, inboxes, Channel.EMAIL, 9)
    clock.advance(1234)
    reply(tenant, inboxes, single, agent)
    clock.advance(1000)
    resolve(tenant, single, agent)

    figures = table(tenant)
    sms, email, overall = figures[Channel.SMS], figures[Channel.EMAIL], figures[""]
    # Nearest rank: the median of five is the 3rd, the 90th percentile the 5th.
    assert near(sms["first_response_median"], 180) and near(sms["first_response_p90"], 600)
    assert near(sms["resolution_median"], 360) and near(sms["resolution_p90"], 1200)
    # A single value is reported exactly.
    assert email["first_response_median"] == email["first_response_p90"] == 1234
    assert email["resolution_median"] == email["resolution_p90"] == 2234
    # Overall: [60, 120, 180, 240, 600, 1234]: 3rd and 6th.
    assert near(overall["first_response_median"], 180) and near(overall["first_response_p90"], 1234)
    assert near(overall["resolution_median"], 360) and near(overall["resolution_p90"], 2234)


def test_percentiles_of_many_values_are_within_five_percent_of_the_nearest_rank(tenant, inboxes, clock):
    clock.at(local(MONDAY, 10))
    conversation = inbound(tenant, inboxes, Channel.SMS, 1)
    durations = [round(1.5 ** (i / 7) + i * 37.3, 1) for i in range(300)]  # 1 s to about 3 h, uneven
    analytics_events_save([
        analytics_event_build(conversation=conversation, name=EventName.FIRST_RESPONSE, value_seconds=seconds,
                              business_seconds=seconds / 2, occurred_at=local(MONDAY, 12))
        for seconds in durations
    ])
    ordered = sorted(durations)
    overall = table(tenant)[""]
    for kpi, rank, scale in (("first_response_median", 150, 1), ("first_response_p90", 270, 1),
                             ("first_response_business_median", 150, 0.5), ("first_response_business_p90", 270, 0.5)):
        assert near(overall[kpi], ordered[rank - 1] * scale), kpi


@pins("first_response_business_median", "first_response_business_p90",
      "resolution_business_median", "resolution_business_p90")
def test_business_hours_skip_closed_nights_and_the_weekend(tenant, inboxes, clock, agent):
    office_hours(tenant)
    clock.at(local(FRIDAY, 17, 50))
    weekend = inbound(tenant, inboxes, Channel.SMS, 1)
    clock.at(local(NEXT_MONDAY, 9, 10))
    reply(tenant, inboxes, weekend, agent)  # 10 minutes on Friday + 10 on Monday
    clock.at(local(NEXT_MONDAY, 10))
    resolve(tenant, weekend, agent)  # 10 minutes on Friday + 60 on Monday

    clock.at(local(MONDAY, 17, 30))
    overnight = inbound(tenant, inboxes, Channel.EMAIL, 2)
    clock.at(local(MONDAY + timedelta(days=1), 9, 15))
    reply(tenant, inboxes, overnight, agent)  # 30 + 15 minutes across a closed night
    resolve(tenant, overnight, agent)

    figures = table(tenant)
    sms, email = figures[Channel.SMS], figures[Channel.EMAIL]
    assert sms["first_response_business_median"] == sms["first_response_business_p90"] == 20 * 60
    assert sms["first_response_median"] == (2 * 86400 + 15 * 3600 + 20 * 60)  # calendar: Friday 17:50 to Monday 09:10
    assert sms["resolution_business_median"] == 70 * 60
    assert email["first_response_business_median"] == email["resolution_business_p90"] == 45 * 60
    assert email["first_response_median"] == 15 * 3600 + 45 * 60
    assert near(figures[""]["first_response_business_median"], 20 * 60)
    assert near(figures[""]["first_response_business_p90"], 45 * 60)


@pins("first_response_business_median", "resolution_business_median")
def test_business_hours_count_on_the_calendars_zone_and_days_on_the_tenants(tenant, inboxes, clock, agent):
    """A London office for a New York tenant: Friday 17:50 London is 12:50 in New York."""
    office_hours(tenant, zone="Europe/London", name="London office")
    london = ZoneInfo("Europe/London")
    clock.at(local(FRIDAY, 17, 50, london))
    conversation = inbound(tenant, inboxes, Channel.SMS, 1)
    clock.at(local(NEXT_MONDAY, 9, 10, london))  # 04:10 on Monday in New York
    reply(tenant, inboxes, conversation, agent)
    resolve(tenant, conversation, agent)

    monday_only = table(tenant, start=NEXT_MONDAY, end=NEXT_MONDAY)[""]
    assert monday_only["first_response_business_median"] == 20 * 60
    assert monday_only["resolution_business_median"] == 20 * 60
    assert monday_only["new"] == 0  # opened on Friday, New York time
    assert table(tenant, start=FRIDAY, end=FRIDAY)[""]["new"] == 1


# --- handle time, CSAT, SLA ------------------------------------------------------------------------------


@pins("average_handle_time")
def test_average_handle_time_is_talk_time_for_calls_and_active_agent_time_for_messaging(
    tenant, inboxes, clock, agent
):
    clock.at(local(MONDAY, 10))
    chat = inbound(tenant, inboxes, Channel.SMS, 1)
    clock.advance(120)
    reply(tenant, inboxes, chat, agent)  # 120 s of agent time
    clock.advance(80)
    inbound(tenant, inboxes, Channel.SMS, 1, "and another thing")
    clock.advance(800)
    reply(tenant, inboxes, chat, agent)  # 800 s waited, counted as at most 600
    resolve(tenant, chat, agent)

    clock.at(local(MONDAY, 11))
    call = inbound(tenant, inboxes, Channel.VOICE, 2, "")
    analytics_event_record(conversation=call, name=EventName.CALL_HANDLED, channel=Channel.VOICE,
                           agent_id=agent.pk, value_seconds=300.0, occurred_at=clock.advance(300))
    resolve(tenant, call, agent)  # a call with no messaging reply adds no messaging time

    figures = table(tenant)
    assert column(figures, "average_handle_time") == {Channel.SMS: 720.0, Channel.VOICE: 300.0, "": 510.0}


@pins("csat_average", "csat_response_rate")
def test_csat_average_and_response_rate(tenant, inboxes, clock):
    clock.at(local(MONDAY, 10))
    sms = [inbound(tenant, inboxes, Channel.SMS, n) for n in (1, 2, 3)]
    email = inbound(tenant, inboxes, Channel.EMAIL, 4)
    for conversation in [*sms, email]:
        analytics_event_record(conversation=conversation, name=EventName.CSAT_SENT)
    for conversation, score in ((sms[0], 5), (sms[1], 2), (email, 4)):
        analytics_event_record(conversation=conversation, name=EventName.CSAT_ANSWER, data={"score": score})
    analytics_event_record(conversation=sms[2], name=EventName.CSAT_ANSWER, data={"score": 9})  # not a score

    figures = table(tenant)
    assert column(figures, "csat_average") == {Channel.EMAIL: 4.0, Channel.SMS: 3.5, "": 11 / 3}
    assert column(figures, "csat_response_rate") == {Channel.EMAIL: 1.0, Channel.SMS: 2 / 3, "": 0.75}


@pins("sla_first_response", "sla_next_response", "sla_resolution")
def test_sla_attainment_per_target(tenant, inboxes, clock):
    clock.at(local(MONDAY, 10))
    sms, email = inbound(tenant, inboxes, Channel.SMS, 1), inbound(tenant, inboxes, Channel.EMAIL, 2)
    outcomes = [
        (sms, EventName.SLA_MET, "first_response"), (sms, EventName.SLA_MET, "first_response"),
        (sms, EventName.SLA_MISSED, "first_response"), (email, EventName.SLA_MET, "first_response"),
        (sms, EventName.SLA_MISSED, "next_response"), (email, EventName.SLA_MISSED, "resolution"),
    ]
    for conversation, name, target in outcomes:
        analytics_event_record(conversation=conversation, name=name, value_seconds=60.0, data={"metric": target})

    figures = table(tenant)
    assert column(figures, "sla_first_response") == {Channel.EMAIL: 1.0, Channel.SMS: 2 / 3, "": 0.75}
    assert column(figures, "sla_next_response") == {Channel.EMAIL: None, Channel.SMS: 0.0, "": 0.0}
    assert column(figures, "sla_resolution") == {Channel.EMAIL: 0.0, Channel.SMS: None, "": 0.0}


@pins("sla_first_response", "sla_resolution")
def test_sla_attainment_from_the_sla_engine(tenant, inboxes, clock, agent):
    policy = SlaPolicy.objects.create(tenant=tenant, name="Default")
    for metric, seconds in ((SlaMetric.FIRST_RESPONSE, 600), (SlaMetric.RESOLUTION, 3600)):
        SlaTarget.objects.create(tenant=tenant, policy=policy, priority=Priority.NORMAL, metric=metric,
                                 seconds=seconds, business_hours=False)

    def handle(n, channel, *, reply_after, resolve_after=None):
        opened_at = clock.at(local(MONDAY, 9) + timedelta(hours=n))
        conversation = inbound(tenant, inboxes, channel, n)
        sla_apply(conversation=conversation)  # what the task after commit does
        clock.at(opened_at + timedelta(seconds=reply_after))
        reply(tenant, inboxes, conversation, agent)
        sla_apply(conversation=Conversation.objects.get(pk=conversation.pk))
        if resolve_after is not None:
            clock.at(opened_at + timedelta(seconds=resolve_after))
            resolve(tenant, conversation, agent)
            sla_apply(conversation=Conversation.objects.get(pk=conversation.pk))

    handle(1, Channel.SMS, reply_after=240, resolve_after=1800)  # both met
    handle(2, Channel.SMS, reply_after=1500, resolve_after=5400)  # both missed
    handle(3, Channel.EMAIL, reply_after=300)  # first response met, still open

    figures = table(tenant)
    assert column(figures, "sla_first_response") == {Channel.EMAIL: 1.0, Channel.SMS: 0.5, "": 2 / 3}
    assert column(figures, "sla_resolution") == {Channel.EMAIL: None, Channel.SMS: 0.5, "": 0.5}
    assert column(figures, "sla_next_response") == {Channel.EMAIL: None, Channel.SMS: None, "": None}


# --- queues, backlog, agents -----------------------------------------------------------------------------


@pins("queue_wait_median", "queue_wait_p90")
def test_queue_wait_by_channel_counts_from_arrival_or_from_being_unassigned(tenant, inboxes, clock, agent, teammate):
    clock.at(local(MONDAY, 10))
    first = inbound(tenant, inboxes, Channel.SMS, 1)
    clock.advance(60)
    conversation_assign(tenant=tenant, conversation=first, assignee=agent)  # waited 60 s
    clock.advance(40)
    conversation_assign(tenant=tenant, conversation=first, assignee=teammate)  # handed over: no wait
    clock.advance(100)
    conversation_assign(tenant=tenant, conversation=first, assignee=None)
    clock.advance(300)
    conversation_assign(tenant=tenant, conversation=first, assignee=agent)  # back in the queue 300 s

    clock.at(local(MONDAY, 11))
    second = inbound(tenant, inboxes, Channel.SMS, 2)
    clock.advance(300)
    conversation_assign(tenant=tenant, conversation=second, assignee=agent)
    clock.at(local(MONDAY, 12))
    mail = inbound(tenant, inboxes, Channel.EMAIL, 3)
    clock.advance(900)
    conversation_assign(tenant=tenant, conversation=mail, assignee=agent)

    figures = table(tenant)
    # SMS waits [60, 300, 300]; e-mail [900]; overall [60, 300, 300, 900].
    assert near(figures[Channel.SMS]["queue_wait_median"], 300) and near(figures[Channel.SMS]["queue_wait_p90"], 300)
    assert figures[Channel.EMAIL]["queue_wait_median"] == figures[Channel.EMAIL]["queue_wait_p90"] == 900
    assert near(figures[""]["queue_wait_median"], 300) and near(figures[""]["queue_wait_p90"], 900)


@pins("backlog", "backlog_age_median")
def test_backlog_and_its_age_now(tenant, inboxes, clock, agent):
    clock.at(local(MONDAY, 8))
    inbound(tenant, inboxes, Channel.SMS, 1)
    clock.at(local(MONDAY, 9))
    pending = inbound(tenant, inboxes, Channel.SMS, 2)
    conversation_set_status(tenant=tenant, conversation=pending, status=Status.PENDING)
    clock.at(local(MONDAY, 10))
    done = inbound(tenant, inboxes, Channel.SMS, 3)
    resolve(tenant, done)
    mail = inbound(tenant, inboxes, Channel.EMAIL, 4)
    clock.at(local(MONDAY, 11))
    conversation_set_status(tenant=tenant, conversation=mail, status=Status.SNOOZED,
                            snoozed_until=local(MONDAY, 15))
    clock.at(local(MONDAY, 12))

    figures = table(tenant)
    assert column(figures, "backlog") == {Channel.EMAIL: 1, Channel.SMS: 2, "": 3}
    # Ages now: SMS 4 h and 3 h, e-mail 2 h (from arrival, whatever the status).
    assert column(figures, "backlog_age_median") == {Channel.EMAIL: 7200.0, Channel.SMS: 12600.0, "": 10800.0}


@pins("occupancy")
def test_occupancy_is_the_load_of_online_agents_over_their_capacity(tenant, inboxes, clock, agent, teammate):
    clock.at(local(MONDAY, 10))
    for user in (agent, teammate):
        AgentProfile.objects.create(tenant=tenant, membership=user.membership,
                                    capacity={Channel.SMS: 4, Channel.EMAIL: 6})
    agent_set_presence(tenant=tenant, membership=agent.membership, presence=Presence.ONLINE)
    agent_set_presence(tenant=tenant, membership=teammate.membership, presence=Presence.ONLINE)
    for n in (1, 2, 3):
        conversation_assign(tenant=tenant, conversation=inbound(tenant, inboxes, Channel.SMS, n), assignee=agent)
    conversation_assign(tenant=tenant, conversation=inbound(tenant, inboxes, Channel.EMAIL, 4), assignee=teammate)
    resolved = inbound(tenant, inboxes, Channel.SMS, 5)
    conversation_assign(tenant=tenant, conversation=resolved, assignee=teammate)
    resolve(tenant, resolved)  # no longer load

    figures = table(tenant)
    assert figures[Channel.SMS]["occupancy"] == 3 / 8
    assert figures[Channel.EMAIL]["occupancy"] == 1 / 12
    assert figures[""]["occupancy"] == 4 / 20

    agent_set_presence(tenant=tenant, membership=agent.membership, presence=Presence.AWAY)
    assert table(tenant)[""]["occupancy"] == 1 / 10  # only the teammate is online


@pins("presence_online_seconds")
def test_time_online_sums_online_spans_clipped_to_the_range(tenant, clock, agent, teammate):
    def presence(user, value, at):
        clock.at(at)
        agent_set_presence(tenant=tenant, membership=user.membership, presence=value)

    presence(agent, Presence.ONLINE, local(MONDAY - timedelta(days=1), 22))  # two hours before the range
    presence(agent, Presence.AWAY, local(MONDAY, 2))
    presence(agent, Presence.ONLINE, local(MONDAY, 9))
    presence(agent, Presence.OFFLINE, local(MONDAY, 12, 30))
    presence(teammate, Presence.ONLINE, local(MONDAY, 23))  # still online "now"
    clock.at(local(MONDAY + timedelta(days=1), 1))

    figures = table(tenant, start=MONDAY, end=MONDAY)
    assert figures[""]["presence_online_seconds"] == (2 + 3.5 + 1) * 3600  # the teammate clipped at midnight
    assert table(tenant, start=MONDAY + timedelta(days=1), end=MONDAY + timedelta(days=1))[""][
        "presence_online_seconds"] == 3600  # until now


# --- channels ------------------------------------------------------------------------------------------


@pins("cross_channel_reopen_rate")
def test_cross_channel_reopens_count_within_seven_days_and_not_after_eight(tenant, inboxes, clock, agent):
    tenant.reopen_window_days = 14
    tenant.save(update_fields=["reopen_window_days"])
    clock.at(local(MONDAY, 10))
    soon = inbound(tenant, inboxes, Channel.SMS, 1)
    resolve(tenant, soon, agent)
    late = inbound(tenant, inboxes, Channel.SMS, 2)
    resolve(tenant, late, agent)
    same_channel = inbound(tenant, inboxes, Channel.SMS, 3)
    resolve(tenant, same_channel, agent)

    clock.at(local(MONDAY, 10) + timedelta(days=6, hours=23))
    inbound(tenant, inboxes, Channel.WHATSAPP, 1)  # back on WhatsApp within 7 days: reopened
    inbound(tenant, inboxes, Channel.SMS, 3)  # back on the same channel: not cross-channel
    clock.at(local(MONDAY, 10) + timedelta(days=8))
    inbound(tenant, inboxes, Channel.WHATSAPP, 2)  # after 8 days: reopened, but not a cross-channel return

    figures = table(tenant, end=MONDAY + timedelta(days=13))
    assert column(figures, "reopened") == {Channel.SMS: 3, Channel.WHATSAPP: 0, "": 3}  # where each was resolved
    # One cross-channel reopen (credited to the channel they came back on) over three resolutions.
    assert column(figures, "cross_channel_reopen_rate") == {Channel.SMS: 0.0, Channel.WHATSAPP: None, "": 1 / 3}


@pins("cross_channel_reopen_rate", "channel_switch_rate", "context_continuity")
def test_a_return_on_another_channel_after_the_reopen_window_opens_a_new_conversation(tenant, inboxes, clock, agent):
    tenant.reopen_window_days = 2
    tenant.save(update_fields=["reopen_window_days"])
    clock.at(local(MONDAY, 10))
    returns = inbound(tenant, inboxes, Channel.SMS, 1)
    resolve(tenant, returns, agent)
    gone = inbound(tenant, inboxes, Channel.SMS, 2)
    resolve(tenant, gone, agent)

    clock.at(local(MONDAY, 10) + timedelta(days=5))
    inbound(tenant, inboxes, Channel.WHATSAPP, 1)  # new conversation, 5 days after: a cross-channel return
    clock.at(local(MONDAY, 10) + timedelta(days=8))
    inbound(tenant, inboxes, Channel.WHATSAPP, 2)  # 8 days after: just a new conversation

    figures = table(tenant, end=MONDAY + timedelta(days=13))
    assert column(figures, "new") == {Channel.SMS: 2, Channel.WHATSAPP: 2, "": 4}
    assert column(figures, "cross_channel_reopen_rate") == {Channel.SMS: 0.0, Channel.WHATSAPP: None, "": 0.5}
    # The return switched channel into a new conversation: a switch that did not keep its context.
    assert column(figures, "channel_switch_rate") == {Channel.SMS: 0.0, Channel.WHATSAPP: 0.0, "": 0.0}
    assert column(figures, "context_continuity") == {Channel.SMS: None, Channel.WHATSAPP: 0.0, "": 0.0}


@pins("channel_switch_rate", "context_continuity")
def test_channel_switches_and_context_continuity(tenant, inboxes, clock, agent):
    clock.at(local(MONDAY, 10))
    stays = inbound(tenant, inboxes, Channel.SMS, 1)
    inbound(tenant, inboxes, Channel.WHATSAPP, 1, "writing here instead")  # same open conversation
    reply(tenant, inboxes, stays, agent, Channel.SMS)  # the agent answers on SMS: a second switch
    inbound(tenant, inboxes, Channel.SMS, 2)
    inbound(tenant, inboxes, Channel.EMAIL, 3)

    figures = table(tenant)
    # Switches are counted on the channel switched to; conversations opened or reopened on their first channel.
    assert column(figures, "channel_switch_rate") == {Channel.EMAIL: 0.0, Channel.SMS: 0.5, Channel.WHATSAPP: None,
                                                      "": 2 / 3}
    assert column(figures, "context_continuity") == {Channel.EMAIL: None, Channel.SMS: 1.0, Channel.WHATSAPP: 1.0,
                                                     "": 1.0}


def test_every_kpi_is_pinned_by_a_test():
    pinned = {kpi for kpis in PINNED.values() for kpi in kpis}
    assert pinned == set(KPI_NAMES)
