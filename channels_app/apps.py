from __future__ import annotations

from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels and inboxes"

    def ready(self) -> None:
        from channels_app.webhooks import handlers, tasks  # noqa: F401  (subscribes outgoing webhooks; their tasks)
