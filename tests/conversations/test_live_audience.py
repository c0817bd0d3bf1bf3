"""Who hears a conversation's event (conversations.live.audience_of)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.live import audience_of, group_everything, group_team, group_unassigned, group_user
from conversations.services import InboundMessage, conversation_assign, message_record_inbound
from omnidesk.lib.events import DomainEvent
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db


def test_an_event_that_names_its_owner_is_addressed_without_a_query(tenant):
    event = DomainEvent("message.created", tenant.pk, {"conversation_id": 1, "number": 1}, owner=(7, 3))
    with CaptureQueriesContext(connection) as queries:
        groups = audience_of(event)
    assert len(queries) == 0
    assert groups == [group_everything(tenant.pk), group_user(tenant.pk, 7), group_team(tenant.pk, 3)]


def test_conversation_events_carry_the_owner_they_were_stored_with(
    tenant, captured_events, django_capture_on_commit_callbacks
):
    team = TeamFactory(tenant=tenant)
    agent = MembershipFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        result = message_record_inbound(tenant=tenant, inbox=None, message=InboundMessage(
            channel="api", sender_kind="external", sender_value="u-1", body="Hello", external_id="m-1",
        ))
    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(tenant=tenant, conversation=result.conversation, assignee=agent.user, team=team)

    created = next(event for event in captured_events if event.name == "message.created")
    assigned = next(event for event in captured_events if event.name == "conversation.assigned")
    assert (created.owner, assigned.owner) == ((None, None), (agent.user_id, team.pk))
    assert group_unassigned(tenant.pk) in audience_of(created)
    assert audience_of(assigned) == [
        group_everything(tenant.pk), group_user(tenant.pk, agent.user_id), group_team(tenant.pk, team.pk)
    ]
