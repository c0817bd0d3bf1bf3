"""A controlled clock for analytics tests: durations come out exact."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

NEW_YORK = ZoneInfo("America/New_York")  # the `tenant` fixture's zone
# A February week with no DST change: Monday 2 .. Sunday 8, then Monday 9.
MONDAY = date(2026, 2, 2)
FRIDAY = date(2026, 2, 6)
NEXT_MONDAY = date(2026, 2, 9)


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


class Clock:
    """timezone.now() as the test says: every service stamps its rows with it."""

    def __init__(self) -> None:
        self.now = local(MONDAY, 9)

    def at(self, moment: datetime) -> datetime:
        self.now = moment
        return moment

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock
