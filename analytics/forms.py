"""The reports' query string: a date range in the tenant's days and the filters, checked against the tenant."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from channels_app.models import Channel, Inbox
from customers.models import Membership, Tenant, Tier
from routing.models import Team

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
EARLIEST = date(2000, 1, 1)


def tenant_today(tenant: Tenant, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(ZoneInfo(tenant.time_zone or "UTC")).date()


def preset_range(tenant: Tenant, days: int) -> tuple[date, date]:
    """The last `days` days of the tenant's calendar, today included."""
    end = tenant_today(tenant)
    return end - timedelta(days=days - 1), end


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Membership) -> str:
        return obj.name


class ReportFilterForm(forms.Form):
    """Bound to request.GET. Ids name the tenant's own inboxes, teams and people only: anything else is a
    field error (another tenant's team id reads exactly like a missing one)."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(required=False, choices=[("", "All channels"), *Channel.choices])
    inbox = forms.ModelChoiceField(required=False, queryset=Inbox.objects.none(), empty_label="All inboxes")
    team = forms.ModelChoiceField(required=False, queryset=Team.objects.none(), empty_label="All teams")
    agent = MemberChoiceField(required=False, queryset=Membership.objects.none(), to_field_name="user_id",
                              empty_label="All agents")
    tier = forms.ChoiceField(required=False, choices=[("", "All tiers"), *Tier.choices])

    def __init__(self, data, *, tenant: Tenant, **kwargs):
        super().__init__(data, **kwargs)
        self.tenant = tenant
        self.fields["inbox"].queryset = Inbox.objects.for_tenant(tenant).order_by("name")
        self.fields["team"].queryset = Team.objects.for_tenant(tenant).order_by("name")
        self.fields["agent"].queryset = Membership.objects.for_tenant(tenant).select_related("user").order_by(
            "display_name", "user__email"
        )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if start is None and end is None:
            start, end = preset_range(self.tenant, DEFAULT_DAYS)
        elif end is None:
            end = min(start + timedelta(days=DEFAULT_DAYS - 1), tenant_today(self.tenant))
            end = max(end, start)
        elif start is None:
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        if start < EARLIEST or end < EARLIEST:
            raise forms.ValidationError(f"Pick days from {EARLIEST:%Y-%m-%d} on.")
        if start > end:
            raise forms.ValidationError("The start day comes after the end day.")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"A report covers at most {MAX_DAYS} days.")
        data["start"], data["end"] = start, end
        return data

    def scope_filters(self) -> dict:
        """The keyword arguments of analytics.reports.scope_for_member."""
        data = self.cleaned_data
        return {
            "start": data["start"], "end": data["end"], "channel": data.get("channel") or "",
            "inbox_id": data["inbox"].pk if data.get("inbox") else None,
            "team_id": data["team"].pk if data.get("team") else None,
            "agent_id": data["agent"].user_id if data.get("agent") else None,
            "tier": data.get("tier") or "",
        }

    def query_params(self) -> dict[str, str]:
        """The valid filters as query parameters (for drill-down, export and preset links)."""
        filters = self.scope_filters()
        params = {"start": filters["start"].isoformat(), "end": filters["end"].isoformat()}
        for name, key in (("channel", "channel"), ("inbox", "inbox_id"), ("team", "team_id"),
                          ("agent", "agent_id"), ("tier", "tier")):
            if filters[key] not in (None, ""):
                params[name] = str(filters[key])
        return params
