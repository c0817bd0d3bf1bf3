from __future__ import annotations

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("live/", views.overview_live, name="overview_live"),
    path("reports/", views.reports, name="reports"),
    path("reports/conversations/", views.report_conversations_view, name="report_conversations"),
    path("reports/export.csv", views.report_export, name="report_export"),
]
