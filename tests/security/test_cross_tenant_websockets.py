"""Cross-tenant isolation of every websocket route, through the real ASGI application (router, session
cookie, origin check) and the Redis channel layer: tenant A's member asks for tenant B's conversation and
hears none of B's events. A route in omnidesk/routing.py or the chat routing without a check here fails."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from channels_app.adapters.web_chat.routing import chat_websocket_urlpatterns
from channels_app.models import Channel
from conversations.services import InboundMessage, message_record_inbound
from customers.middleware import SESSION_KEY
from omnidesk.asgi import application
from omnidesk.routing import websocket_urlpatterns
from tests.channels.web_chat.conftest import SITE, chat_inbox_for, start
from tests.factories import InboxFactory
from tests.security.urlconf_walk import view_path

pytestmark = [pytest.mark.django_db(transaction=True)]

# Each consumer, and the test below that probes it with another tenant's ids.
WEBSOCKET_CHECKS = {
    "conversations.consumers.WorkspaceConsumer": "test_the_workspace_socket_refuses_another_tenants_conversation",
    "analytics.consumers.AnalyticsConsumer": "test_the_analytics_socket_hears_none_of_another_tenants_events",
    "channels_app.adapters.web_chat.consumer.ChatConsumer": "test_the_chat_socket_refuses_a_visitor_of_another_tenant",
}


def test_every_websocket_route_has_a_cross_tenant_check():
    consumers = {view_path(route.callback.consumer_class) for route in
                 [*websocket_urlpatterns, *chat_websocket_urlpatterns]}

    assert consumers - WEBSOCKET_CHECKS.keys() == set(), "add a cross-tenant check for these consumers"
    assert all(name in globals() for name in WEBSOCKET_CHECKS.values())


def write_in(tenant, subject: str):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name=f"{subject} inbox")
    message = InboundMessage(channel=Channel.EMAIL, sender_kind="email", sender_value=f"{tenant.slug}@example.org",
                             subject=subject, body=subject)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def session_cookie(user, planted_tenant_id: int | None = None) -> bytes:
    client = Client()
    client.force_login(user)
    if planted_tenant_id is not None:
        session = client.session
        session[SESSION_KEY] = planted_tenant_id
        session.save()
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def member_socket(path: str, user, planted_tenant_id: int | None = None) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(session_cookie)(user, planted_tenant_id)
    socket = WebsocketCommunicator(application, path, headers=[(b"cookie", cookie), (b"origin", b"http://testserver")])
    connected, _ = await socket.connect()
    assert connected
    return socket


async def frames(socket: WebsocketCommunicator, wait: float = 1.0) -> list[dict]:
    seen = []
    while not await socket.receive_nothing(timeout=wait):
        seen.append(await socket.receive_json_from())
    return seen


@pytest.mark.asyncio
async def test_the_workspace_socket_refuses_another_tenants_conversation(tenant, other_tenant, tenant_admin):
    theirs = await database_sync_to_async(write_in)(other_tenant, "GLOBEX-SECRET first")
    # A session planted with the other tenant's id (no seat there) still opens the member's own tenant.
    socket = await member_socket("/ws/workspace/", tenant_admin, planted_tenant_id=other_tenant.pk)
    hello = await socket.receive_json_from(timeout=5)

    await socket.send_json_to({"type": "viewing", "conversation_id": theirs.pk})
    refusal = await socket.receive_json_from(timeout=5)
    await database_sync_to_async(write_in)(other_tenant, "GLOBEX-SECRET second")
    ours = await database_sync_to_async(write_in)(tenant, "ACME-OWN first")
    heard = await frames(socket)

    assert hello == {"type": "hello", "tenant_id": tenant.pk}
    assert refusal == {"type": "error", "detail": "No such conversation."}
    assert heard, "the socket heard nothing at all, so the check below would prove nothing"
    assert {frame.get("conversation_id") for frame in heard} - {None} == {ours.pk}
    assert {frame.get("customer_id") for frame in heard} - {None} <= {ours.customer_id}
    assert "GLOBEX-SECRET" not in repr(heard)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_the_analytics_socket_hears_none_of_another_tenants_events(tenant, other_tenant, tenant_admin):
    socket = await member_socket("/ws/analytics/", tenant_admin)
    assert (await socket.receive_json_from(timeout=5)) == {"type": "hello"}

    await database_sync_to_async(write_in)(other_tenant, "GLOBEX-SECRET first")
    heard_of_theirs = await frames(socket)
    await database_sync_to_async(write_in)(tenant, "ACME-OWN first")
    heard_of_ours = await frames(socket)

    assert heard_of_theirs == []
    assert heard_of_ours, "the socket heard nothing of its own tenant either, so the check above proves nothing"
    await socket.disconnect()


@pytest.mark.asyncio
async def test_the_chat_socket_refuses_a_visitor_of_another_tenant(tenant, other_tenant):
    ours = await database_sync_to_async(chat_inbox_for)(tenant)
    theirs = await database_sync_to_async(chat_inbox_for)(other_tenant, name="Globex chat")
    our_token = (await database_sync_to_async(start)(Client(), ours))["visitor_token"]
    socket = WebsocketCommunicator(application, f"/ws/chat/{theirs.key}/?token={our_token}",
                                   headers=[(b"origin", SITE.encode())])

    connected, _ = await socket.connect()
    closing = await socket.receive_output(timeout=5)

    assert connected  # accepted, then closed with the reason
    assert closing == {"type": "websocket.close", "code": 4401}
