"""Mounted at /widget/ by omnidesk/urls.py: the embeddable script, apart from the /chat/ endpoints it talks to."""

from __future__ import annotations

from django.urls import path

from channels_app.adapters.web_chat.widget import widget_script

app_name = "web_chat_widget"

urlpatterns = [
    path("<str:key>.js", widget_script, name="script"),
]
