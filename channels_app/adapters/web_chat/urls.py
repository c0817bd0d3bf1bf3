"""Mounted at /chat/ by omnidesk/urls.py: the widget's endpoints, exactly as PROTOCOL.md names them."""

from __future__ import annotations

from django.urls import path

from channels_app.adapters.web_chat import views

app_name = "web_chat"

urlpatterns = [
    path("<str:key>/config", views.chat_config, name="config"),
    path("<str:key>/session", views.chat_session, name="session"),
    path("<str:key>/messages", views.chat_messages, name="messages"),
    path("<str:key>/typing", views.chat_typing, name="typing"),
    path("<str:key>/read", views.chat_read, name="read"),
    path("<str:key>/offline", views.chat_offline, name="offline"),
]
