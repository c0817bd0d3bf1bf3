from __future__ import annotations

from django.contrib import admin

from channels_app.models import Inbox
from omnidesk.lib.admin import TenantScopedAdmin


@admin.register(Inbox)
class InboxAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "channel", "address", "is_active", "created_at")
    list_filter = ("channel", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("key",)
