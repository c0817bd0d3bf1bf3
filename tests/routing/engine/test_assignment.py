from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from channels_app.models import Channel
from conversations.models import Conversation, Priority, Status
from conversations.services import conversation_assign, conversation_set_status
from routing import selectors
from routing.models import AgentProfile, AssignmentMethod, ConversationRouting, Presence, RoutingRule, Skill
from routing.services import (
    agent_requeue_offline,
    agent_set_presence,
    conversation_offer_unanswered,
    conversation_route,
    queue_drain,
)
from tests.routing.engine.conftest import explanations, incoming, make_agent


def busy_with(profile: AgentProfile, count: int, channel: str = Channel.SMS) -> None:
    for _ in range(count):
        conversation = incoming(profile.tenant, "already handled", channel=channel)
        conversation_assign(tenant=profile.tenant, conversation=conversation, assignee=profile.membership.user)


def route(conversation: Conversation) -> Conversation:
    conversation_route(tenant=conversation.tenant, conversation_id=conversation.pk)
    conversation.refresh_from_db()
    return conversation


def assignee_name(conversation: Conversation) -> str | None:
    conversation.refresh_from_db()
    return conversation.assignee.memberships.get().display_name if conversation.assignee else None


def test_least_busy_picks_the_agent_with_most_spare_capacity_on_the_channel(tenant, support):
    roomy = make_agent(tenant, support, "Roomy", capacity={"sms": 5})
    small = make_agent(tenant, support, "Small", capacity={"sms": 2})
    busy_with(roomy, 2)

    conversation = route(incoming(tenant))

    assert assignee_name(conversation) == "Roomy"
    assert explanations(conversation) == ["routed to Support by rule 'catch-all' (no conditions: matches everything); assigned to Roomy: least busy, 3/5 SMS"]
    assert small.membership.user.assigned_conversations.count() == 0


def test_round_robin_picks_who_waited_longest_since_their_last_assignment(tenant, support):
    support.assignment_method = AssignmentMethod.ROUND_ROBIN
    support.save()
    now = timezone.now()
    make_agent(tenant, support, "Recent", capacity={"sms": 5}, last_assigned_at=now - timedelta(minutes=5))
    loaded = make_agent(tenant, support, "Earlier", capacity={"sms": 5}, last_assigned_at=now - timedelta(hours=1))
    busy_with(loaded, 2)

    first, second, third = (route(incoming(tenant)) for _ in range(3))

    assert [assignee_name(c) for c in (first, second, third)] == ["Earlier", "Recent", "Earlier"]
    assert explanations(first) == ["routed to Support by rule 'catch-all' (no conditions: matches everything); assigned to Earlier: round robin, 3/5 SMS"]


def test_a_returning_customer_goes_back_to_their_last_agent(tenant, support):
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 5})
    make_agent(tenant, support, "Eve", capacity={"sms": 5})
    earlier = incoming(tenant, "First problem", sender="+12025550999")
    conversation_assign(tenant=tenant, conversation=earlier, assignee=dana.membership.user)
    conversation_set_status(tenant=tenant, conversation=earlier, status=Status.CLOSED)
    busy_with(dana, 2)

    conversation = route(incoming(tenant, "Second problem", sender="+12025550999"))

    assert assignee_name(conversation) == "Dana"
    assert "assigned to Dana: returning customer's last agent, 3/5 SMS" in explanations(conversation)[0]


def test_stickiness_gives_way_when_the_last_agent_is_full(tenant, support):
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 1})
    make_agent(tenant, support, "Eve", capacity={"sms": 5})
    earlier = incoming(tenant, "First problem", sender="+12025550998")
    conversation_assign(tenant=tenant, conversation=earlier, assignee=dana.membership.user)
    conversation_set_status(tenant=tenant, conversation=earlier, status=Status.CLOSED)
    busy_with(dana, 1)

    conversation = route(incoming(tenant, "Second problem", sender="+12025550998"))

    assert assignee_name(conversation) == "Eve"


def test_capacity_is_per_channel_and_zero_means_never(tenant, support):
    make_agent(tenant, support, "Dana", capacity={"sms": 1, "email": 0})

    first_sms, second_sms = route(incoming(tenant)), route(incoming(tenant))
    mail = route(incoming(tenant, channel=Channel.EMAIL))

    assert [assignee_name(c) for c in (first_sms, second_sms, mail)] == ["Dana", None, None]
    assert explanations(second_sms)[0].endswith("waiting in the Support queue: 1 at SMS capacity")
    assert explanations(mail)[0].endswith("waiting in the Support queue: 1 not taking E-mail")


def test_an_offline_or_away_agent_is_not_assigned(tenant, support):
    make_agent(tenant, support, "Offline", presence=Presence.OFFLINE)
    make_agent(tenant, support, "Away", presence=Presence.AWAY)

    conversation = route(incoming(tenant))

    assert conversation.assignee is None
    assert explanations(conversation)[0].endswith("waiting in the Support queue: 2 not online")


def test_the_queue_is_ordered_by_priority_then_due_time_then_waiting_time(tenant, support):
    now = timezone.now()
    names = ["normal newer", "normal older", "high due later", "urgent", "high due sooner"]
    conversations = {name: route(incoming(tenant, name)) for name in names}
    for name, priority, due, waiting in [
        ("normal newer", Priority.NORMAL, None, now - timedelta(minutes=1)),
        ("normal older", Priority.NORMAL, None, now - timedelta(minutes=9)),
        ("high due later", Priority.HIGH, now + timedelta(hours=2), now),
        ("urgent", Priority.URGENT, None, now),
        ("high due sooner", Priority.HIGH, now + timedelta(hours=1), now),
    ]:
        Conversation.objects.filter(pk=conversations[name].pk).update(
            priority=priority, first_response_due_at=due, waiting_since=waiting
        )

    queue = selectors.queue_for_team(tenant=tenant, team=support)

    assert [c.subject for c in queue] == ["urgent", "high due sooner", "high due later", "normal older", "normal newer"]


def test_a_drain_assigns_the_head_of_the_queue_first(tenant, support):
    low, urgent = route(incoming(tenant, "low")), route(incoming(tenant, "urgent"))
    Conversation.objects.filter(pk=urgent.pk).update(priority=Priority.URGENT)
    make_agent(tenant, support, "Dana", capacity={"sms": 1})

    assert queue_drain(tenant=tenant, team=support) == 1

    assert (assignee_name(urgent), assignee_name(low)) == ("Dana", None)
    assert explanations(urgent)[-1].startswith("waited ")
    assert explanations(urgent)[-1].endswith("in the Support queue; assigned to Dana: least busy, 1/1 SMS")


def test_resolving_frees_capacity_and_the_next_in_queue_is_assigned_at_once(
    tenant, support, celery_eager, django_capture_on_commit_callbacks
):
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 1})
    current, waiting = route(incoming(tenant)), route(incoming(tenant))
    assert (assignee_name(current), assignee_name(waiting)) == ("Dana", None)

    with django_capture_on_commit_callbacks(execute=True):
        conversation_set_status(tenant=tenant, conversation=current, status=Status.RESOLVED, actor=dana.membership.user)

    assert assignee_name(waiting) == "Dana"
    assert ConversationRouting.objects.get(conversation=waiting).queued_at is None


def test_an_agent_coming_online_takes_from_the_queue(tenant, support, celery_eager, django_capture_on_commit_callbacks):
    dana = make_agent(tenant, support, "Dana", presence=Presence.OFFLINE)
    waiting = route(incoming(tenant))

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_presence(tenant=tenant, membership=dana.membership, presence=Presence.ONLINE)

    assert assignee_name(waiting) == "Dana"


def test_required_skills_relax_after_the_teams_wait(tenant, support):
    support.skills_relax_after_seconds = 120
    support.save()
    german = Skill.objects.create(tenant=tenant, name="german")
    rule = RoutingRule.objects.create(tenant=tenant, name="german", keywords="hallo", set_team=support)
    rule.required_skills.add(german)
    make_agent(tenant, support, "Monolingual", capacity={"sms": 3})
    conversation = route(incoming(tenant, "Hallo, wo ist mein Paket?"))
    routing = ConversationRouting.objects.get(conversation=conversation)
    assert conversation.assignee is None
    assert routing.skills_relax_at == routing.queued_at + timedelta(seconds=120)
    assert explanations(conversation)[0].endswith("waiting in the Support queue: 1 missing skills")

    ConversationRouting.objects.filter(pk=routing.pk).update(skills_relax_at=timezone.now() - timedelta(seconds=1))
    queue_drain(tenant=tenant, team=support)

    assert assignee_name(conversation) == "Monolingual"
    assert "assigned to Monolingual: least busy, skills relaxed after the team's wait, 1/3 SMS" in explanations(conversation)[-1]


def test_an_agent_with_the_skill_is_chosen_before_the_wait_ends(tenant, support):
    german = Skill.objects.create(tenant=tenant, name="german")
    rule = RoutingRule.objects.create(tenant=tenant, name="german", keywords="hallo", set_team=support)
    rule.required_skills.add(german)
    make_agent(tenant, support, "Monolingual", capacity={"sms": 9})
    make_agent(tenant, support, "Bilingual", capacity={"sms": 1}, skills=(german,))

    assert assignee_name(route(incoming(tenant, "Hallo!"))) == "Bilingual"


def test_an_agent_offline_longer_than_the_team_allows_has_their_conversations_requeued(tenant, support):
    support.requeue_offline_after_seconds = 300
    support.save()
    dana = make_agent(tenant, support, "Dana", capacity={"sms": 5})
    conversation = route(incoming(tenant))
    assert assignee_name(conversation) == "Dana"
    make_agent(tenant, support, "Eve", capacity={"sms": 5})
    agent_set_presence(tenant=tenant, membership=dana.membership, presence=Presence.OFFLINE)
    AgentProfile.objects.filter(pk=dana.pk).update(presence_changed_at=timezone.now() - timedelta(seconds=299))
    assert agent_requeue_offline(tenant=tenant, membership_id=dana.membership_id) == 0
    assert selectors.agents_due_for_requeue(tenant=tenant, at=timezone.now()) == []

    AgentProfile.objects.filter(pk=dana.pk).update(presence_changed_at=timezone.now() - timedelta(seconds=301))
    assert selectors.agents_due_for_requeue(tenant=tenant, at=timezone.now()) == [dana.membership_id]
    assert agent_requeue_offline(tenant=tenant, membership_id=dana.membership_id) == 1

    assert assignee_name(conversation) == "Eve"
    assert explanations(conversation)[1].startswith("re-queued: Dana offline for 30")
    assert explanations(conversation)[2].endswith("assigned to Eve: least busy, 1/5 SMS")


def test_a_voice_call_nobody_answers_moves_on_to_the_next_agent(tenant, support):
    make_agent(tenant, support, "Ann", capacity={"voice": 1}, last_assigned_at=timezone.now() - timedelta(hours=2))
    ben = make_agent(tenant, support, "Ben", capacity={"voice": 1}, last_assigned_at=timezone.now())
    call = route(incoming(tenant, "", channel=Channel.VOICE))
    first = assignee_name(call)
    ann = AgentProfile.objects.get(membership__display_name="Ann")

    outcome = conversation_offer_unanswered(tenant=tenant, conversation_id=call.pk, membership=ann.membership)

    assert (first, outcome.status, assignee_name(call)) == ("Ann", "assigned", "Ben")
    assert explanations(call)[1] == "Ann did not answer; offering to the next agent"
    assert ben.membership.user.assigned_conversations.get() == call


def test_a_resolved_or_already_assigned_conversation_is_left_alone(tenant, support):
    make_agent(tenant, support, "Dana", capacity={"sms": 5})
    resolved = incoming(tenant)
    conversation_set_status(tenant=tenant, conversation=resolved, status=Status.RESOLVED)
    assigned = route(incoming(tenant))

    outcomes = [conversation_route(tenant=tenant, conversation_id=c.pk).status for c in (resolved, assigned, assigned)]

    assert outcomes == ["skipped", "skipped", "skipped"]
    assert assignee_name(resolved) is None
    assert len(explanations(assigned)) == 1
