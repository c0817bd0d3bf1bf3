"""Websocket routes."""

from __future__ import annotations

from django.urls import path

from conversations.consumers import WorkspaceConsumer

websocket_urlpatterns = [
    path("ws/workspace/", WorkspaceConsumer.as_asgi()),
]
