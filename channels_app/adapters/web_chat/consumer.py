"""`ws/chat/<key>/?token=…`: one visitor's live connection (PROTOCOL.md, "Websocket").

The handshake is checked against the inbox's own allowed origins (not the workspace's AllowedHosts check, see
omnidesk/routing.py). A visitor's message is acknowledged by its echo, which is sent after it is committed.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError

from channels_app.adapters.web_chat import config, services
from channels_app.adapters.web_chat.live import group_inbox, group_visitor
from channels_app.adapters.web_chat.payloads import message_payload
from channels_app.adapters.web_chat.selectors import agents_online, visitor_for_token, visitor_unread_count
from channels_app.inbound import InboundRejected, inbox_for_hook
from channels_app.models import Channel

logger = logging.getLogger(__name__)

CLOSE_UNKNOWN_TOKEN = 4401
CLOSE_ORIGIN_REFUSED = 4403
CLOSE_UNKNOWN_INBOX = 4404
# One frame: the longest message the protocol allows, as JSON-escaped text, with room for the envelope.
MAX_FRAME_CHARS = 6 * config.HARD_MAX_MESSAGE_LENGTH + 1024


def _open(key: str, origin: str, token: str):
    """(close code, inbox, visitor, hello) for a handshake."""
    try:
        inbox = inbox_for_hook(key, [Channel.CHAT])
    except InboundRejected:
        return CLOSE_UNKNOWN_INBOX, None, None, None
    if not config.origin_allowed(inbox, origin):
        return CLOSE_ORIGIN_REFUSED, inbox, None, None
    visitor = visitor_for_token(inbox=inbox, token=token)
    if visitor is None:
        return CLOSE_UNKNOWN_TOKEN, inbox, None, None
    hello = {"type": "hello", "unread": visitor_unread_count(visitor=visitor), "agents_online": agents_online(inbox=inbox)}
    return None, inbox, visitor, hello


def _send_message(tenant_id: int, visitor_id: int, body, client_id):
    visitor = services.visitor_fresh(tenant_id=tenant_id, visitor_id=visitor_id)
    if visitor is None:
        raise services.ChatRefused(401, "This chat session has ended; reload the page.")
    entry, created = services.visitor_message_send(visitor=visitor, body=body, client_id=client_id)
    return message_payload(entry), created


def _typing(tenant_id: int, visitor_id: int) -> None:
    visitor = services.visitor_fresh(tenant_id=tenant_id, visitor_id=visitor_id)
    if visitor is not None:
        services.visitor_typing(visitor=visitor)


def _read(tenant_id: int, visitor_id: int, up_to) -> None:
    visitor = services.visitor_fresh(tenant_id=tenant_id, visitor_id=visitor_id)
    if visitor is not None:
        services.visitor_mark_read(visitor=visitor, up_to=up_to)


def _delivered(tenant, entry_id: int) -> None:
    services.messages_mark_delivered(tenant=tenant, entry_ids=[entry_id])


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"]["key"]
        headers = dict(self.scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        code, inbox, visitor, hello = await database_sync_to_async(_open)(key, origin, token)
        # Accepted, then closed with the reason: a refused handshake reaches browsers only as 1006.
        await self.accept()
        if code is not None:
            logger.info("Chat socket refused (%s) for inbox key %s…, origin %r", code, key[:6], origin)
            await self.close(code=code)
            return
        self.inbox, self.visitor = inbox, visitor
        self.live_groups = [group_visitor(inbox.tenant_id, visitor.pk), group_inbox(inbox.tenant_id, inbox.pk)]
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json(hello)

    async def disconnect(self, code) -> None:
        for group in getattr(self, "live_groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if getattr(self, "visitor", None) is None:
            return
        if text_data is None:
            await self.send_json({"type": "error", "detail": "Send JSON text frames; files go by HTTP POST."})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "detail": "That frame is too large."})
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_json({"type": "error", "detail": "That frame is not JSON."})
            return
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "detail": "A frame is a JSON object with a type."})
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type")
        tenant_id, visitor_id = self.visitor.tenant_id, self.visitor.pk
        try:
            if kind == "message":
                await self._message(content)
            elif kind == "typing":
                await database_sync_to_async(_typing)(tenant_id, visitor_id)
            elif kind == "read":
                await database_sync_to_async(_read)(tenant_id, visitor_id, content.get("up_to"))
            elif kind == "ping":
                await self.send_json({"type": "pong"})
            else:
                await self.send_json({"type": "error", "detail": f"Unknown frame type {kind!r}."})
        except services.ChatRefused as exc:
            error = {"type": "error", "detail": exc.detail}
            if isinstance(content.get("client_id"), str):
                error["client_id"] = content["client_id"]
            if exc.retry_after is not None:
                error["retry_after"] = exc.retry_after
            await self.send_json(error)
        except DatabaseError:
            logger.exception("Chat frame of visitor %s not stored", visitor_id)
            error = {"type": "error", "detail": "Not saved: storage is unavailable. Try again in a moment."}
            if isinstance(content.get("client_id"), str):
                error["client_id"] = content["client_id"]
            await self.send_json(error)

    async def _message(self, content) -> None:
        payload, created = await database_sync_to_async(_send_message)(
            self.visitor.tenant_id, self.visitor.pk, content.get("body"), content.get("client_id")
        )
        if not created:
            # A resend of a stored message: confirm it to this socket (the first echo went out already).
            await self.send_json({"type": "message", "message": payload})

    async def chat_event(self, message) -> None:
        event = message["event"]
        await self.send_json(event)
        if event.get("type") == "message" and event["message"].get("direction") == "out":
            await database_sync_to_async(_delivered)(self.inbox.tenant, event["message"]["id"])
