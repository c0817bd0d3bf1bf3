"""Admin for SLA policies with their targets inline; registered from routing/admin.py."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from omnidesk.lib.admin import TenantConsistencyForm, TenantScopedAdmin, TenantScopedInline
from routing.models import SlaPolicy, SlaTarget


class SlaTargetFormSet(TenantScopedInline.formset):
    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            key = (form.cleaned_data.get("priority"), form.cleaned_data.get("metric"))
            if key in seen:
                raise ValidationError(f"Two targets for {key[1]} at {key[0]} priority; keep one.")
            seen.add(key)


class SlaTargetInline(TenantScopedInline):
    model = SlaTarget
    formset = SlaTargetFormSet
    fields = ("priority", "metric", "seconds", "business_hours")


class SlaPolicyForm(TenantConsistencyForm):
    class Meta:
        model = SlaPolicy
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        share = cleaned.get("at_risk_share")
        if share is not None and not 0 < share < 1:
            self.add_error("at_risk_share", "A share between 0 and 1, e.g. 0.75.")
        return cleaned


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantScopedAdmin):
    form = SlaPolicyForm
    inlines = [SlaTargetInline]
    list_display = ("name", "tenant", "position", "is_active", "calendar", "at_risk_share")
    list_editable = ("position", "is_active")
    search_fields = ("name",)
    filter_horizontal = ("inboxes",)
    fieldsets = (
        (None, {"fields": ("tenant", "name", "position", "is_active")}),
        ("Conditions (empty matches all)", {"fields": ("channels", "priorities", "tiers", "inboxes")}),
        ("Clock", {"fields": ("calendar", "at_risk_share")}),
        ("Escalation on breach", {"fields": ("escalate_raise_priority", "escalate_to_team", "escalate_notify_emails")}),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in ("channels", "priorities", "tiers"):
            # Checkboxes instead of a comma-separated text box for the choice arrays.
            choices = db_field.base_field.choices
            return forms.TypedMultipleChoiceField(
                choices=choices, required=False, widget=forms.CheckboxSelectMultiple, label=db_field.verbose_name
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)
