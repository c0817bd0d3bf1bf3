from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import path

from channels_app.models import Channel, Inbox
from customers.models import Tenant, Tier
from omnidesk.lib.admin import (
    TenantConsistencyForm,
    TenantScopedAdmin,
    TenantScopedInline,
    admin_tenant_ids,
    scope_queryset,
)
from routing.models import (
    AgentProfile,
    AgentSkill,
    BusinessCalendar,
    BusinessHoursCondition,
    CalendarInterval,
    Holiday,
    Presence,
    RoutingRule,
    Skill,
    Team,
)
from routing.rules import RuleInput, keywords_validate, rules_for_tenant, rules_match
from routing.services import agent_capacity_changed, agent_set_presence


class CalendarIntervalInline(TenantScopedInline):
    model = CalendarInterval


class HolidayInline(TenantScopedInline):
    model = Holiday


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(TenantScopedAdmin):
    list_display = ("name", "time_zone", "holiday_country", "tenant")
    search_fields = ("name",)
    inlines = (CalendarIntervalInline, HolidayInline)


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "assignment_method", "calendar", "skills_relax_after_seconds",
                    "requeue_offline_after_seconds", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("members",)


@admin.register(Skill)
class SkillAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant")
    search_fields = ("name",)


class AgentSkillInline(TenantScopedInline):
    model = AgentSkill

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user)
        return field


def capacity_validate(value) -> dict[str, int]:
    """Channel → non-negative whole number, known channels only."""
    if not isinstance(value, dict):
        raise ValidationError('Capacity is an object of channel to number, e.g. {"chat": 3, "sms": 5}.')
    unknown = sorted(set(value) - set(Channel.values))
    if unknown:
        raise ValidationError(f"Unknown channel(s) {', '.join(unknown)}; known: {', '.join(Channel.values)}.")
    bad = sorted(k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0)
    if bad:
        raise ValidationError(f"Capacity for {', '.join(bad)} must be a whole number, 0 or more.")
    return value


class AgentProfileForm(TenantConsistencyForm):
    def clean_capacity(self):
        return capacity_validate(self.cleaned_data.get("capacity"))

    def clean_languages(self):
        return [code.strip() for code in self.cleaned_data.get("languages") or [] if code.strip()]

    def clean(self):
        cleaned = super().clean()
        membership, tenant = cleaned.get("membership"), cleaned.get("tenant")
        if membership is not None and tenant is not None and membership.tenant_id != tenant.pk:
            self.add_error("membership", "That person has no seat in this tenant.")
        return cleaned


@admin.register(AgentProfile)
class AgentProfileAdmin(TenantScopedAdmin):
    form = AgentProfileForm
    list_display = ("membership", "tenant", "presence", "capacity", "last_assigned_at")
    list_filter = ("presence",)
    list_select_related = ("tenant", "membership__user")
    search_fields = ("membership__user__email", "membership__display_name")
    readonly_fields = ("presence_changed_at", "last_assigned_at")
    inlines = (AgentSkillInline,)

    def save_model(self, request, obj, form, change):
        wanted = obj.presence
        if "presence" in form.changed_data:
            # Presence changes go through the service, so they are timestamped and queues react.
            obj.presence = form.initial.get("presence") or Presence.OFFLINE
        super().save_model(request, obj, form, change)
        if wanted != obj.presence:
            agent_set_presence(tenant=obj.tenant, membership=obj.membership, presence=wanted)
            obj.refresh_from_db(fields=["presence", "presence_changed_at"])
        if "capacity" in form.changed_data:
            agent_capacity_changed(tenant=obj.tenant, profile=obj)


class RoutingRuleForm(TenantConsistencyForm):
    def clean_keywords(self):
        keywords = self.cleaned_data.get("keywords") or ""
        errors = keywords_validate(keywords)
        if errors:
            raise ValidationError(errors)
        return keywords

    def clean_languages(self):
        return [code.strip() for code in self.cleaned_data.get("languages") or [] if code.strip()]

    def clean(self):
        cleaned = super().clean()
        calendar = cleaned.get("business_calendar")
        team = cleaned.get("set_team")
        if cleaned.get("business_hours", BusinessHoursCondition.ANY) != BusinessHoursCondition.ANY:
            if calendar is None and (team is None or team.calendar_id is None):
                self.add_error("business_calendar", "A business-hours condition needs a calendar (here or on the team it sets).")
        return cleaned


class RuleTestForm(forms.Form):
    """A message as the engine would see it; nothing is stored."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    channel = forms.ChoiceField(choices=[("", "—"), *Channel.choices], required=False)
    inbox = forms.ModelChoiceField(queryset=Inbox.objects.none(), required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label="First message")
    tier = forms.ChoiceField(choices=Tier.choices, initial=Tier.STANDARD)
    language = forms.CharField(max_length=16, required=False, help_text="e.g. en, de, pt-BR")
    tags = forms.CharField(required=False, help_text="Comma-separated.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = scope_queryset(Tenant.objects.all(), user)
        self.fields["inbox"].queryset = scope_queryset(Inbox.objects.all(), user).select_related("tenant")

    def clean(self):
        cleaned = super().clean()
        inbox, tenant = cleaned.get("inbox"), cleaned.get("tenant")
        if inbox is not None and tenant is not None and inbox.tenant_id != tenant.pk:
            self.add_error("inbox", "That inbox belongs to another tenant.")
        return cleaned

    def rule_input(self) -> RuleInput:
        data = self.cleaned_data
        inbox = data.get("inbox")
        return RuleInput(
            channel=data.get("channel") or (inbox.channel if inbox else ""),
            inbox_id=inbox.pk if inbox else None,
            text=data.get("text") or "",
            tier=data.get("tier") or "",
            language=(data.get("language") or "").strip(),
            tags=tuple(tag.strip() for tag in (data.get("tags") or "").split(",") if tag.strip()),
        )


@admin.register(RoutingRule)
class RoutingRuleAdmin(TenantScopedAdmin):
    form = RoutingRuleForm
    list_display = ("name", "position", "is_active", "set_team", "set_priority", "tenant")
    list_editable = ("position", "is_active")
    list_select_related = ("tenant", "set_team")
    search_fields = ("name", "keywords")
    filter_horizontal = ("inboxes", "required_skills")
    change_list_template = "admin/routing/routingrule/change_list.html"
    fieldsets = (
        (None, {"fields": ("tenant", "name", "position", "is_active")}),
        ("Conditions (all must hold; empty ones match everything)", {"fields": (
            "channels", "inboxes", "keywords", "languages", "tiers", "business_hours", "business_calendar", "tags",
        )}),
        ("Actions", {"fields": ("set_team", "required_skills", "set_priority", "add_tags", "set_sla_policy")}),
    )

    def get_urls(self):
        return [
            path("test/", self.admin_site.admin_view(self.rule_test_view), name="routing_routingrule_test"),
            *super().get_urls(),
        ]

    def rule_test_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionError("Not an admin of any tenant.")
        tenant_ids = admin_tenant_ids(request.user)
        initial = {"tenant": next(iter(tenant_ids))} if tenant_ids and len(tenant_ids) == 1 else {}
        form = RuleTestForm(request.POST or None, user=request.user, initial=initial)
        result = None
        if request.method == "POST" and form.is_valid():
            rules = rules_for_tenant(form.cleaned_data["tenant"], include_inactive=True)
            result = rules_match(rules, form.rule_input(), explain_all=True)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "title": "Test a message against the routing rules", "form": form,
            "result": result
        }
        return TemplateResponse(request, "admin/routing/routingrule/rule_test.html", context)

from routing import admin_sla  # noqa: E402,F401
