from __future__ import annotations

from django.urls import path

from channels_app.adapters.email import views

urlpatterns = [
    path("<str:key>/", views.inbound, name="email_inbound"),
]
