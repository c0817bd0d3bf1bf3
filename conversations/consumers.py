from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.live import groups_of_member
from customers.middleware import SESSION_KEY
from customers.selectors import membership_current, memberships_of_user

# Close codes the workspace script understands (4000-4999 are the application's).
NOT_SIGNED_IN = 4401
NO_SEAT = 4403


def _member_and_groups(user, wanted_tenant_id):
    membership = membership_current(memberships=list(memberships_of_user(user=user)), wanted_tenant_id=wanted_tenant_id)
    return (membership, groups_of_member(membership)) if membership is not None else (None, [])


def _set_presence(membership, presence: str) -> None:
    from routing.services import agent_set_presence

    agent_set_presence(tenant=membership.tenant, membership=membership, presence=presence)


class WorkspaceConsumer(AsyncJsonWebsocketConsumer):
    """One per open workspace tab: receives the domain events its user may see; sets their presence."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_SIGNED_IN)
            return
        session = self.scope.get("session") or {}
        self.membership, self.live_groups = await database_sync_to_async(_member_and_groups)(
            user, session.get(SESSION_KEY)
        )
        if self.membership is None:
            await self.close(code=NO_SEAT)
            return
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "tenant_id": self.membership.tenant_id})

    async def disconnect(self, code) -> None:
        for group in getattr(self, "live_groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if content.get("type") == "presence":
            try:
                await database_sync_to_async(_set_presence)(self.membership, str(content.get("presence")))
            except ValueError as exc:
                await self.send_json({"type": "error", "detail": str(exc)})

    async def domain_event(self, message) -> None:
        await self.send_json(message["event"])
