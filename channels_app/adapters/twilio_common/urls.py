from __future__ import annotations

from django.urls import path

from channels_app.adapters.twilio_common import views

app_name = "twilio"

urlpatterns = [
    path("<str:key>/messages/", views.messages_hook, name="messages"),
    path("<str:key>/status/", views.status_hook, name="status"),
]
