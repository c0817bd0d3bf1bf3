"""`/ws/analytics/`: tells an open live overview that something changed, so it refetches its tiles.

It joins the same per-tenant groups as the member's workspace socket (conversations.live), so it hears exactly
the events that member may hear, and passes on only each event's type: the page reloads its regions through
the permission-checked views, which decide what the member sees.
"""

from __future__ import annotations

from conversations.consumers import MemberConsumer


class AnalyticsConsumer(MemberConsumer):
    def hello_frame(self) -> dict:
        return {"type": "hello"}

    def event_frame(self, event: dict) -> dict:
        # Only the type: the overview refetches through the views, which decide what this member sees.
        return {"type": "changed", "event": event.get("type", "")}

    async def receive_json(self, content, **kwargs) -> None:
        """The overview only listens."""

    async def viewer_changed(self, message) -> None:
        """Collision notices are for workspace tabs only."""
