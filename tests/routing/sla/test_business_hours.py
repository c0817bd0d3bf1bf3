from __future__ import annotations

import itertools
import time as clock
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from routing.business_hours import add_business_seconds, business_seconds_between, is_open, next_open
from routing.models import BusinessCalendar, CalendarInterval, Holiday

NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600
_names = itertools.count()


def make_calendar(tenant, tz="America/New_York", days=range(5), shifts=((time(9), time(17)),), holidays=(), country=""):
    calendar = BusinessCalendar.objects.create(tenant=tenant, name=f"Hours {next(_names)}", time_zone=tz, holiday_country=country)
    for weekday in days:
        for start, end in shifts:
            CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=weekday, start=start, end=end)
    for day in holidays:
        Holiday.objects.create(tenant=tenant, calendar=calendar, date=day)
    return calendar


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_no_calendar_is_always_open_and_adds_wall_clock_time():
    start = datetime(2025, 3, 9, 1, 30, tzinfo=UTC)
    assert is_open(None, start)
    assert add_business_seconds(None, start, 90) == datetime(2025, 3, 9, 1, 31, 30, tzinfo=UTC)
    assert business_seconds_between(None, start, datetime(2025, 3, 9, 2, 30, tzinfo=UTC)) == HOUR


def test_split_shifts_skip_the_lunch_break(tenant):
    calendar = make_calendar(tenant, shifts=((time(9), time(12)), (time(13), time(17))))
    assert add_business_seconds(calendar, ny(2025, 6, 2, 11), 4 * HOUR) == ny(2025, 6, 2, 16)
    assert not is_open(calendar, ny(2025, 6, 2, 12, 30))
    assert next_open(calendar, ny(2025, 6, 2, 12, 30)) == ny(2025, 6, 2, 13)
    assert business_seconds_between(calendar, ny(2025, 6, 2, 8), ny(2025, 6, 2, 20)) == 7 * HOUR


def test_friday_afternoon_targets_continue_on_monday(tenant):
    calendar = make_calendar(tenant)
    assert add_business_seconds(calendar, ny(2025, 6, 6, 16), 2 * HOUR) == ny(2025, 6, 9, 10)
    assert next_open(calendar, ny(2025, 6, 7, 12)) == ny(2025, 6, 9, 9)


def test_an_interval_ending_at_midnight_runs_to_the_end_of_the_day(tenant):
    calendar = make_calendar(tenant, days=[0], shifts=((time(22), time(0)),))
    assert is_open(calendar, ny(2025, 6, 2, 23, 59))
    assert not is_open(calendar, ny(2025, 6, 3, 0, 0))
    assert business_seconds_between(calendar, ny(2025, 6, 2, 21), ny(2025, 6, 3, 3)) == 2 * HOUR
    assert add_business_seconds(calendar, ny(2025, 6, 2, 23, 30), HOUR) == ny(2025, 6, 9, 22, 30)


def test_holiday_rows_close_the_whole_day(tenant):
    calendar = make_calendar(tenant, holidays=[date(2025, 6, 9)])
    assert not is_open(calendar, ny(2025, 6, 9, 10))
    assert add_business_seconds(calendar, ny(2025, 6, 6, 16), 2 * HOUR) == ny(2025, 6, 10, 10)


def test_a_holiday_country_closes_on_its_public_holidays(tenant):
    calendar = make_calendar(tenant, country="US")
    assert not is_open(calendar, ny(2025, 7, 4, 10))
    assert next_open(calendar, ny(2025, 7, 4, 10)) == ny(2025, 7, 7, 9)
    assert is_open(calendar, ny(2025, 7, 3, 10))


def test_intervals_are_local_to_the_calendar_time_zone(tenant):
    berlin = make_calendar(tenant, tz="Europe/Berlin")
    tokyo = make_calendar(tenant, tz="Asia/Tokyo")
    at = datetime(2025, 6, 2, 8, 30, tzinfo=UTC)  # 10:30 in Berlin, 17:30 in Tokyo
    assert is_open(berlin, at)
    assert not is_open(tokyo, at)
    assert next_open(tokyo, at) == datetime(2025, 6, 3, 0, 0, tzinfo=UTC)


def test_a_working_day_keeps_its_eight_hours_across_the_march_dst_change(tenant):
    calendar = make_calendar(tenant)
    # DST starts on Sunday 9 March 2025: Friday 16:00 EST + 2 h lands on Monday 10:00 EDT.
    due = add_business_seconds(calendar, ny(2025, 3, 7, 16), 2 * HOUR)
    assert due == ny(2025, 3, 10, 10)
    assert due.astimezone(UTC) == datetime(2025, 3, 10, 14, tzinfo=UTC)
    assert business_seconds_between(calendar, ny(2025, 3, 7, 9), ny(2025, 3, 10, 17)) == 16 * HOUR


def test_a_round_the_clock_day_is_23_hours_in_march_and_25_in_november(tenant):
    calendar = make_calendar(tenant, days=range(7), shifts=((time(0), time(0)),))
    assert business_seconds_between(calendar, ny(2025, 3, 9), ny(2025, 3, 10)) == 23 * HOUR
    assert business_seconds_between(calendar, ny(2025, 11, 2), ny(2025, 11, 3)) == 25 * HOUR
    assert add_business_seconds(calendar, ny(2025, 3, 9, 1), 2 * HOUR) == ny(2025, 3, 9, 4)


def test_an_interval_containing_the_jump_is_an_hour_shorter(tenant):
    calendar = make_calendar(tenant, days=[6], shifts=((time(1), time(4)),))
    assert business_seconds_between(calendar, ny(2025, 3, 9), ny(2025, 3, 10)) == 2 * HOUR
    assert business_seconds_between(calendar, ny(2025, 11, 2), ny(2025, 11, 3)) == 4 * HOUR


def test_long_spans_skip_whole_weeks_and_stay_exact(tenant):
    calendar = make_calendar(tenant, tz="UTC")
    start = datetime(2025, 1, 6, 9, tzinfo=UTC)  # a Monday
    began = clock.perf_counter()
    due = add_business_seconds(calendar, start, 1000 * HOUR)  # 25 weeks of 40 hours
    assert due == datetime(2025, 6, 27, 17, tzinfo=UTC)
    assert business_seconds_between(calendar, start, due) == 1000 * HOUR
    assert clock.perf_counter() - began < 0.5


def test_long_spans_round_trip_across_dst_and_holidays(tenant):
    calendar = make_calendar(tenant, holidays=[date(2025, 3, 12), date(2025, 11, 27)], country="US")
    start = ny(2025, 1, 2, 11, 15)
    due = add_business_seconds(calendar, start, 1500 * HOUR)
    assert business_seconds_between(calendar, start, due) == 1500 * HOUR


def test_a_calendar_without_hours_refuses_to_add_time(tenant):
    calendar = make_calendar(tenant, days=[])
    with pytest.raises(ValueError, match="does not open"):
        add_business_seconds(calendar, ny(2025, 6, 2, 9), HOUR)
