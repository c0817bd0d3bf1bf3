"""`/ws/analytics/` through the real ASGI application (sessions, origin check) and the Redis channel layer."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from conversations.consumers import NO_SEAT, NOT_SIGNED_IN
from conversations.services import InboundMessage, conversation_assign, message_record_inbound
from omnidesk.asgi import application
from tests.factories import InboxFactory, UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

OUR_PAGES = "http://testserver"


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def overview_socket(user=None, origin: str = OUR_PAGES) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/analytics/", headers=headers)


async def connect(user) -> WebsocketCommunicator:
    socket = await overview_socket(user)
    connected, _ = await socket.connect()
    assert connected
    assert await socket.receive_json_from(timeout=5) == {"type": "hello"}
    return socket


async def pushes(socket: WebsocketCommunicator, wait: float = 1.0) -> list[dict]:
    """Every frame until the socket stays quiet for `wait` seconds (receive_nothing keeps the consumer alive)."""
    seen = []
    while not await socket.receive_nothing(timeout=wait):
        seen.append(await socket.receive_json_from())
    return seen


async def pushes_until(socket: WebsocketCommunicator, event: str, timeout: float = 10.0) -> list[dict]:
    """Frames up to and including the first notice of `event` (a busy machine may take a while)."""
    seen = [await socket.receive_json_from(timeout=timeout)]
    while seen[-1].get("event") != event:
        seen.append(await socket.receive_json_from(timeout=timeout))
    return seen


def sms_arrives(tenant, sender="+12025550143", body="Hello"):
    inbox = InboxFactory(tenant=tenant, channel="sms", name=f"SMS {sender} {body}")
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


async def test_an_inbound_message_in_the_tenant_pushes_change_notices_to_a_supervisor(tenant, supervisor):
    socket = await connect(supervisor)

    await database_sync_to_async(sms_arrives)(tenant)

    frames = await pushes_until(socket, "message.created")
    assert {"type": "changed", "event": "conversation.opened"} in frames
    # Only the event's type travels: the page refetches what the member may see.
    assert all(set(frame) == {"type", "event"} for frame in frames)
    await socket.disconnect()


async def test_one_event_is_pushed_once_however_many_groups_it_reaches(tenant, agent):
    # Unassigned and the agent's own group both carry the event when it is broadcast tenant-wide.
    socket = await connect(agent)

    await database_sync_to_async(sms_arrives)(tenant)

    frames = [frame["event"] for frame in [*await pushes_until(socket, "message.created"), *await pushes(socket)]]
    assert frames.count("message.created") == 1
    await socket.disconnect()


async def test_another_tenants_message_pushes_nothing(tenant, other_tenant, supervisor):
    socket = await connect(supervisor)

    await database_sync_to_async(sms_arrives)(other_tenant)

    assert await pushes(socket) == []
    await socket.disconnect()


async def test_an_agent_hears_only_of_conversations_they_may_see(tenant, agent, teammate, supervisor):
    result = await database_sync_to_async(sms_arrives)(tenant)
    await database_sync_to_async(conversation_assign)(
        tenant=tenant, conversation=result.conversation, assignee=teammate, actor=supervisor
    )
    socket = await connect(agent)

    await database_sync_to_async(sms_arrives)(tenant, body="Still there?")

    assert await pushes(socket) == []
    await socket.disconnect()


async def test_an_anonymous_visitor_is_refused_as_not_signed_in():
    socket = await overview_socket()

    assert await socket.connect() == (False, NOT_SIGNED_IN)


async def test_a_user_without_a_seat_is_refused(tenant):
    nobody = await database_sync_to_async(UserFactory)(email="drifter@example.org")
    socket = await overview_socket(nobody)

    assert await socket.connect() == (False, NO_SEAT)


async def test_another_sites_page_cannot_open_it(tenant, supervisor):
    socket = await overview_socket(supervisor, origin="https://evil.example")

    connected, _ = await socket.connect()

    assert not connected
