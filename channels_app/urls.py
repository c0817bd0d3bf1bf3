"""Provider webhooks, one include per adapter package. Everything under /hooks/ is CSRF-exempt and
authenticated by signatures or inbox secrets instead of sessions."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("twilio/", include("channels_app.adapters.twilio_common.urls")),
    path("twilio/", include("channels_app.adapters.twilio_voice.urls")),
    path("email/", include("channels_app.adapters.email.urls")),
    path("api/", include("channels_app.adapters.api.urls")),
]
