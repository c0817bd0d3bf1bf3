from __future__ import annotations

from django.urls import path

from channels_app.adapters.twilio_voice import views

app_name = "twilio_voice"

urlpatterns = [
    path("<str:key>/voice/", views.incoming_call, name="call"),
    path("<str:key>/voice/dial/", views.dial_result, name="dial"),
    path("<str:key>/voice/voicemail/", views.voicemail_done, name="voicemail"),
    path("<str:key>/voice/status/", views.status_callback, name="status"),
    path("<str:key>/voice/recording/", views.recording_callback, name="recording"),
    path("<str:key>/voice/outbound/", views.outbound_answered, name="outbound"),
    path("<str:key>/voice/outbound/dial/", views.outbound_dial_result, name="outbound_dial"),
    path("<str:key>/voice/outbound/status/", views.outbound_status, name="outbound_status"),
]
