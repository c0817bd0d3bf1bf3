"""Websocket routes."""

from __future__ import annotations

from django.urls import path

from analytics.consumers import AnalyticsConsumer
from conversations.consumers import WorkspaceConsumer

websocket_urlpatterns = [
    path("ws/workspace/", WorkspaceConsumer.as_asgi()),
    path("ws/analytics/", AnalyticsConsumer.as_asgi()),
]
