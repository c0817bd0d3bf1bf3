"""Conversation numbers: 1, 2, 3… per tenant, never shared, never skipped, even under concurrency."""

from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.models import Conversation
from conversations.services import conversation_open
from customers.models import TenantCounter
from tests.conversations.conftest import run_in_threads
from tests.factories import CustomerFactory

THREADS = 8
PER_THREAD = 10


def test_it_numbers_conversations_one_two_three_per_tenant(tenant, other_tenant):
    customer = CustomerFactory(tenant=tenant)
    foreign = CustomerFactory(tenant=other_tenant)

    ours = [conversation_open(tenant=tenant, customer=customer, channel=Channel.SMS).number for _ in range(3)]
    theirs = [conversation_open(tenant=other_tenant, customer=foreign, channel=Channel.SMS).number for _ in range(2)]
    ours.append(conversation_open(tenant=tenant, customer=customer, channel=Channel.EMAIL).number)

    assert ours == [1, 2, 3, 4]
    assert theirs == [1, 2]


def test_it_shows_the_number_as_hash_number(tenant):
    conversation = conversation_open(tenant=tenant, customer=CustomerFactory(tenant=tenant), channel=Channel.SMS)
    assert str(conversation) == "#1"


@pytest.mark.django_db(transaction=True)
def test_it_hands_out_distinct_gapless_numbers_to_concurrent_openers(tenant):
    customer = CustomerFactory(tenant=tenant)

    def open_ten() -> list[int]:
        return [
            conversation_open(tenant=tenant, customer=customer, channel=Channel.SMS).number for _ in range(PER_THREAD)
        ]

    handed_out = [number for numbers in run_in_threads(open_ten, THREADS) for number in numbers]

    stored = sorted(Conversation.objects.for_tenant(tenant).values_list("number", flat=True))
    assert sorted(handed_out) == stored == list(range(1, THREADS * PER_THREAD + 1))
    assert TenantCounter.objects.for_tenant(tenant).get(name="conversation").value == THREADS * PER_THREAD
