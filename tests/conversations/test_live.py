"""Live updates through Channels on the real Redis layer: who hears what."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from conversations.consumers import NOT_SIGNED_IN, WorkspaceConsumer
from conversations.services import InboundMessage, conversation_assign, message_record_inbound
from customers.middleware import SESSION_KEY
from routing.models import AgentProfile, Presence
from tests.factories import InboxFactory, MembershipFactory, TeamFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect(user, tenant_id: int | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(WorkspaceConsumer.as_asgi(), "/ws/workspace/")
    communicator.scope["user"] = user
    communicator.scope["session"] = {SESSION_KEY: tenant_id} if tenant_id else {}
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


async def events_of(communicator: WebsocketCommunicator, wait: float = 1.0) -> list[dict]:
    """Everything the socket received until it stayed quiet for `wait` seconds."""
    seen = []
    # receive_nothing, unlike a timed-out receive, leaves the consumer running.
    while not await communicator.receive_nothing(timeout=wait):
        seen.append(await communicator.receive_json_from())
    return seen


def sms_arrives(tenant, inbox, sender="+12025550143", body="Hello"):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


async def test_an_agent_hears_of_a_new_message_in_an_unassigned_conversation(tenant, agent):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    socket = await connect(agent)

    result = await database_sync_to_async(sms_arrives)(tenant, inbox)

    names = [(e["type"], e.get("conversation_id")) for e in await events_of(socket)]
    assert ("message.created", result.conversation.pk) in names
    assert ("conversation.opened", result.conversation.pk) in names
    await socket.disconnect()


async def test_a_member_of_another_tenant_hears_nothing(tenant, outsider):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    socket = await connect(outsider)

    await database_sync_to_async(sms_arrives)(tenant, inbox)

    assert await events_of(socket) == []
    await socket.disconnect()


async def test_an_agent_does_not_hear_of_another_teams_conversation_but_a_supervisor_does(
    tenant, agent, teammate, supervisor
):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    billing = await database_sync_to_async(TeamFactory)(tenant=tenant, name="Billing")
    await database_sync_to_async(billing.members.add)(teammate.membership)
    result = await database_sync_to_async(sms_arrives)(tenant, inbox)
    await database_sync_to_async(conversation_assign)(
        tenant=tenant, conversation=result.conversation, assignee=teammate, team=billing
    )
    outside = await connect(agent)
    boss = await connect(supervisor)

    await database_sync_to_async(sms_arrives)(tenant, inbox, body="Still there?")

    assert [e for e in await events_of(outside) if e["type"] == "message.created"] == []
    assert [e["type"] for e in await events_of(boss) if e["type"] == "message.created"] == ["message.created"]
    await outside.disconnect()
    await boss.disconnect()


async def test_the_assignee_is_told_when_a_conversation_is_assigned_to_them(tenant, agent, supervisor):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    result = await database_sync_to_async(sms_arrives)(tenant, inbox)
    socket = await connect(agent)

    await database_sync_to_async(conversation_assign)(tenant=tenant, conversation=result.conversation, assignee=agent)

    assigned = [e for e in await events_of(socket) if e["type"] == "conversation.assigned"]
    assert [(e["conversation_id"], e["assignee_id"]) for e in assigned] == [(result.conversation.pk, agent.pk)]
    await socket.disconnect()


async def test_an_agent_sets_their_presence_and_teammates_hear_it(tenant, agent, teammate):
    mine = await connect(agent)
    theirs = await connect(teammate)

    await mine.send_json_to({"type": "presence", "presence": "online"})

    heard = [e for e in await events_of(theirs) if e["type"] == "agent.presence_changed"]
    assert [(e["membership_id"], e["presence"]) for e in heard] == [(agent.membership.pk, "online")]
    profile = await database_sync_to_async(AgentProfile.objects.get)(membership=agent.membership)
    assert profile.presence == Presence.ONLINE
    await mine.disconnect()
    await theirs.disconnect()


async def test_a_user_with_seats_in_two_tenants_hears_only_the_tenant_they_work_in(tenant, other_tenant, agent):
    await database_sync_to_async(MembershipFactory)(tenant=other_tenant, user=agent)
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    socket = await connect(agent, tenant_id=other_tenant.pk)

    await database_sync_to_async(sms_arrives)(tenant, inbox)

    assert await events_of(socket) == []
    await socket.disconnect()


async def test_an_anonymous_socket_is_refused():
    from django.contrib.auth.models import AnonymousUser

    communicator = WebsocketCommunicator(WorkspaceConsumer.as_asgi(), "/ws/workspace/")
    communicator.scope["user"] = AnonymousUser()
    communicator.scope["session"] = {}

    connected, code = await communicator.connect()

    assert (connected, code) == (False, NOT_SIGNED_IN)


async def test_a_teammate_mentioned_in_a_note_hears_it_even_outside_the_conversations_team(tenant, agent, teammate, supervisor):
    from conversations.services import note_add

    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    billing = await database_sync_to_async(TeamFactory)(tenant=tenant, name="Billing")
    result = await database_sync_to_async(sms_arrives)(tenant, inbox)
    await database_sync_to_async(conversation_assign)(
        tenant=tenant, conversation=result.conversation, assignee=supervisor, team=billing
    )
    socket = await connect(teammate)

    await database_sync_to_async(note_add)(
        tenant=tenant, conversation=result.conversation, author=agent, body="@teammate please call them back"
    )

    heard = [(e["type"], e["notify_user_ids"]) for e in await events_of(socket)]
    assert heard == [("mention.created", [teammate.pk])]
    await socket.disconnect()


async def test_an_agent_sees_a_teammate_viewing_and_typing_in_the_same_conversation(tenant, agent, teammate):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    result = await database_sync_to_async(sms_arrives)(tenant, inbox)
    conversation_id = result.conversation.pk
    mine = await connect(agent)
    theirs = await connect(teammate)
    await mine.send_json_to({"type": "viewing", "conversation_id": conversation_id})
    await events_of(mine)

    await theirs.send_json_to({"type": "viewing", "conversation_id": conversation_id})
    await theirs.send_json_to({"type": "typing", "conversation_id": conversation_id})
    await theirs.disconnect()

    heard = [(e["user_id"], e["state"]) for e in await events_of(mine) if e["type"] == "viewer"]
    assert heard == [(teammate.pk, "viewing"), (teammate.pk, "typing"), (teammate.pk, "left")]
    await mine.disconnect()


async def test_nobody_can_watch_a_conversation_of_another_tenant(tenant, outsider):
    inbox = await database_sync_to_async(InboxFactory)(tenant=tenant, channel="sms", name="SMS")
    result = await database_sync_to_async(sms_arrives)(tenant, inbox)
    socket = await connect(outsider)

    await socket.send_json_to({"type": "viewing", "conversation_id": result.conversation.pk})

    assert await events_of(socket) == [{"type": "error", "detail": "No such conversation."}]
    await socket.disconnect()
