from __future__ import annotations

from django.contrib import admin

from analytics.models import AnalyticsEvent
from omnidesk.lib.admin import ReadOnlyTenantAdmin


@admin.register(AnalyticsEvent)
class AnalyticsEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("occurred_at", "tenant", "name", "channel", "conversation", "agent_id_snapshot", "value_seconds")
    list_filter = ("name", "channel", "customer_tier")
    date_hierarchy = "occurred_at"
