from __future__ import annotations

from django.urls import path

from channels_app.adapters.api import views

app_name = "api_hooks"

urlpatterns = [
    path("<str:key>/messages/", views.messages, name="messages"),
]
