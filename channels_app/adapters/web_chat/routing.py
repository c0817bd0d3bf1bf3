"""The visitor's websocket route. omnidesk/asgi.py serves it outside the workspace's AllowedHosts origin check:
visitors connect from the tenant's own sites, which ChatConsumer checks against the inbox's allowed origins."""

from __future__ import annotations

from django.urls import path

from channels_app.adapters.web_chat.consumer import ChatConsumer

CHAT_PATH_PREFIX = "/ws/chat/"

chat_websocket_urlpatterns = [
    path("ws/chat/<str:key>/", ChatConsumer.as_asgi()),
]
