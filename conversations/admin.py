from __future__ import annotations

from django.contrib import admin

from conversations.models import Attachment, CannedResponse, Conversation, TimelineEntry
from omnidesk.lib.admin import TenantScopedAdmin, TenantScopedInline


class TimelineEntryInline(TenantScopedInline):
    """The timeline is written by the services only; admin shows it."""

    model = TimelineEntry
    can_delete = False
    fields = ("created_at", "kind", "direction", "channel", "event", "body", "delivery_status")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "customer", "status", "priority", "assignee", "team", "first_channel", "last_channel", "updated_at")
    list_filter = ("status", "priority", "first_channel", "last_channel")
    search_fields = ("=number", "subject", "customer__name", "customer__identities__value")
    list_select_related = ("tenant", "customer", "assignee", "team")
    raw_id_fields = ("customer",)
    readonly_fields = ("number", "first_response_at", "last_customer_message_at", "last_agent_message_at", "waiting_since", "resolved_at", "reopen_count")
    date_hierarchy = "created_at"
    inlines = [TimelineEntryInline]


@admin.register(TimelineEntry)
class TimelineEntryAdmin(TenantScopedAdmin):
    list_display = ("created_at", "tenant", "conversation", "kind", "direction", "channel", "delivery_status", "external_id")
    list_filter = ("kind", "direction", "channel", "delivery_status")
    search_fields = ("body", "external_id", "conversation__number")
    list_select_related = ("tenant", "conversation")
    raw_id_fields = ("customer", "conversation", "author")
    date_hierarchy = "created_at"


@admin.register(Attachment)
class AttachmentAdmin(TenantScopedAdmin):
    list_display = ("filename", "tenant", "content_type", "size", "created_at")
    search_fields = ("filename",)
    raw_id_fields = ("entry",)


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ("shortcut", "title", "tenant", "created_at")
    search_fields = ("shortcut", "title", "body")
