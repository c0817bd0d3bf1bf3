"""Websocket routes; the workspace and chat consumers register here as they land."""

from __future__ import annotations

websocket_urlpatterns: list = []
