"""Domain events leave the services only after commit, carry their schema, and survive a bad subscriber."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import transaction

from channels_app.models import Channel
from conversations.models import Conversation, Status
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    message_record_inbound,
    message_record_outbound,
    note_add,
)
from customers.services import customer_merge, customer_resolve_identity
from omnidesk.lib.events import EVENT_SCHEMAS, DomainEvent, emit_on_commit, subscribe, unsubscribe
from tests.conversations.conftest import JANE_EMAIL, JANE_PHONE
from tests.factories import TeamFactory

# Declared in EVENT_SCHEMAS but emitted by no service yet.
# Emitted outside the conversations services; their schemas are checked where they are emitted
# (tests/routing/engine/test_events.py, tests/routing/sla/test_sla_engine.py).
NOT_EMITTED = {"conversation.updated", "agent.presence_changed", "agent.capacity_changed", "sla.at_risk", "sla.breached"}
# Send later and merging: tests/conversations/test_composer_events.py.
NOT_EMITTED |= {"message.scheduled", "message.cancelled", "message.failed", "conversation.merged"}
# Delivery ticks: tests/conversations/test_delivery_status_events.py.
NOT_EMITTED |= {"message.status_changed"}
# Survey answers: tests/channels/webhooks/test_csat_received.py.
NOT_EMITTED |= {"csat.received"}


def sms(body: str = "Hi") -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value=JANE_PHONE, body=body)


@pytest.fixture
def failing_handler():
    def explode(event: DomainEvent) -> None:
        raise RuntimeError("live updates are down")

    subscribe("message.created")(explode)
    yield explode
    unsubscribe(explode)


@pytest.fixture
def later_handler(failing_handler):
    """Names of the events seen by a handler subscribed after `failing_handler`."""
    received: list[str] = []

    def record(event: DomainEvent) -> None:
        received.append(event.name)

    subscribe("message.created")(record)
    yield received
    unsubscribe(record)


@pytest.mark.django_db(transaction=True)
def test_it_dispatches_events_only_when_the_transaction_commits(tenant, sms_inbox, captured_events):
    with transaction.atomic():
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
        seen_inside = list(captured_events)

    assert seen_inside == []
    assert [e.name for e in captured_events] == ["customer.created", "conversation.opened", "message.created"]


@pytest.mark.django_db(transaction=True)
def test_it_dispatches_nothing_when_the_transaction_rolls_back(tenant, sms_inbox, captured_events):
    with pytest.raises(RuntimeError), transaction.atomic():
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
        raise RuntimeError("the request failed after storing")

    assert captured_events == []
    assert not Conversation.objects.exists()


def test_it_drops_the_events_of_a_rolled_back_savepoint(
    tenant, sms_inbox, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
            raise RuntimeError("the request failed after storing")

    assert callbacks == []
    assert captured_events == []


def test_a_failing_handler_does_not_stop_the_others(
    tenant, sms_inbox, failing_handler, later_handler, django_capture_on_commit_callbacks, captured_events, caplog
):
    with caplog.at_level(logging.ERROR, logger="omnidesk.lib.events"):
        with django_capture_on_commit_callbacks(execute=True):
            message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    assert later_handler == ["message.created"]
    assert "message.created" in [e.name for e in captured_events]
    assert "explode failed for message.created" in caplog.text


def test_it_refuses_to_emit_an_unknown_event(tenant):
    with pytest.raises(ValueError, match="Unknown domain event"):
        emit_on_commit("conversation.exploded", tenant_id=tenant.pk, conversation_id=1)


def test_it_refuses_to_emit_an_event_missing_payload_keys(tenant):
    with pytest.raises(ValueError, match=r"missing \['entry_id', 'number'\]"):
        emit_on_commit("note.created", tenant_id=tenant.pk, conversation_id=1)


def test_it_refuses_to_subscribe_to_an_unknown_event():
    with pytest.raises(ValueError, match="Unknown domain event"):
        subscribe("conversation.exploded")(lambda event: None)


def test_every_event_the_services_emit_carries_its_schema_keys(
    tenant, sms_inbox, email_inbox, agent, supervisor, django_capture_on_commit_callbacks, captured_events
):
    team = TeamFactory(tenant=tenant, name="Billing")
    with django_capture_on_commit_callbacks(execute=True):
        first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
        conversation = first.conversation
        conversation_assign(tenant=tenant, conversation=conversation, assignee=agent, team=team, actor=supervisor)
        note_add(tenant=tenant, conversation=conversation, author=agent, body="Checking the courier, @supervisor")
        message_record_outbound(
            tenant=tenant, conversation=conversation, author=agent, channel=Channel.EMAIL, inbox=email_inbox,
            body="Moving to e-mail",
        )
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED, actor=agent)
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("It is still late"))
        by_mail, _ = customer_resolve_identity(tenant=tenant, kind="email", value=JANE_EMAIL)
        customer_merge(tenant=tenant, survivor=first.entry.customer, merged=by_mail, actor=supervisor)

    missing = {e.name: sorted(EVENT_SCHEMAS[e.name] - e.payload.keys()) for e in captured_events}
    assert missing == {name: [] for name in EVENT_SCHEMAS.keys() - NOT_EMITTED}
    assert {e.tenant_id for e in captured_events} == {tenant.pk}


def test_every_event_serializes_to_json_with_its_type(
    tenant, sms_inbox, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    decoded = [json.loads(json.dumps(e.as_dict())) for e in captured_events]
    assert [(d["type"], d["tenant_id"]) for d in decoded] == [
        ("customer.created", tenant.pk), ("conversation.opened", tenant.pk), ("message.created", tenant.pk),
    ]
