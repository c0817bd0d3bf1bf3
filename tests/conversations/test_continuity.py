"""The continuity rule: one customer, one running conversation, whatever the channel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.models import Conversation, EntryKind, Status, TimelineEntry
from conversations.services import (
    InboundMessage,
    conversation_set_status,
    message_record_inbound,
    message_record_outbound,
)
from customers.models import Customer
from tests.conversations.conftest import JANE_EMAIL, JANE_PHONE, run_in_threads


def sms(body: str = "Hi, my order is late") -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value=JANE_PHONE, body=body)


def email(body: str = "Following up by mail") -> InboundMessage:
    return InboundMessage(channel=Channel.EMAIL, sender_kind="email", sender_value=JANE_EMAIL, body=body)


def switch_events(conversation: Conversation) -> list[dict]:
    return list(
        TimelineEntry.objects.filter(conversation=conversation, kind=EntryKind.EVENT, event="channel_switched")
        .values_list("data", flat=True)
    )


def status_events(conversation: Conversation) -> list[dict]:
    return list(
        TimelineEntry.objects.filter(conversation=conversation, event="status_changed").values_list("data", flat=True)
    )


@pytest.fixture
def sms_then_email(tenant, jane, sms_inbox, email_inbox, django_capture_on_commit_callbacks, captured_events):
    with django_capture_on_commit_callbacks(execute=True):
        first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    with django_capture_on_commit_callbacks(execute=True):
        second = message_record_inbound(tenant=tenant, inbox=email_inbox, message=email())
    return first, second


def test_it_puts_an_sms_and_a_later_email_of_one_customer_in_one_conversation(sms_then_email, jane):
    first, second = sms_then_email
    assert second.conversation.pk == first.conversation.pk
    assert (first.continuity, second.continuity) == ("opened", "joined")
    assert Conversation.objects.filter(customer=jane).count() == 1


def test_it_records_the_channel_switch_on_the_timeline(sms_then_email):
    _, second = sms_then_email
    assert switch_events(second.conversation) == [{"from": "sms", "to": "email"}]


def test_it_moves_last_channel_and_keeps_first_channel(sms_then_email):
    _, second = sms_then_email
    conversation = Conversation.objects.get(pk=second.conversation.pk)
    assert (conversation.first_channel, conversation.last_channel) == (Channel.SMS, Channel.EMAIL)


def test_it_records_a_channel_switch_analytics_event(sms_then_email):
    _, second = sms_then_email
    event = AnalyticsEvent.objects.get(name=EventName.CHANNEL_SWITCH)
    assert event.conversation_id == second.conversation.pk
    assert event.channel == Channel.EMAIL
    assert event.data == {"from": "sms", "to": "email"}


def test_it_emits_a_channel_switched_domain_event(sms_then_email, captured_events, tenant):
    _, second = sms_then_email
    switched = [e for e in captured_events if e.name == "conversation.channel_switched"]
    assert [(e.tenant_id, e.payload) for e in switched] == [
        (
            tenant.pk,
            {
                "conversation_id": second.conversation.pk,
                "number": second.conversation.number,
                "from_channel": "sms",
                "to_channel": "email",
            },
        )
    ]


def test_it_records_no_switch_for_two_messages_on_the_same_channel(tenant, jane, sms_inbox):
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("one"))
    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("two"))
    assert second.continuity == "joined"
    assert switch_events(second.conversation) == []
    assert not AnalyticsEvent.objects.filter(name=EventName.CHANNEL_SWITCH).exists()


def test_it_opens_a_pending_conversation_when_the_customer_writes(tenant, jane, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.PENDING, actor=agent)

    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("any news?"))

    assert second.conversation.pk == first.conversation.pk
    assert Conversation.objects.get(pk=first.conversation.pk).status == Status.OPEN
    assert status_events(first.conversation)[-1] == {"from": "pending", "to": "open", "reason": "customer_replied"}


def test_it_wakes_a_snoozed_conversation_when_the_customer_writes(tenant, jane, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    conversation_set_status(
        tenant=tenant, conversation=first.conversation, status=Status.SNOOZED, actor=agent,
        snoozed_until=timezone.now() + timedelta(days=2),
    )

    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("hello?"))

    conversation = Conversation.objects.get(pk=first.conversation.pk)
    assert second.continuity == "joined"
    assert (conversation.status, conversation.snoozed_until) == (Status.OPEN, None)
    assert status_events(conversation)[-1] == {"from": "snoozed", "to": "open", "reason": "customer_replied"}


def test_it_never_reuses_a_closed_conversation(tenant, jane, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    # Resolved a minute ago (well inside the reopen window), then closed for good.
    conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.RESOLVED, actor=agent)
    conversation_set_status(tenant=tenant, conversation=first.conversation, status=Status.CLOSED, actor=agent)

    second = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("new problem"))

    assert second.continuity == "opened"
    assert second.conversation.pk != first.conversation.pk
    assert second.conversation.number == 2
    assert Conversation.objects.get(pk=first.conversation.pk).status == Status.CLOSED


def test_it_records_the_switch_when_an_agent_replies_on_another_channel(tenant, jane, sms_inbox, email_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    reply = message_record_outbound(
        tenant=tenant, conversation=first.conversation, author=agent, channel=Channel.EMAIL, inbox=email_inbox,
        body="Let's continue by e-mail.",
    )

    switch = TimelineEntry.objects.get(conversation=first.conversation, event="channel_switched")
    assert (switch.data, switch.author) == ({"from": "sms", "to": "email"}, agent)
    assert Conversation.objects.get(pk=first.conversation.pk).last_channel == Channel.EMAIL
    assert reply.channel == Channel.EMAIL
    assert AnalyticsEvent.objects.filter(name=EventName.CHANNEL_SWITCH, conversation=first.conversation).count() == 1


def test_it_never_puts_two_customers_in_one_conversation(tenant, jane, sms_inbox):
    janes = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    bobs = message_record_inbound(
        tenant=tenant, inbox=sms_inbox,
        message=InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="+12025550199", body="Hi"),
    )
    assert bobs.conversation.pk != janes.conversation.pk
    assert bobs.conversation.customer_id != janes.conversation.customer_id
    assert (janes.conversation.number, bobs.conversation.number) == (1, 2)


def test_it_sets_waiting_since_on_the_first_inbound_and_keeps_it_on_the_second(tenant, jane, sms_inbox):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    waiting_since = Conversation.objects.get(pk=first.conversation.pk).waiting_since

    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("still waiting"))

    conversation = Conversation.objects.get(pk=first.conversation.pk)
    assert waiting_since is not None
    assert conversation.waiting_since == waiting_since
    assert conversation.last_customer_message_at > waiting_since


def test_it_clears_waiting_since_when_an_agent_replies(tenant, jane, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())

    message_record_outbound(tenant=tenant, conversation=first.conversation, author=agent, channel=Channel.SMS, body="On it")

    conversation = Conversation.objects.get(pk=first.conversation.pk)
    assert conversation.waiting_since is None
    assert conversation.last_agent_message_at is not None


def test_it_sets_first_response_at_once_and_measures_first_response_and_replies(tenant, jane, sms_inbox, agent):
    first = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms())
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Conversation.objects.filter(pk=first.conversation.pk).update(created_at=an_hour_ago, waiting_since=an_hour_ago)

    first_reply = message_record_outbound(
        tenant=tenant, conversation=first.conversation, author=agent, channel=Channel.SMS, body="On it"
    )
    message_record_inbound(tenant=tenant, inbox=sms_inbox, message=sms("thanks, and also…"))
    message_record_outbound(tenant=tenant, conversation=first.conversation, author=agent, channel=Channel.SMS, body="Sure")

    conversation = Conversation.objects.get(pk=first.conversation.pk)
    assert conversation.first_response_at == first_reply.created_at
    first_response = AnalyticsEvent.objects.get(name=EventName.FIRST_RESPONSE)
    assert 3600 <= first_response.value_seconds < 3660
    assert first_response.agent_id_snapshot == agent.pk
    replies = sorted(AnalyticsEvent.objects.filter(name=EventName.REPLY).values_list("value_seconds", flat=True))
    assert len(replies) == 2
    assert 0 <= replies[0] < 60
    assert 3600 <= replies[1] < 3660


@pytest.mark.django_db(transaction=True)
def test_it_opens_one_conversation_for_simultaneous_first_messages_of_a_new_customer(tenant, sms_inbox):
    counter = iter(range(6))

    def write() -> str:
        message = InboundMessage(
            channel=Channel.SMS, sender_kind="phone", sender_value="+12025550177", body="Hello?",
            external_id=f"SM-burst-{next(counter)}",
        )
        return message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).continuity

    continuities = run_in_threads(write, 6)

    assert sorted(continuities) == ["joined"] * 5 + ["opened"]
    assert Customer.objects.for_tenant(tenant).count() == 1
    assert Conversation.objects.for_tenant(tenant).count() == 1
    assert TimelineEntry.objects.for_tenant(tenant).filter(kind=EntryKind.MESSAGE).count() == 6
