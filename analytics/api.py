"""REST API: a tenant's headline KPIs over a date range (`/api/v1/kpis/`), from the append-only analytics events.

Kept small on purpose: medians and 90th percentiles of wall-clock durations, counts, and SLA attainment as
met / (met + missed). Days are the tenant's calendar days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Aggregate, Count, FloatField, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.models import AnalyticsEvent, EventName
from conversations.models import Conversation
from customers.models import Role
from customers.serializers import error_responses
from omnidesk.lib import api_schema  # noqa: F401 - registers the token scheme with the schema
from omnidesk.lib.api import TenantAPIView

DEFAULT_DAYS = 7
MAX_DAYS = 366


class Percentile(Aggregate):
    """Postgres' PERCENTILE_CONT(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


# Far enough either way for any report, near enough that date arithmetic never overflows.
EARLIEST, LATEST = date(1970, 1, 1), date(9999, 1, 1)


def _in_range(value: date) -> None:
    if not EARLIEST <= value <= LATEST:
        raise serializers.ValidationError(f"Give a day between {EARLIEST} and {LATEST}.")


class KpiQuerySerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False, validators=[_in_range], help_text=f"First day (default: {DEFAULT_DAYS} days before `until`)."
    )
    until = serializers.DateField(
        required=False, validators=[_in_range], help_text="Last day, included (default: today in the tenant's zone)."
    )

    def validate(self, data):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise serializers.ValidationError({"since": ["`since` comes after `until`."]})
        return data


class DurationSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class SlaAttainmentSerializer(serializers.Serializer):
    met = serializers.IntegerField()
    missed = serializers.IntegerField()
    attainment = serializers.FloatField(allow_null=True, help_text="met / (met + missed); null when nothing was due.")


class VolumeSerializer(serializers.Serializer):
    conversations_opened = serializers.IntegerField()
    resolutions = serializers.IntegerField()
    reopens = serializers.IntegerField()


class KpiSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    time_zone = serializers.CharField()
    first_response = DurationSerializer(help_text="From a conversation's start to the first agent reply.")
    resolution = DurationSerializer(help_text="From a conversation's start to each resolution.")
    volume = VolumeSerializer()
    sla = SlaAttainmentSerializer()


def _duration(events, name: str) -> dict:
    return events.filter(name=name, value_seconds__isnull=False).aggregate(
        count=Count("id"), median_seconds=Percentile("value_seconds", 0.5), p90_seconds=Percentile("value_seconds", 0.9)
    )


def kpis_compute(*, tenant, since: date, until: date) -> dict:
    zone = ZoneInfo(tenant.time_zone or "UTC")
    start = datetime.combine(since, time.min, tzinfo=zone)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
    events = AnalyticsEvent.objects.for_tenant(tenant).filter(occurred_at__gte=start, occurred_at__lt=end)
    counts = events.aggregate(
        resolutions=Count("id", filter=Q(name=EventName.RESOLUTION)), reopens=Count("id", filter=Q(name=EventName.REOPEN)),
        met=Count("id", filter=Q(name=EventName.SLA_MET)), missed=Count("id", filter=Q(name=EventName.SLA_MISSED)),
    )
    due = counts["met"] + counts["missed"]
    return {
        "since": since, "until": until, "time_zone": str(zone),
        "first_response": _duration(events, EventName.FIRST_RESPONSE),
        "resolution": _duration(events, EventName.RESOLUTION),
        "volume": {
            "conversations_opened": Conversation.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end).count(),
            "resolutions": counts["resolutions"], "reopens": counts["reopens"],
        },
        "sla": {"met": counts["met"], "missed": counts["missed"], "attainment": counts["met"] / due if due else None},
    }


class KpiView(TenantAPIView):
    """Headline KPIs of the tenant for a range of days (supervisors and admins)."""

    required_role = Role.SUPERVISOR

    @extend_schema(summary="KPIs for a date range", parameters=[KpiQuerySerializer],
                   responses={200: KpiSerializer, **error_responses(400)})
    def get(self, request):
        query = KpiQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        today = timezone.now().astimezone(ZoneInfo(self.tenant.time_zone or "UTC")).date()
        until = query.validated_data.get("until") or today
        since = query.validated_data.get("since") or max(until - timedelta(days=DEFAULT_DAYS - 1), EARLIEST)
        if (until - since).days >= MAX_DAYS:
            raise serializers.ValidationError({"since": [f"A range is at most {MAX_DAYS} days."]})
        return Response(KpiSerializer(kpis_compute(tenant=self.tenant, since=since, until=until)).data)
