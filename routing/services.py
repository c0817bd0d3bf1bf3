"""The routing engine's writes: route a conversation (rules, then an agent or the team queue), drain
queues when capacity frees, presence and capacity changes, re-queues. Every decision is explained on
the timeline.

Locking, always in this order so two workers never deadlock: the conversation row first (its routing
row rides on it), then one agent profile at a time. Assignment holds the agent's profile lock until
commit and re-counts the agent's load under it, so no agent goes over capacity however many workers
route at once. An agent found full is let go again (savepoint), so a decision waiting for one agent
holds no other and cannot deadlock with a batch (routing.batch), which locks its agents in id order.

The route_conversation task and queue drains route in batches (routing.batch.conversations_route_batch);
conversation_route decides for one conversation (re-queues, unanswered calls, the admin).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from analytics.services import presence_span_record
from channels_app.models import Channel
from conversations.models import Conversation, EntryKind, Status, TimelineEntry
from conversations.services import conversation_assign, conversation_assign_locked, timeline_add_event
from customers.models import Membership, Tenant
from omnidesk.lib.events import emit_on_commit
from routing import selectors
from routing.assignment import Candidate, agent_pool, candidates_rank, last_agent_membership_id, open_count
from routing.batch import BATCH_SIZE, conversations_route_batch
from routing.models import AgentProfile, ConversationRouting, Presence, RoutingRule, Team
from routing.rules import rule_actions_apply, rule_input_for_conversation, rules_for_routing, rules_match

logger = logging.getLogger(__name__)

# How many waiting conversations one drain looks at; the sweeper drains again 30 s later.
DRAIN_BATCH = 200


@dataclass(frozen=True)
class RouteOutcome:
    status: str  # "assigned", "queued", "skipped" (closed, assigned, busy elsewhere) or "missing"
    explanation: str = ""
    assignee_id: int | None = None
    # Queued although some agent had room, because of skills: the queue behind it may still move.
    skills_blocked: bool = False


@dataclass
class _Decision:
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    # The matched rule's required skills, when rules were applied in this decision (saves re-reading them).
    skill_ids: set[int] | None = None


def _channel_label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


def _lock_conversation(tenant: Tenant, conversation_id: int, *, wait: bool) -> Conversation | None:
    conversation = (
        Conversation.objects.for_tenant(tenant)
        .select_for_update(no_key=True, of=("self",), skip_locked=not wait)
        .select_related("customer", "team")
        .filter(pk=conversation_id).first()
    )
    if conversation is not None:
        conversation.tenant = tenant
    return conversation


def _routing_row(tenant: Tenant, conversation: Conversation) -> ConversationRouting:
    # The conversation is locked, so only one transaction at a time gets here for it (no savepoint needed).
    routing = ConversationRouting.objects.for_tenant(tenant).filter(conversation=conversation).first()
    return routing or ConversationRouting.objects.create(tenant=tenant, conversation=conversation)


def _apply_rules(tenant: Tenant, conversation: Conversation, routing: ConversationRouting, at: datetime) -> _Decision:
    decision = _Decision()
    match = rules_match(rules_for_routing(tenant), rule_input_for_conversation(conversation, at=at))
    rule: RoutingRule | None = match.rule
    if rule is None:
        decision.notes.append("no routing rule matched" + (f"; stays with {conversation.team}" if conversation.team else ""))
        return decision
    verdict = next(v for v in match.verdicts if v.rule == rule)
    changed = rule_actions_apply(rule, conversation)
    if changed:
        conversation.updated_at = at
        conversation.save(update_fields=[*changed, "updated_at"])
        emit_on_commit(
            "conversation.updated", tenant_id=tenant.pk, conversation_id=conversation.pk, number=conversation.number,
            changed=changed,
        )
    routing.rule = rule
    skills = list(rule.required_skills.all())  # prefetched with the rules
    if skills or routing.attempts:
        routing.required_skills.set(skills)
    decision.skill_ids = {skill.pk for skill in skills}
    if rule.set_sla_policy_id or "priority" in changed:
        from routing.sla import sla_apply

        sla_apply(conversation=conversation, policy=rule.set_sla_policy)
    target = f"to {rule.set_team.name} " if rule.set_team_id else ""
    decision.notes.append(f"routed {target}by rule '{rule.name}' ({verdict.reason})")
    decision.data.update(rule_id=rule.pk, rule=rule.name, changed=changed)
    return decision


def _lock_agent(tenant: Tenant, profile_id: int, *, wait: bool) -> AgentProfile | None:
    return (
        AgentProfile.objects.for_tenant(tenant).select_for_update(no_key=True, skip_locked=not wait)
        .filter(pk=profile_id).first()
    )


def _assign_first_free(
    tenant: Tenant, ranked: list[tuple[Candidate, str]], channel: str
) -> tuple[Candidate, str, AgentProfile, int] | None:
    """Lock the best agent whose profile is free (skipping those another worker holds), re-count under
    the lock; if every good one was busy, wait for them in rank order.

    An agent found full is let go at once (the savepoint's rollback releases the row lock): a decision
    waiting for one agent never holds another, so it cannot deadlock with a batch locking in id order."""
    skipped = []
    for wait in (False, True):
        for candidate, reason in (ranked if not wait else skipped):
            sid = transaction.savepoint()
            profile = _lock_agent(tenant, candidate.profile.pk, wait=wait)
            if profile is None:
                transaction.savepoint_rollback(sid)
                skipped.append((candidate, reason))
                continue
            load = open_count(tenant, candidate.profile.membership.user_id, channel)
            if profile.presence == Presence.ONLINE and load < profile.capacity_for(channel):
                transaction.savepoint_commit(sid)
                return candidate, reason, profile, load
            transaction.savepoint_rollback(sid)
    return None


def _unanswered_by(tenant: Tenant, conversation: Conversation) -> frozenset[int]:
    """Agents a voice call was offered to who did not answer: the call moves on to someone else."""
    if conversation.last_channel != Channel.VOICE:
        return frozenset()
    rows = (
        TimelineEntry.objects.for_tenant(tenant)
        .filter(conversation=conversation, kind=EntryKind.EVENT, event="offer_unanswered")
        .values_list("data__membership_id", flat=True)
    )
    return frozenset(int(value) for value in rows if value is not None)


def _assign_or_queue(
    tenant: Tenant, conversation: Conversation, routing: ConversationRouting, decision: _Decision, at: datetime,
    exclude: frozenset[int],
) -> RouteOutcome:
    channel = conversation.last_channel
    team: Team | None = conversation.team
    skill_ids = decision.skill_ids if decision.skill_ids is not None else set(routing.required_skills.values_list("pk", flat=True))
    relaxed = bool(skill_ids) and routing.skills_relax_at is not None and at >= routing.skills_relax_at
    sticky = last_agent_membership_id(tenant, conversation)
    method = team.assignment_method if team is not None else "least_busy"
    pool = agent_pool(
        tenant=tenant, team=team, channel=channel, skill_ids=set() if relaxed else skill_ids, at=at,
        exclude_membership_ids=exclude | _unanswered_by(tenant, conversation), method=method,
        preferred_membership_id=sticky,
    )
    picked = _assign_first_free(tenant, candidates_rank(pool.candidates, method=method, sticky_membership_id=sticky), channel)
    if picked is not None:
        return _assign(tenant, conversation, routing, decision, at, picked, relaxed=relaxed)
    return _queue(tenant, conversation, routing, decision, at, pool.why_empty(channel), skills_blocked="no_skills" in pool.left_out)


def _assign(
    tenant: Tenant, conversation: Conversation, routing: ConversationRouting, decision: _Decision, at: datetime,
    picked: tuple[Candidate, str, AgentProfile, int], *, relaxed: bool,
) -> RouteOutcome:
    candidate, reason, profile, load = picked
    membership = candidate.profile.membership
    channel = conversation.last_channel
    if routing.queued_at is not None:
        waited = int((at - routing.queued_at).total_seconds())
        decision.notes.append(f"waited {waited}s in the {conversation.team or 'general'} queue")
    if relaxed:
        reason += ", skills relaxed after the team's wait"
    capacity = profile.capacity_for(channel)
    decision.notes.append(f"assigned to {membership.name}: {reason}, {load + 1}/{capacity} {_channel_label(channel)}")
    conversation_assign_locked(
        tenant=tenant, conversation=conversation, assignee_id=membership.user_id, team_id=conversation.team_id
    )
    profile.last_assigned_at = at
    profile.save(update_fields=["last_assigned_at"])
    routing.queued_at = None
    routing.skills_relax_at = None
    routing.last_agent = membership
    explanation = "; ".join(decision.notes)
    timeline_add_event(
        tenant=tenant, customer=conversation.customer, conversation=conversation, event="routed", at=at,
        data={**decision.data, "explanation": explanation, "assignee_id": membership.user_id, "method": reason,
              "load": load + 1, "capacity": capacity, "channel": channel},
    )
    return RouteOutcome("assigned", explanation, assignee_id=membership.user_id)


def _queue(
    tenant: Tenant, conversation: Conversation, routing: ConversationRouting, decision: _Decision, at: datetime,
    why: str, *, skills_blocked: bool,
) -> RouteOutcome:
    queue_name = f"the {conversation.team} queue" if conversation.team else "the general queue"
    decision.notes.append(f"waiting in {queue_name}: {why}")
    explanation = "; ".join(decision.notes)
    if routing.queued_at is None:
        routing.queued_at = at
        team = conversation.team
        relax_after = team.skills_relax_after_seconds if team is not None else None
        if relax_after is not None and routing.required_skills.exists():
            routing.skills_relax_at = at + timedelta(seconds=relax_after)
            _drain_later(conversation, routing.skills_relax_at)
        # Explained once, when it starts to wait; re-tries while waiting stay off the timeline.
        timeline_add_event(
            tenant=tenant, customer=conversation.customer, conversation=conversation, event="queued", at=at,
            data={**decision.data, "explanation": explanation},
        )
    return RouteOutcome("queued", explanation, skills_blocked=skills_blocked)


def _drain_later(conversation: Conversation, eta: datetime) -> None:
    from routing.tasks import drain_queue, drain_unteamed_queue

    if conversation.team_id is not None:
        transaction.on_commit(lambda: drain_queue.apply_async(args=[conversation.team_id], eta=eta))
    else:
        transaction.on_commit(lambda: drain_unteamed_queue.apply_async(args=[conversation.tenant_id], eta=eta))


def conversation_route(
    *, tenant: Tenant, conversation_id: int, exclude_membership_ids: frozenset[int] = frozenset(), wait: bool = True
) -> RouteOutcome:
    """Apply the rules (first time only), then assign an agent or put the conversation in its queue.

    Safe to run any number of times and from any number of workers: an assigned, resolved or missing
    conversation is left alone. With wait=False a conversation another worker holds is skipped.
    """
    at = timezone.now()
    with transaction.atomic():
        conversation = _lock_conversation(tenant, conversation_id, wait=wait)
        if conversation is None:
            return RouteOutcome("missing" if wait else "skipped")
        routing = _routing_row(tenant, conversation)
        if conversation.status != Status.OPEN or conversation.assignee_id is not None:
            if routing.queued_at is not None:
                routing.queued_at = None
                routing.skills_relax_at = None
                routing.save(update_fields=["queued_at", "skills_relax_at"])
            return RouteOutcome("skipped")
        decision = _apply_rules(tenant, conversation, routing, at) if routing.routed_at is None else _Decision()
        routing.routed_at = routing.routed_at or at
        outcome = _assign_or_queue(tenant, conversation, routing, decision, at, exclude_membership_ids)
        routing.attempts += 1
        routing.save()
    logger.debug("Conversation %s: %s", conversation_id, outcome.explanation)
    return outcome


def conversation_route_with_others(*, tenant: Tenant, conversation_id: int) -> None:
    """Route a conversation in one batch with up to BATCH_SIZE - 1 other unrouted ones of its tenant. If
    another transaction held it (and so it is still unrouted), wait for it and route it alone."""
    ids = selectors.unrouted_batch_ids(tenant=tenant, first=conversation_id, limit=BATCH_SIZE)
    conversations_route_batch(tenant=tenant, conversation_ids=ids)
    if selectors.conversation_is_unrouted(tenant=tenant, conversation_id=conversation_id):
        conversation_route(tenant=tenant, conversation_id=conversation_id)


def queue_drain(*, tenant: Tenant, team: Team | None) -> int:
    """Assign waiting conversations of a team (None: the team-less queue), head first, while agents
    have room; returns how many were assigned. Routed in batches, each one short transaction."""
    ids = list(selectors.queue_for_team(tenant=tenant, team=team).values_list("pk", flat=True)[:DRAIN_BATCH])
    assigned = 0
    for start in range(0, len(ids), BATCH_SIZE):
        counts = conversations_route_batch(tenant=tenant, conversation_ids=ids[start:start + BATCH_SIZE])
        if not counts["assigned"]:
            break  # nobody had room for the head of the queue: the rest waits for the next drain
        assigned += counts["assigned"]
    return assigned


def queues_drain_for_agent(*, tenant: Tenant, membership_id: int) -> int:
    """Capacity freed or appeared for an agent: drain every queue they could take from."""
    assigned = 0
    for team in Team.objects.for_tenant(tenant).filter(members__pk=membership_id):
        assigned += queue_drain(tenant=tenant, team=team)
    return assigned + queue_drain(tenant=tenant, team=None)


def agent_profile_for(*, tenant: Tenant, membership: Membership) -> AgentProfile:
    profile, _ = AgentProfile.objects.for_tenant(tenant).get_or_create(membership=membership, defaults={"tenant": tenant})
    return profile


@transaction.atomic
def agent_set_presence(*, tenant: Tenant, membership: Membership, presence: str) -> AgentProfile:
    if presence not in Presence.values:
        raise ValueError(f"{presence!r} is not a presence ({', '.join(Presence.values)}).")
    if membership.tenant_id != tenant.pk:
        raise ValueError("That membership belongs to another tenant.")
    profile = agent_profile_for(tenant=tenant, membership=membership)
    profile = _lock_agent(tenant, profile.pk, wait=True)
    if profile.presence == presence:
        return profile
    profile.presence = presence
    profile.presence_changed_at = timezone.now()
    profile.save(update_fields=["presence", "presence_changed_at"])
    presence_span_record(tenant=tenant, membership=membership, presence=presence, at=profile.presence_changed_at)
    emit_on_commit("agent.presence_changed", tenant_id=tenant.pk, membership_id=membership.pk, presence=presence)
    return profile


def agent_capacity_changed(*, tenant: Tenant, profile: AgentProfile) -> None:
    """Called after a profile's capacity was saved (admin): queues may move."""
    emit_on_commit("agent.capacity_changed", tenant_id=tenant.pk, membership_id=profile.membership_id)


def agent_requeue_offline(*, tenant: Tenant, membership_id: int, at: datetime | None = None) -> int:
    """Put back in their queues the open conversations of an agent offline longer than each team allows."""
    at = at or timezone.now()
    profile = AgentProfile.objects.for_tenant(tenant).select_related("membership__user").filter(membership_id=membership_id).first()
    if profile is None or profile.presence == Presence.ONLINE or profile.presence_changed_at is None:
        return 0
    offline_for = (at - profile.presence_changed_at).total_seconds()
    teams = Team.objects.for_tenant(tenant).filter(
        members__pk=membership_id, requeue_offline_after_seconds__lte=offline_for
    )
    conversation_ids = list(
        Conversation.objects.for_tenant(tenant)
        .filter(team__in=teams, assignee_id=profile.membership.user_id, status=Status.OPEN)
        .order_by("pk").values_list("pk", flat=True)
    )
    for conversation_id in conversation_ids:
        _requeue_one(tenant, conversation_id, profile, offline_for, at)
    return len(conversation_ids)


def _requeue_one(tenant: Tenant, conversation_id: int, profile: AgentProfile, offline_for: float, at: datetime) -> None:
    membership = profile.membership
    with transaction.atomic():
        conversation = _lock_conversation(tenant, conversation_id, wait=True)
        if conversation is None or conversation.assignee_id != membership.user_id or conversation.status != Status.OPEN:
            return
        timeline_add_event(
            tenant=tenant, customer=conversation.customer, conversation=conversation, event="requeued", at=at,
            data={"membership_id": membership.pk, "explanation": f"re-queued: {membership.name} {profile.presence} for {int(offline_for)}s"},
        )
        conversation_assign(tenant=tenant, conversation=conversation, assignee=None)
    conversation_route(tenant=tenant, conversation_id=conversation_id, exclude_membership_ids=frozenset({membership.pk}))


def conversation_offer_unanswered(*, tenant: Tenant, conversation_id: int, membership: Membership) -> RouteOutcome:
    """A call offered to an agent rang out: note it, take it back, and offer it to someone else."""
    if membership.tenant_id != tenant.pk:
        raise ValueError("That membership belongs to another tenant.")
    with transaction.atomic():
        conversation = _lock_conversation(tenant, conversation_id, wait=True)
        if conversation is None:
            return RouteOutcome("missing")
        timeline_add_event(
            tenant=tenant, customer=conversation.customer, conversation=conversation, event="offer_unanswered",
            data={"membership_id": membership.pk, "explanation": f"{membership.name} did not answer; offering to the next agent"},
        )
        if conversation.assignee_id == membership.user_id:
            conversation_assign(tenant=tenant, conversation=conversation, assignee=None)
    return conversation_route(tenant=tenant, conversation_id=conversation_id)
