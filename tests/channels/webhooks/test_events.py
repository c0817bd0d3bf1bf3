from __future__ import annotations

import json

import pytest
from django.db import transaction

from channels_app.models import WebhookDelivery, WebhookEvent
from channels_app.webhooks.events import DOMAIN_TO_WEBHOOK, MAPPED_DOMAIN_EVENTS
from conversations.services import conversation_set_status
from omnidesk.lib.events import EVENT_SCHEMAS, emit_on_commit
from tests.channels.webhooks.conftest import customer_writes, make_subscription


def sent_types(receiver) -> list[str]:
    return sorted(r.headers["X-Omnidesk-Event"] for r in receiver.requests)


def test_every_mapped_domain_event_exists_and_becomes_a_declared_webhook_event():
    assert set(DOMAIN_TO_WEBHOOK) <= set(EVENT_SCHEMAS)
    assert set(MAPPED_DOMAIN_EVENTS) == set(DOMAIN_TO_WEBHOOK)
    assert set(DOMAIN_TO_WEBHOOK.values()) <= set(WebhookEvent.values)
    assert DOMAIN_TO_WEBHOOK["conversation.opened"] == "conversation.created"


def test_every_webhook_event_has_a_source():
    assert set(WebhookEvent.values) == set(DOMAIN_TO_WEBHOOK.values())


def test_an_inbound_message_sends_only_the_subscribed_events(
    tenant, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url, events=["conversation.created", "message.created"])

    with django_capture_on_commit_callbacks(execute=True):
        result = customer_writes(tenant)

    assert sent_types(receiver) == ["conversation.created", "message.created"]
    created = next(r for r in receiver.requests if r.headers["X-Omnidesk-Event"] == "conversation.created").json()
    conversation = result.conversation
    assert set(created) == {"id", "type", "created_at", "tenant", "data"}
    assert (created["type"], created["tenant"]) == ("conversation.created", "acme")
    assert created["data"]["conversation"] == {
        "id": conversation.pk, "number": conversation.number, "status": "open", "priority": conversation.priority,
        "assignee_id": conversation.assignee_id, "team_id": conversation.team_id,
        "customer_id": conversation.customer_id, "channel": "api",
    }
    assert (created["data"]["customer_id"], created["data"]["channel"]) == (conversation.customer_id, "api")


def test_the_body_id_is_the_delivery_header(tenant, receiver, celery_eager, django_capture_on_commit_callbacks):
    make_subscription(tenant, receiver.url, events=["message.created"])

    with django_capture_on_commit_callbacks(execute=True):
        result = customer_writes(tenant)

    [request] = receiver.requests
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    assert request.json()["id"] == request.headers["X-Omnidesk-Delivery"] == str(delivery.uuid)
    assert request.json()["data"]["entry_id"] == result.entry.pk
    assert request.body.decode() == delivery.body


def test_a_status_change_is_sent_with_old_and_new_status(
    tenant, agent, receiver, celery_eager, django_capture_on_commit_callbacks
):
    conversation = customer_writes(tenant).conversation
    make_subscription(tenant, receiver.url, events=["conversation.status_changed"])

    with django_capture_on_commit_callbacks(execute=True):
        conversation_set_status(tenant=tenant, conversation=conversation, status="resolved", actor=agent)

    [request] = receiver.requests
    data = request.json()["data"]
    assert (data["old_status"], data["new_status"], data["conversation"]["status"]) == ("open", "resolved", "resolved")


def test_sla_events_do_not_name_who_inside_the_tenant_was_paged(
    tenant, agent, receiver, celery_eager, django_capture_on_commit_callbacks
):
    conversation = customer_writes(tenant).conversation
    make_subscription(tenant, receiver.url, events=["sla.at_risk"])

    with django_capture_on_commit_callbacks(execute=True):
        emit_on_commit(
            "sla.at_risk", tenant_id=tenant.pk, conversation_id=conversation.pk, number=conversation.number,
            metric="first_response", due_at="2026-01-01T00:00:00+00:00", policy_id=1, assignee_id=agent.pk,
            team_id=None, notify_user_ids=[agent.pk],
        )

    [request] = receiver.requests
    assert "notify_user_ids" not in request.json()["data"]
    assert request.json()["data"]["metric"] == "first_response"


def test_an_inactive_subscription_gets_nothing(tenant, receiver, celery_eager, django_capture_on_commit_callbacks):
    make_subscription(tenant, receiver.url, is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant)

    assert receiver.requests == []
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()


def test_one_tenants_events_never_reach_another_tenants_subscription(
    tenant, other_tenant, receiver, celery_eager, django_capture_on_commit_callbacks
):
    make_subscription(tenant, receiver.url + "/acme")
    make_subscription(other_tenant, receiver.url + "/globex")

    with django_capture_on_commit_callbacks(execute=True):
        result = customer_writes(other_tenant, sender="g-1")

    assert receiver.requests
    assert {r.path for r in receiver.requests} == {"/omnidesk/events/globex"}
    assert {r.json()["tenant"] for r in receiver.requests} == {"globex"}
    assert {r.json()["data"]["conversation"]["id"] for r in receiver.requests if "conversation" in r.json()["data"]} == {
        result.conversation.pk
    }
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_message_is_sent(tenant, receiver, celery_eager):
    make_subscription(tenant, receiver.url, events=["message.created"])

    with transaction.atomic():
        customer_writes(tenant)

    assert sent_types(receiver) == ["message.created"]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_message_sends_nothing(tenant, receiver, celery_eager):
    make_subscription(tenant, receiver.url)

    with pytest.raises(RuntimeError), transaction.atomic():
        customer_writes(tenant)
        raise RuntimeError("the rest of the request failed")

    assert receiver.requests == []
    assert not WebhookDelivery.objects.for_tenant(tenant).exists()


def test_bodies_are_compact_json(tenant, receiver, celery_eager, django_capture_on_commit_callbacks):
    make_subscription(tenant, receiver.url, events=["customer.created"])

    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(tenant)

    [request] = receiver.requests
    assert json.loads(request.body)["data"] == {"customer_id": request.json()["data"]["customer_id"]}
    assert len(request.body) < 400
