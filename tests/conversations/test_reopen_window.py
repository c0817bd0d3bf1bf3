"""A resolved conversation reopens when the customer writes within the tenant's reopen window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import InboundMessage, conversation_set_status, message_record_inbound
from tests.factories import InboxFactory, TenantFactory

PHONE = "+12025550143"


def sms(body: str = "Hi") -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value=PHONE, body=body)


@pytest.fixture
def resolved(tenant, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    return conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.RESOLVED, actor=agent)


def resolved_ago(conversation: Conversation, delta: timedelta) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(resolved_at=timezone.now() - delta)


def test_the_default_reopen_window_is_seven_days(tenant):
    assert tenant.reopen_window_days == 7


def test_it_reopens_a_conversation_resolved_within_the_window(tenant, sms_inbox, resolved):
    resolved_ago(resolved, timedelta(days=6))

    result = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("it broke again"))

    conversation = Conversation.objects.get(pk=resolved.pk)
    assert result.continuity == "reopened"
    assert result.conversation.pk == resolved.pk
    assert (conversation.status, conversation.reopen_count, conversation.resolved_at) == (Status.OPEN, 1, None)
    assert Conversation.objects.count() == 1


def test_it_records_the_reopening_on_the_timeline(tenant, sms_inbox, resolved):
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("it broke again"))

    last = TimelineEntry.objects.filter(conversation=resolved, event="status_changed").last()
    assert last.data == {"from": "resolved", "to": "open", "reason": "customer_replied"}
    assert last.author is None


def test_it_records_a_reopen_analytics_event(tenant, sms_inbox, resolved):
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("it broke again"))

    reopen = AnalyticsEvent.objects.get(name=EventName.REOPEN)
    assert reopen.conversation_id == resolved.pk
    # Resolved a moment ago: well inside the 7-day cross-channel window.
    assert reopen.data == {"reason": "customer_replied", "within_cross_channel_window": True}


def test_it_emits_conversation_reopened_after_commit(
    tenant, sms_inbox, resolved, django_capture_on_commit_callbacks, captured_events
):
    with django_capture_on_commit_callbacks(execute=True):
        message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("it broke again"))

    reopened = [e.payload for e in captured_events if e.name == "conversation.reopened"]
    assert reopened == [{"conversation_id": resolved.pk, "number": 1, "customer_id": resolved.customer_id}]


def test_it_opens_a_new_conversation_after_the_window(tenant, sms_inbox, resolved):
    resolved_ago(resolved, timedelta(days=7, minutes=1))

    result = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("new question"))

    assert result.continuity == "opened"
    assert result.conversation.pk != resolved.pk
    assert result.conversation.number == 2
    assert result.conversation.customer_id == resolved.customer_id
    old = Conversation.objects.get(pk=resolved.pk)
    assert (old.status, old.reopen_count) == (Status.RESOLVED, 0)


def test_it_uses_the_tenants_own_reopen_window(agent):
    strict = TenantFactory(slug="strict", reopen_window_days=1)
    inbox = InboxFactory(tenant=strict, channel=Channel.SMS, name="SMS")
    first = message_record_inbound(tenant=strict, inbox=inbox, message=sms())
    Conversation.objects.filter(pk=first.conversation.pk).update(
        status=Status.RESOLVED, resolved_at=timezone.now() - timedelta(days=2)
    )

    result = message_record_inbound(tenant=strict, inbox=inbox, message=sms("again"))

    assert result.continuity == "opened"
    assert result.conversation.number == 2


def test_it_reopens_within_a_one_day_window(agent):
    strict = TenantFactory(slug="strict", reopen_window_days=1)
    inbox = InboxFactory(tenant=strict, channel=Channel.SMS, name="SMS")
    first = message_record_inbound(tenant=strict, inbox=inbox, message=sms())
    Conversation.objects.filter(pk=first.conversation.pk).update(
        status=Status.RESOLVED, resolved_at=timezone.now() - timedelta(hours=20)
    )

    result = message_record_inbound(tenant=strict, inbox=inbox, message=sms("again"))

    assert (result.continuity, result.conversation.pk) == ("reopened", first.conversation.pk)


def test_it_measures_the_time_to_resolution(tenant, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    Conversation.objects.filter(pk=first.conversation.pk).update(created_at=timezone.now() - timedelta(hours=2))

    conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.RESOLVED, actor=agent)

    resolution = AnalyticsEvent.objects.get(name=EventName.RESOLUTION)
    assert resolution.conversation_id == first.conversation.pk
    assert 7200 <= resolution.value_seconds < 7260
