"""Domain events → webhook deliveries. Runs after the emitting transaction committed (events.dispatch)."""

from __future__ import annotations

from channels_app.webhooks.events import MAPPED_DOMAIN_EVENTS
from channels_app.webhooks.services import webhook_deliveries_create
from omnidesk.lib.events import DomainEvent, subscribe


@subscribe(*MAPPED_DOMAIN_EVENTS)
def deliver_to_webhooks(event: DomainEvent) -> None:
    webhook_deliveries_create(event=event)
