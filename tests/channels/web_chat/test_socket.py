"""The visitor's websocket through the real ASGI application and the Redis channel layer."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from channels_app.adapters.web_chat.services import agent_typing
from channels_app.models import Channel
from channels_app.services import reply_send
from conversations.consumers import WorkspaceConsumer
from conversations.models import Conversation, DeliveryStatus, Direction, TimelineEntry
from omnidesk.asgi import application
from routing.models import AgentProfile, Presence
from routing.services import agent_set_presence
from tests.channels.web_chat.conftest import SITE, start

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def new_visitor(inbox, **fields) -> str:
    return start(Client(), inbox, **fields)["visitor_token"]


async def visitor_socket(inbox, token, origin=SITE) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin else []
    return WebsocketCommunicator(application, f"/ws/chat/{inbox.key}/?token={token}", headers=headers)


async def connect(inbox, token, origin=SITE) -> WebsocketCommunicator:
    socket = await visitor_socket(inbox, token, origin)
    connected, _ = await socket.connect()
    assert connected
    hello = await socket.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return socket


async def close_code(socket: WebsocketCommunicator) -> int:
    connected, _ = await socket.connect()
    assert connected  # accepted, then closed with the reason (browsers see only 1006 for a refused handshake)
    closing = await socket.receive_output(timeout=5)
    assert closing["type"] == "websocket.close"
    return closing["code"]


async def frames(socket: WebsocketCommunicator, wait: float = 1.0) -> list[dict]:
    seen = []
    while not await socket.receive_nothing(timeout=wait):
        seen.append(await socket.receive_json_from())
    return seen


def reply(tenant, agent, body="We're on it"):
    conversation = Conversation.objects.get(first_channel=Channel.CHAT)
    return reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.CHAT, body=body)


async def test_a_visitor_message_is_stored_then_echoed_with_its_client_id(chat_inbox):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)

    await socket.send_json_to({"type": "message", "body": "Hello from the socket", "client_id": "c-1"})
    echo = await socket.receive_json_from(timeout=5)

    assert echo["type"] == "message"
    assert (echo["message"]["client_id"], echo["message"]["direction"]) == ("c-1", "in")
    entry = await database_sync_to_async(TimelineEntry.objects.get)(pk=echo["message"]["id"])
    assert (entry.body, entry.channel, entry.direction) == ("Hello from the socket", Channel.CHAT, Direction.INBOUND)
    await socket.disconnect()


async def test_a_resent_client_id_is_confirmed_again_and_stored_once(chat_inbox):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)

    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    first = await socket.receive_json_from(timeout=5)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    second = await socket.receive_json_from(timeout=5)

    assert first["message"]["id"] == second["message"]["id"]
    assert await database_sync_to_async(TimelineEntry.objects.filter(kind="message").count)() == 1
    await socket.disconnect()


async def test_an_agent_reply_through_the_send_path_arrives_and_is_delivered(chat_inbox, tenant, agent, celery_eager):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await socket.receive_json_from(timeout=5)

    entry = await database_sync_to_async(reply)(tenant, agent, "How can I help?")
    pushed = await socket.receive_json_from(timeout=5)

    assert pushed["type"] == "message"
    assert (pushed["message"]["id"], pushed["message"]["body"], pushed["message"]["direction"]) == (
        entry.pk, "How can I help?", "out",
    )
    await frames(socket, wait=0.5)
    await database_sync_to_async(entry.refresh_from_db)()
    assert (entry.delivery_status, entry.external_id) == (DeliveryStatus.DELIVERED, f"chat-{entry.pk}")
    await socket.disconnect()


async def test_an_agent_reply_reaches_the_socket_through_a_real_worker(chat_inbox, tenant, agent, celery_worker_live):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await socket.receive_json_from(timeout=5)

    entry = await database_sync_to_async(reply)(tenant, agent, "From the worker")
    pushed = await socket.receive_json_from(timeout=15)

    assert pushed["message"]["id"] == entry.pk
    await socket.disconnect()


async def test_reading_over_the_socket_marks_the_reply_read(chat_inbox, tenant, agent, celery_eager):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await socket.receive_json_from(timeout=5)
    entry = await database_sync_to_async(reply)(tenant, agent)
    await socket.receive_json_from(timeout=5)

    await socket.send_json_to({"type": "read", "up_to": entry.pk})
    await frames(socket, wait=0.5)

    await database_sync_to_async(entry.refresh_from_db)()
    assert entry.delivery_status == DeliveryStatus.READ
    again = await connect(chat_inbox, token)
    await socket.disconnect()
    await again.disconnect()


async def test_the_hello_counts_unread_agent_messages(chat_inbox, tenant, agent, celery_eager):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await socket.receive_json_from(timeout=5)
    await socket.disconnect()
    await database_sync_to_async(reply)(tenant, agent)

    later = await visitor_socket(chat_inbox, token)
    await later.connect()
    hello = await later.receive_json_from(timeout=5)

    assert hello == {"type": "hello", "unread": 1, "agents_online": False}
    await later.disconnect()


async def test_a_handshake_from_another_origin_is_closed_4403(chat_inbox):
    token = await database_sync_to_async(new_visitor)(chat_inbox)

    assert await close_code(await visitor_socket(chat_inbox, token, origin="https://evil.example")) == 4403
    assert await close_code(await visitor_socket(chat_inbox, token, origin="")) == 4403


async def test_an_unknown_token_is_closed_4401(chat_inbox):
    assert await close_code(await visitor_socket(chat_inbox, "z" * 32)) == 4401


async def test_a_token_of_another_tenants_inbox_is_closed_4401(chat_inbox, other_chat_inbox):
    token = await database_sync_to_async(new_visitor)(chat_inbox)

    assert await close_code(await visitor_socket(other_chat_inbox, token)) == 4401


async def test_the_workspace_socket_still_refuses_foreign_origins(chat_inbox):
    socket = WebsocketCommunicator(application, "/ws/workspace/", headers=[(b"origin", SITE.encode())])

    connected, _ = await socket.connect()

    assert not connected


async def test_bad_frames_get_errors_not_a_closed_socket(chat_inbox):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)

    await socket.send_to(text_data="{nope")
    await socket.send_json_to({"type": "message", "body": "", "client_id": "c-1"})
    await socket.send_json_to({"type": "message", "body": "x" * 5001, "client_id": "c-2"})
    await socket.send_json_to({"type": "dance"})
    await socket.send_json_to({"type": "ping"})
    got = await frames(socket)

    assert [f["type"] for f in got] == ["error", "error", "error", "error", "pong"]
    assert (got[1]["client_id"], got[2]["client_id"]) == ("c-1", "c-2")
    assert "5000" in got[2]["detail"]
    await socket.disconnect()


async def test_sending_too_fast_over_the_socket_is_refused_with_retry_after(tenant):
    from tests.channels.web_chat.conftest import chat_inbox_for

    inbox = await database_sync_to_async(chat_inbox_for)(tenant, name="Strict", rate_limit_per_minute=2)
    token = await database_sync_to_async(new_visitor)(inbox)
    socket = await connect(inbox, token)

    for n in range(3):
        await socket.send_json_to({"type": "message", "body": f"m{n}", "client_id": f"c-{n}"})
    got = await frames(socket)

    assert [f["type"] for f in got] == ["message", "message", "error"]
    assert got[2]["client_id"] == "c-2" and got[2]["retry_after"] >= 1
    await socket.disconnect()


async def test_agent_typing_reaches_the_visitor(chat_inbox, tenant, agent):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await socket.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await socket.receive_json_from(timeout=5)
    conversation = await database_sync_to_async(Conversation.objects.get)()

    told = await database_sync_to_async(agent_typing)(tenant=tenant, conversation=conversation, membership=agent.membership)

    assert told is True
    assert await socket.receive_json_from(timeout=5) == {"type": "typing", "name": agent.membership.name}
    await socket.disconnect()


async def test_visitor_typing_shows_in_the_open_conversation_then_fades(chat_inbox, tenant, agent, settings):
    import conversations.consumers as workspace_consumers

    token = await database_sync_to_async(new_visitor)(chat_inbox, name="Jane")
    visitor = await connect(chat_inbox, token)
    await visitor.send_json_to({"type": "message", "body": "Hello", "client_id": "c-1"})
    await visitor.receive_json_from(timeout=5)
    conversation = await database_sync_to_async(Conversation.objects.get)()
    workspace = WebsocketCommunicator(WorkspaceConsumer.as_asgi(), "/ws/workspace/")
    workspace.scope["user"], workspace.scope["session"] = agent, {}
    assert (await workspace.connect())[0]
    await workspace.receive_json_from(timeout=5)
    await workspace.send_json_to({"type": "viewing", "conversation_id": conversation.pk})
    await frames(workspace, wait=0.5)
    workspace_consumers.VISITOR_TYPING_SECONDS = 0.5

    try:
        await visitor.send_json_to({"type": "typing"})
        shown = await workspace.receive_json_from(timeout=5)
        faded = await workspace.receive_json_from(timeout=5)
    finally:
        workspace_consumers.VISITOR_TYPING_SECONDS = 5

    assert (shown["type"], shown["state"], shown["name"], shown["conversation_id"]) == (
        "viewer", "typing", "Jane", conversation.pk,
    )
    assert faded["state"] == "left"
    await workspace.disconnect()
    await visitor.disconnect()


async def test_visitors_hear_when_an_agent_comes_online(chat_inbox, tenant, agent):
    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)
    await database_sync_to_async(AgentProfile.objects.create)(tenant=tenant, membership=agent.membership)

    await database_sync_to_async(agent_set_presence)(tenant=tenant, membership=agent.membership, presence=Presence.ONLINE)

    assert await socket.receive_json_from(timeout=5) == {"type": "presence", "agents_online": True}
    await socket.disconnect()


async def test_a_file_sent_by_http_also_arrives_on_the_socket(chat_inbox):
    from django.core.files.uploadedfile import SimpleUploadedFile

    token = await database_sync_to_async(new_visitor)(chat_inbox)
    socket = await connect(chat_inbox, token)

    def upload():
        return Client().post(
            f"/chat/{chat_inbox.key}/messages",
            {"file": SimpleUploadedFile("a.txt", b"hello", content_type="text/plain"), "client_id": "f-1"},
            HTTP_ORIGIN=SITE, HTTP_AUTHORIZATION=f"Visitor {token}",
        )

    response = await database_sync_to_async(upload)()
    pushed = await socket.receive_json_from(timeout=5)

    assert response.status_code == 201
    assert pushed["message"]["id"] == json.loads(response.content)["message"]["id"]
    assert pushed["message"]["attachments"][0]["name"] == "a.txt"
    await socket.disconnect()
