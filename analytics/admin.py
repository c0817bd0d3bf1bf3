from __future__ import annotations

from django.contrib import admin

from analytics.models import AnalyticsEvent, AnalyticsSettings
from omnidesk.lib.admin import ReadOnlyTenantAdmin, TenantScopedAdmin


@admin.register(AnalyticsEvent)
class AnalyticsEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("occurred_at", "tenant", "name", "channel", "conversation", "agent_id_snapshot", "value_seconds")
    list_filter = ("name", "channel", "customer_tier")
    date_hierarchy = "occurred_at"


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(TenantScopedAdmin):
    """Where an admin picks the calendar that business-hours durations fall back to (events already recorded
    keep the business seconds they were written with)."""

    list_display = ("tenant", "default_calendar")
