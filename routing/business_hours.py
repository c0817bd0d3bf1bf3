"""Business-hours arithmetic on a BusinessCalendar: is it open, when does it open, add and count open time.

Intervals are local wall-clock times in the calendar's time zone, so a 09:00-17:00 day is 8 hours on a
DST-change day too; only an interval that contains the jump itself is an hour shorter (spring) or longer
(autumn), because all arithmetic is done on real (UTC) instants. A start that does not exist locally
(02:30 on a spring-forward night) resolves like zoneinfo's fold=0, i.e. to 03:30 after the jump; an
ambiguous one (01:30 on a fall-back night) means its first occurrence. An end of 00:00 means midnight at the
end of the day. Holidays are the calendar's Holiday rows plus, when holiday_country is set, that country's
public holidays from the `holidays` package. A calendar of None is always open.

Long spans skip whole weeks (no holiday and no offset change inside) instead of walking day by day.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from routing.models import BusinessCalendar

logger = logging.getLogger(__name__)

DAY_SECONDS = 86400
# A calendar that stays closed this long (every day a holiday, or no intervals) cannot give an answer.
MAX_DAYS = 366 * 5


class CalendarNeverOpen(ValueError):
    pass


@functools.lru_cache(maxsize=64)
def _country_holidays(country: str):
    import holidays

    try:
        return holidays.country_holidays(country)
    except NotImplementedError:
        # A bad country code must not stop every SLA computation; the admin form refuses it up front.
        logger.error("Unknown holiday country %r; ignoring it", country)
        return None


@dataclass(frozen=True)
class _Hours:
    tz: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]  # per weekday: merged (start, end) seconds after midnight
    holiday_dates: frozenset[date]
    country: str

    @functools.cached_property
    def week_seconds(self) -> int:
        return sum(end - start for day in self.week for start, end in day)

    def is_holiday(self, day: date) -> bool:
        if day in self.holiday_dates:
            return True
        if not self.country:
            return False
        country = _country_holidays(self.country)
        return country is not None and day in country

    def midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of a local date, as UTC instants."""
        if self.is_holiday(day):
            return []
        result = []
        for start, end in self.week[day.weekday()]:
            opens = datetime.combine(day, _clock(start), tzinfo=self.tz).astimezone(UTC)
            if end >= DAY_SECONDS:
                closes = self.midnight(day + timedelta(days=1))
            else:
                closes = datetime.combine(day, _clock(end), tzinfo=self.tz).astimezone(UTC)
            if closes > opens:
                result.append((opens, closes))
        return result

    def regular_week(self, day: date) -> bool:
        """No holiday and no UTC-offset change in the 7 days from `day`: its open time is week_seconds."""
        if any(self.is_holiday(day + timedelta(days=i)) for i in range(7)):
            return False
        first = datetime(day.year, day.month, day.day, tzinfo=self.tz).utcoffset()
        later = day + timedelta(days=7)
        return first == datetime(later.year, later.month, later.day, tzinfo=self.tz).utcoffset()


def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)


def _hours(calendar: BusinessCalendar) -> _Hours:
    # Cached on the instance: the engine asks the same calendar many questions in one go.
    cached = getattr(calendar, "_business_hours", None)
    if cached is not None:
        return cached
    from routing.models import CalendarInterval, Holiday

    spans: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    intervals = CalendarInterval.objects.for_tenant(calendar.tenant_id).filter(calendar=calendar)
    for weekday, start, end in intervals.values_list("weekday", "start", "end"):
        start_s = _seconds(start)
        end_s = _seconds(end) or DAY_SECONDS
        if end_s > start_s:
            spans[weekday].append((start_s, end_s))
    holiday_dates = Holiday.objects.for_tenant(calendar.tenant_id).filter(calendar=calendar).values_list("date", flat=True)
    hours = _Hours(
        tz=ZoneInfo(calendar.time_zone or "UTC"),
        week=tuple(_merge(day) for day in spans),
        holiday_dates=frozenset(holiday_dates),
        country=(calendar.holiday_country or "").strip().upper(),
    )
    calendar._business_hours = hours
    return hours


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("Business-hours arithmetic needs aware datetimes.")
    return at.astimezone(UTC)


def is_open(calendar: BusinessCalendar | None, at: datetime) -> bool:
    if calendar is None:
        return True
    hours = _hours(calendar)
    at = _aware(at)
    return any(opens <= at < closes for opens, closes in hours.intervals(hours.local_date(at)))


def next_open(calendar: BusinessCalendar | None, at: datetime) -> datetime:
    """`at` itself when open, else the moment the calendar next opens."""
    if calendar is None:
        return at
    hours = _hours(calendar)
    at = _aware(at)
    day = hours.local_date(at)
    for _ in range(MAX_DAYS):
        for opens, closes in hours.intervals(day):
            if closes > at:
                return max(opens, at)
        day += timedelta(days=1)
    raise CalendarNeverOpen(f"Calendar {calendar} does not open within {MAX_DAYS} days of {at}.")


def add_business_seconds(calendar: BusinessCalendar | None, start: datetime, seconds: float) -> datetime:
    """The instant at which `seconds` of open time have passed since `start`."""
    if calendar is None:
        return start + timedelta(seconds=seconds)
    hours = _hours(calendar)
    at = _aware(start)
    if seconds <= 0:
        return at
    remaining = float(seconds)
    day = hours.local_date(at)
    first = True
    for _ in range(MAX_DAYS):
        if not first and hours.week_seconds and remaining > hours.week_seconds and hours.regular_week(day):
            remaining -= hours.week_seconds
            day += timedelta(days=7)
            continue
        first = False
        for opens, closes in hours.intervals(day):
            if closes <= at:
                continue
            begin = max(opens, at)
            available = (closes - begin).total_seconds()
            if remaining <= available:
                return begin + timedelta(seconds=remaining)
            remaining -= available
        day += timedelta(days=1)
    raise CalendarNeverOpen(f"Calendar {calendar} does not open within {MAX_DAYS} days of {start}.")


def business_seconds_between(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> float:
    """Open time between two instants (0 when end is not after start)."""
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    hours = _hours(calendar)
    start, end = _aware(start), _aware(end)
    total = 0.0
    day = hours.local_date(start)
    last = hours.local_date(end)
    first = True
    while day <= last:
        if not first and hours.midnight(day + timedelta(days=7)) <= end and hours.regular_week(day):
            total += hours.week_seconds
            day += timedelta(days=7)
            continue
        first = False
        for opens, closes in hours.intervals(day):
            overlap = (min(closes, end) - max(opens, start)).total_seconds()
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total
