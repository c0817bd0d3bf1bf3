from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing and SLAs"

    def ready(self) -> None:
        from routing import handlers  # noqa: F401 - subscribes to domain events
