"""Tenant admins pick the fallback business-hours calendar in Django admin, never another tenant's."""

from __future__ import annotations

from analytics.models import AnalyticsSettings
from routing.models import BusinessCalendar

ADD_URL = "/admin/analytics/analyticssettings/add/"


def test_a_tenant_admin_picks_their_calendar(client, tenant, tenant_admin):
    calendar = BusinessCalendar.objects.create(tenant=tenant, name="Office", time_zone="Europe/Berlin")
    client.force_login(tenant_admin)

    response = client.post(ADD_URL, {"tenant": tenant.pk, "default_calendar": calendar.pk})

    assert response.status_code == 302
    assert AnalyticsSettings.objects.get(tenant=tenant).default_calendar == calendar


def test_another_tenants_calendar_is_a_form_error(client, tenant, other_tenant, tenant_admin):
    theirs = BusinessCalendar.objects.create(tenant=other_tenant, name="Globex office")
    client.force_login(tenant_admin)

    response = client.post(ADD_URL, {"tenant": tenant.pk, "default_calendar": theirs.pk})

    assert response.status_code == 200
    assert "default_calendar" in response.context["adminform"].form.errors
    assert not AnalyticsSettings.objects.exists()
    assert "Globex office" not in client.get(ADD_URL).content.decode()
