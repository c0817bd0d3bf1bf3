from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from channels_app.models import Channel
from conversations.models import Conversation, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.models import Role
from routing.models import AgentProfile, AgentSkill, Presence, RoutingRule, Skill, Team
from tests.factories import MembershipFactory

_numbers = itertools.count(100)

SENDER_KIND = {Channel.SMS: "phone", Channel.VOICE: "phone", Channel.EMAIL: "email", Channel.CHAT: "chat_visitor"}


def make_agent(
    tenant, team: Team | None, name: str, *, capacity: dict[str, int] | None = None, presence: str = Presence.ONLINE,
    skills: tuple[Skill, ...] = (), last_assigned_at: datetime | None = None,
) -> AgentProfile:
    membership = MembershipFactory(tenant=tenant, role=Role.AGENT, display_name=name, user__email=f"{name.lower()}@{tenant.slug}.test")
    if team is not None:
        team.members.add(membership)
    profile = AgentProfile.objects.create(
        tenant=tenant, membership=membership, capacity=capacity if capacity is not None else {"sms": 2, "email": 5},
        presence=presence, last_assigned_at=last_assigned_at,
    )
    for skill in skills:
        AgentSkill.objects.create(tenant=tenant, agent=profile, skill=skill)
    return profile


def incoming(tenant, body: str = "Hello", *, channel: str = Channel.SMS, sender: str | None = None, inbox=None) -> Conversation:
    """A customer writes in: a stored conversation and first message, exactly as a webhook leaves them."""
    n = next(_numbers)
    if sender is None:
        sender = {"phone": f"+1202555{n:04d}", "email": f"customer{n}@example.org", "chat_visitor": f"visitor-{n}"}[SENDER_KIND[channel]]
    message = InboundMessage(channel=channel, sender_kind=SENDER_KIND[channel], sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def explanations(conversation: Conversation) -> list[str]:
    return [
        entry.data["explanation"]
        for entry in TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, event__in=["routed", "queued", "requeued", "offer_unanswered"])
        .order_by("created_at", "id")
    ]


@pytest.fixture
def support(tenant):
    """A team that gets everything no earlier rule takes."""
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="catch-all", position=1000, set_team=team)
    return team


def burst(slug: str, *, agents: int, capacity: int, conversations: int, seed: int):
    """A tenant with a team of online agents and open SMS conversations; each conversation id appears
    twice, shuffled, so several threads race for every one. Returns (tenant, work)."""
    import random

    from customers.models import Customer
    from tests.factories import TenantFactory

    tenant = TenantFactory(slug=slug)
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="all", set_team=team)
    for i in range(agents):
        make_agent(tenant, team, f"Agent{i}", capacity={"sms": capacity})
    customers = Customer.objects.bulk_create([Customer(tenant=tenant, name=f"C{i}") for i in range(conversations)])
    created = Conversation.objects.bulk_create([
        Conversation(tenant=tenant, number=i + 1, customer=customer, first_channel=Channel.SMS, last_channel=Channel.SMS)
        for i, customer in enumerate(customers)
    ])
    work = [c.pk for c in created] * 2
    random.Random(seed).shuffle(work)
    return tenant, work


def run_in_threads(route, tenant, work: list[int], threads: int) -> list[BaseException]:
    """route(tenant, ids) on interleaved shares of `work` from several threads; the errors they raised."""
    import threading

    from django.db import close_old_connections, connection

    errors: list[BaseException] = []

    def worker(ids: list[int]) -> None:
        try:
            route(tenant, ids)
        except BaseException as exc:  # handed to the main thread, which fails the test with it
            errors.append(exc)
        finally:
            connection.close()

    running = [threading.Thread(target=worker, args=(work[i::threads],)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    close_old_connections()
    return errors
