from __future__ import annotations

from django.contrib import admin

from omnidesk.lib.admin import TenantScopedAdmin
from routing.models import Team


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("members",)

from routing import admin_sla  # noqa: E402,F401
