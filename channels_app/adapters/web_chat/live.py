"""What reaches a visitor's open sockets (and what the polling endpoint reads back): group names, pushes,
and the short-lived "an agent is typing" marks.

Groups include the tenant: `webchat.t<tenant>.v<visitor>` for one visitor's tabs, `webchat.t<tenant>.i<inbox>`
for everyone on one chat inbox (presence changes).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction

from omnidesk.lib.events import DomainEvent, subscribe
from omnidesk.lib.layer_send import group_send_all

logger = logging.getLogger(__name__)

# How long "agent is typing" holds without a new ping (the composer pings at most every 3 s).
TYPING_SECONDS = 6


def group_visitor(tenant_id: int, visitor_id: int) -> str:
    return f"webchat.t{tenant_id}.v{visitor_id}"


def group_inbox(tenant_id: int, inbox_id: int) -> str:
    return f"webchat.t{tenant_id}.i{inbox_id}"


def group_conversation_viewers(tenant_id: int, conversation_id: int) -> str:
    """The workspace's group of agents with this conversation open (conversations.consumers)."""
    return f"t{tenant_id}.conv{conversation_id}"


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    group_send_all(layer, [group], message)


def visitor_push(*, tenant_id: int, visitor_id: int, event: dict[str, Any]) -> None:
    """Send a protocol event to every socket of the visitor, now."""
    _send(group_visitor(tenant_id, visitor_id), {"type": "chat.event", "event": event})


def visitor_push_on_commit(*, tenant_id: int, visitor_id: int, event: dict[str, Any]) -> None:
    # robust: the message is stored; a broken layer only costs the live copy (polling still finds it).
    transaction.on_commit(lambda: visitor_push(tenant_id=tenant_id, visitor_id=visitor_id, event=event), robust=True)


def agent_typing_mark(*, tenant_id: int, visitor_id: int, name: str) -> None:
    cache.set(f"webchat:typing:{tenant_id}:{visitor_id}", name, timeout=TYPING_SECONDS)
    visitor_push(tenant_id=tenant_id, visitor_id=visitor_id, event={"type": "typing", "name": name})


def agent_typing_name(*, tenant_id: int, visitor_id: int) -> str | None:
    return cache.get(f"webchat:typing:{tenant_id}:{visitor_id}")


def visitor_typing_announce(*, tenant_id: int, conversation_id: int, name: str) -> None:
    """Agents with the conversation open see the visitor typing (as a viewer line that fades)."""
    _send(group_conversation_viewers(tenant_id, conversation_id), {
        "type": "chat.visitor_typing",
        "event": {
            "type": "viewer", "conversation_id": conversation_id, "state": "typing", "reply": True,
            "user_id": f"visitor-{conversation_id}", "name": name,
        },
    })


@subscribe("agent.presence_changed")
def presence_to_visitors(event: DomainEvent) -> None:
    """Visitors on the tenant's chat inboxes hear when the team comes online or goes away."""
    from channels_app.adapters.web_chat.selectors import agents_online, chat_inboxes

    for inbox in chat_inboxes(tenant_id=event.tenant_id):
        _send(group_inbox(event.tenant_id, inbox.pk), {
            "type": "chat.event", "event": {"type": "presence", "agents_online": agents_online(inbox=inbox)},
        })
