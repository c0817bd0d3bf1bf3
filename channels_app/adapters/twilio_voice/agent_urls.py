"""Voice routes of the workspace, mounted under /app/voice/ (signed-in agents, CSRF-protected POSTs)."""

from __future__ import annotations

from django.urls import path

from channels_app.adapters.twilio_voice import agent_views

app_name = "voice"

urlpatterns = [
    path("conversations/<int:number>/call/", agent_views.conversation_call, name="conversation_call"),
    path("calls/<int:entry_id>/follow-up/", agent_views.call_followup, name="call_followup"),
    path("inboxes/<str:key>/token/", agent_views.softphone_token, name="softphone_token"),
]
