from __future__ import annotations

import asyncio
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.live import groups_of_member
from customers.middleware import SESSION_KEY
from customers.selectors import membership_current, memberships_of_user

# Close codes the workspace script understands (4000-4999 are the application's).
NOT_SIGNED_IN = 4401
NO_SEAT = 4403
VIEWER_STATES = {"viewing", "typing", "left"}
# How long a web-chat visitor shows as typing after their last keystroke ping.
VISITOR_TYPING_SECONDS = 5


def _member_and_groups(user, wanted_tenant_id):
    membership = membership_current(memberships=list(memberships_of_user(user=user)), wanted_tenant_id=wanted_tenant_id)
    if membership is None:
        return None, []
    membership.user = user  # so its display name needs no query later, in async code
    return membership, groups_of_member(membership)


def _may_see(membership, conversation_id) -> bool:
    from conversations.selectors import conversation_list

    return conversation_list(tenant=membership.tenant, membership=membership).filter(pk=conversation_id).exists()


def _set_presence(membership, presence: str) -> None:
    from routing.services import agent_set_presence

    agent_set_presence(tenant=membership.tenant, membership=membership, presence=presence)


class MemberConsumer(AsyncJsonWebsocketConsumer):
    """A signed-in member's socket in their current tenant: the base of the workspace and dashboard sockets.

    Refuses anonymous users (NOT_SIGNED_IN) and users without a seat in the tenant (NO_SEAT), joins the
    member's live groups (conversations.live) and passes each domain event on once, however many of those
    groups it reached. Subclasses shape the hello and event frames.
    """

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
        self._seen_deliveries: deque[str] = deque(maxlen=256)
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json(self.hello_frame())

    async def disconnect(self, code) -> None:
        for group in getattr(self, "live_groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    def hello_frame(self) -> dict:
        return {"type": "hello", "tenant_id": self.membership.tenant_id}

    def event_frame(self, event: dict) -> dict:
        return event

    async def domain_event(self, message) -> None:
        delivery_id = message.get("delivery_id")
        if delivery_id is not None:
            # The same event reaches every group this socket joined (unassigned and a team): pass it on once.
            if delivery_id in self._seen_deliveries:
                return
            self._seen_deliveries.append(delivery_id)
        await self.send_json(self.event_frame(message["event"]))


class WorkspaceConsumer(MemberConsumer):
    """One per open workspace tab: receives the domain events its user may see; sets their presence."""

    async def disconnect(self, code) -> None:
        timer = getattr(self, "_visitor_typing_timer", None)
        if timer is not None:
            timer.cancel()
        if getattr(self, "membership", None) is not None:
            await self._leave_viewing()
        await super().disconnect(code)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type")
        if kind == "presence":
            try:
                await database_sync_to_async(_set_presence)(self.membership, str(content.get("presence")))
            except ValueError as exc:
                await self.send_json({"type": "error", "detail": str(exc)})
        elif kind in VIEWER_STATES:
            await self._viewer(kind, content)

    async def _viewer(self, state: str, content) -> None:
        """Collision warning: who else has this conversation open, or is typing in it."""
        conversation_id = content.get("conversation_id")
        if state == "left" or conversation_id != getattr(self, "viewing", None):
            await self._leave_viewing()
        if state == "left":
            return
        if not isinstance(conversation_id, int) or not await database_sync_to_async(_may_see)(self.membership, conversation_id):
            await self.send_json({"type": "error", "detail": "No such conversation."})
            return
        if getattr(self, "viewing", None) != conversation_id:
            self.viewing = conversation_id
            await self.channel_layer.group_add(self._viewer_group(conversation_id), self.channel_name)
        await self._announce(conversation_id, state, reply=bool(content.get("reply")))

    def _viewer_group(self, conversation_id: int) -> str:
        return f"t{self.membership.tenant_id}.conv{conversation_id}"

    async def _announce(self, conversation_id: int, state: str, *, reply: bool = False) -> None:
        await self.channel_layer.group_send(self._viewer_group(conversation_id), {
            "type": "viewer.changed",
            "event": {
                "type": "viewer", "conversation_id": conversation_id, "state": state, "reply": reply,
                "user_id": self.membership.user_id, "name": self.membership.name,
            },
        })

    async def _leave_viewing(self) -> None:
        conversation_id = getattr(self, "viewing", None)
        if conversation_id is None:
            return
        self.viewing = None
        await self._announce(conversation_id, "left")
        await self.channel_layer.group_discard(self._viewer_group(conversation_id), self.channel_name)

    async def viewer_changed(self, message) -> None:
        if message["event"]["user_id"] != self.membership.user_id:
            await self.send_json(message["event"])

    async def chat_visitor_typing(self, message) -> None:
        """A web-chat visitor is typing in the conversation this tab has open: shown like a typing viewer,
        and taken back after a few quiet seconds (visitors never send "left")."""
        event = message["event"]
        await self.send_json(event)
        timer = getattr(self, "_visitor_typing_timer", None)
        if timer is not None:
            timer.cancel()

        async def stopped() -> None:
            await asyncio.sleep(VISITOR_TYPING_SECONDS)
            await self.send_json({**event, "state": "left"})

        self._visitor_typing_timer = asyncio.ensure_future(stopped())
