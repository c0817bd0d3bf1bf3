"""`/ws/analytics/`: tells an open live overview that something changed, so it refetches its tiles.

It joins the same per-tenant groups as the member's workspace socket (conversations.live), so it hears exactly
the events that member may hear, and passes on only each event's type: the page reloads its regions through
the permission-checked views, which decide what the member sees.
"""

from __future__ import annotations

from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.consumers import NO_SEAT, NOT_SIGNED_IN
from conversations.live import groups_of_member
from customers.middleware import SESSION_KEY
from customers.selectors import membership_current, memberships_of_user


def _groups_of_user(user, wanted_tenant_id) -> list[str]:
    membership = membership_current(memberships=list(memberships_of_user(user=user)), wanted_tenant_id=wanted_tenant_id)
    return groups_of_member(membership) if membership is not None else []


class AnalyticsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_SIGNED_IN)
            return
        session = self.scope.get("session") or {}
        self.live_groups = await database_sync_to_async(_groups_of_user)(user, session.get(SESSION_KEY))
        if not self.live_groups:
            await self.close(code=NO_SEAT)
            return
        self.seen = deque(maxlen=256)
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code) -> None:
        for group in getattr(self, "live_groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """The overview only listens."""

    async def domain_event(self, message) -> None:
        delivery_id = message.get("delivery_id")
        if delivery_id is not None:
            # One event reaches every group this socket joined (unassigned and a team): pass it on once.
            if delivery_id in self.seen:
                return
            self.seen.append(delivery_id)
        await self.send_json({"type": "changed", "event": message["event"].get("type", "")})

    async def viewer_changed(self, message) -> None:
        """Collision notices are for workspace tabs only."""
