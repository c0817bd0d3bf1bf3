"""Mounted at /app/chat/ by omnidesk/urls.py (session-authenticated, CSRF-checked like the workspace)."""

from __future__ import annotations

from django.urls import path

from channels_app.adapters.web_chat import agent_views

app_name = "web_chat_agent"

urlpatterns = [
    path("conversations/<int:number>/typing/", agent_views.conversation_typing, name="typing"),
]
