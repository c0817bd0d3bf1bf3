"""Shared arguments of the rollup commands: a tenant and a range of its local days."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError
from django.utils import timezone

from customers.models import Tenant


def add_range_arguments(parser) -> None:
    parser.add_argument("--tenant", required=True, help="the tenant's slug")
    parser.add_argument("--start", help="first day, YYYY-MM-DD (default: 30 days before --end)")
    parser.add_argument("--end", help="last day, included, YYYY-MM-DD (default: today in the tenant's zone)")


def _day(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--{what} must be a day like 2026-01-31, not {value!r}.") from exc


def tenant_and_range(options) -> tuple[Tenant, date, date]:
    tenant = Tenant.objects.filter(slug=options["tenant"]).first()
    if tenant is None:
        raise CommandError(f"No tenant {options['tenant']!r}.")
    today = timezone.now().astimezone(ZoneInfo(tenant.time_zone or "UTC")).date()
    end = _day(options.get("end"), "end") or today
    start = _day(options.get("start"), "start") or end - timedelta(days=29)
    if start > end:
        raise CommandError("--start comes after --end.")
    return tenant, start, end
