"""Numbers for people: durations as "4m 12s" / "3h 05m" / "2d 04h", ratios as percentages, "–" for no data."""

from __future__ import annotations

import math
from datetime import datetime

from django import template

register = template.Library()

NO_DATA = "–"


@register.filter
def duration(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return NO_DATA
    total = max(0, round(float(seconds)))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


@register.filter
def since(moment: datetime | None, now: datetime) -> str:
    """How long ago `moment` was, as a duration."""
    if moment is None:
        return NO_DATA
    return duration((now - moment).total_seconds())


@register.filter
def until(moment: datetime | None, now: datetime) -> str:
    """Time left before `moment` ("overdue 5m 00s" once past)."""
    if moment is None:
        return NO_DATA
    left = (moment - now).total_seconds()
    return f"in {duration(left)}" if left >= 0 else f"overdue {duration(-left)}"


def kpi_format(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DATA
    if unit == "seconds":
        return duration(value)
    if unit == "ratio":
        percent = float(value) * 100
        # Whole percentages unless that would round a small non-zero share to 0 % or an almost-all to 100 %.
        if 0 < percent < 1 or 99 < percent < 100:
            return f"{percent:.1f}%"
        return f"{percent:.0f}%"
    if unit == "score":
        return f"{float(value):.2f}"
    if unit == "count":
        return f"{int(value):,}"
    return str(value)


register.filter("kpi_format", kpi_format)
