"""Set-based routing: a batch of conversations routed in one transaction with a fixed number of statements.

The same decisions as services.conversation_route, made in memory: rules once per conversation, then
the batch's conversations are handed out in queue order (priority, first-response due time, waiting
time) to the agents of their team, honouring method, stickiness, capacity per channel, presence,
working hours and skills. Writes are bulk statements.

Locking, in the engine's order: the batch's conversations first (SKIP LOCKED: a conversation another
worker holds is its business), then every agent profile the batch may use, ordered by id, waiting. The
profile locks serialize batches that share agents, and loads are counted under them, so no agent goes
over capacity however many workers route at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from channels_app.models import Channel
from conversations.models import Conversation, Direction, EntryKind, Priority, Status, TimelineEntry
from conversations.services import conversations_assign_bulk
from customers.models import Membership, Tenant
from omnidesk.lib.bulk import rows_update
from omnidesk.lib.events import emit_on_commit
from routing.assignment import Candidate, Pool, candidates_rank
from routing.business_hours import is_open
from routing.models import AgentProfile, AgentSkill, ConversationRouting, Presence, RoutingRule, Team
from routing.rules import RuleInput, rule_actions_apply, rules_for_routing, rules_match

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2}


@dataclass
class _Item:
    conversation: Conversation
    routing: ConversationRouting
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    skill_ids: frozenset[int] = frozenset()


def _lock_conversations(tenant: Tenant, conversation_ids: list[int]) -> list[Conversation]:
    conversations = list(
        Conversation.objects.for_tenant(tenant)
        .filter(pk__in=conversation_ids, status=Status.OPEN, assignee__isnull=True)
        .select_for_update(no_key=True, of=("self",), skip_locked=True)
        .select_related("customer", "team")
        .order_by("pk")
    )
    for conversation in conversations:
        conversation.tenant = tenant
    return conversations


def _routing_rows(tenant: Tenant, conversations: list[Conversation]) -> dict[int, ConversationRouting]:
    # The conversations are locked, so only this transaction creates their routing rows.
    rows = {r.conversation_id: r for r in ConversationRouting.objects.for_tenant(tenant).filter(conversation__in=conversations)}
    missing = [ConversationRouting(tenant=tenant, conversation=c) for c in conversations if c.pk not in rows]
    for row in ConversationRouting.objects.bulk_create(missing):
        rows[row.conversation_id] = row
    return rows


def _first_messages(tenant: Tenant, conversation_ids: list[int]) -> dict[int, str]:
    rows = (
        TimelineEntry.objects.for_tenant(tenant)
        .filter(conversation_id__in=conversation_ids, kind=EntryKind.MESSAGE, direction=Direction.INBOUND)
        .order_by("conversation_id", "created_at", "id").distinct("conversation_id")
        .values_list("conversation_id", "body")
    )
    return dict(rows)


def _apply_rules(tenant: Tenant, items: list[_Item], at: datetime) -> None:
    """services._apply_rules for every conversation routed for the first time, with bulk writes."""
    fresh = [item for item in items if item.routing.routed_at is None]
    if not fresh:
        return
    rules = rules_for_routing(tenant)
    bodies = _first_messages(tenant, [item.conversation.pk for item in fresh])
    changed_rows: dict[tuple[str, ...], list[Conversation]] = defaultdict(list)
    skill_rows = []
    sla_calls = []
    for item in fresh:
        conversation = item.conversation
        text = "\n".join(part for part in (conversation.subject, bodies.get(conversation.pk) or "") if part)
        customer = conversation.customer
        match = rules_match(rules, RuleInput(
            channel=conversation.first_channel, inbox_id=conversation.first_inbox_id, text=text, tier=customer.tier,
            language=customer.language, tags=tuple(conversation.tags), at=at,
        ))
        rule: RoutingRule | None = match.rule
        if rule is None:
            item.notes.append("no routing rule matched" + (f"; stays with {conversation.team}" if conversation.team else ""))
            continue
        verdict = next(v for v in match.verdicts if v.rule == rule)
        changed = rule_actions_apply(rule, conversation)
        if changed:
            conversation.updated_at = at
            changed_rows[tuple(changed)].append(conversation)
            emit_on_commit(
                "conversation.updated", tenant_id=tenant.pk, conversation_id=conversation.pk,
                number=conversation.number, changed=changed,
            )
        item.routing.rule = rule
        skills = list(rule.required_skills.all())  # prefetched with the rules
        if skills or item.routing.attempts:
            skill_rows.append((item.routing, skills))
        item.skill_ids = frozenset(skill.pk for skill in skills)
        if rule.set_sla_policy_id or "priority" in changed:
            sla_calls.append((conversation, rule.set_sla_policy))
        target = f"to {rule.set_team.name} " if rule.set_team_id else ""
        item.notes.append(f"routed {target}by rule '{rule.name}' ({verdict.reason})")
        item.data.update(rule_id=rule.pk, rule=rule.name, changed=changed)
    for fields, conversations in changed_rows.items():
        rows_update(Conversation, conversations, [*fields, "updated_at"])
    if skill_rows:
        through = ConversationRouting.required_skills.through
        through.objects.filter(conversationrouting_id__in=[r.pk for r, _ in skill_rows]).delete()
        through.objects.bulk_create([
            through(conversationrouting_id=routing.pk, skill_id=skill.pk) for routing, skills in skill_rows for skill in skills
        ])
    if sla_calls:
        from routing.sla import sla_apply

        for conversation, policy in sla_calls:
            sla_apply(conversation=conversation, policy=policy)


def _stored_skills(tenant: Tenant, items: list[_Item]) -> None:
    """Required skills of conversations routed before (rules already applied in an earlier decision)."""
    earlier = {item.routing.pk: item for item in items if item.routing.routed_at is not None}
    if not earlier:
        return
    through = ConversationRouting.required_skills.through
    found: dict[int, set[int]] = defaultdict(set)
    for routing_id, skill_id in through.objects.filter(conversationrouting_id__in=list(earlier)).values_list(
        "conversationrouting_id", "skill_id"
    ):
        found[routing_id].add(skill_id)
    for routing_id, item in earlier.items():
        item.skill_ids = frozenset(found.get(routing_id, ()))


@dataclass
class _Agents:
    """The locked agent profiles a batch may use, with their loads and skills, updated as it assigns."""

    profiles: dict[int, AgentProfile]
    team_members: dict[int | None, list[AgentProfile]]
    loads: dict[tuple[int, str], int]
    skills: dict[int, set[int]]
    open_now: dict[int, bool]


def _lock_agents(tenant: Tenant, team_ids: set[int | None], at: datetime) -> _Agents:
    query = AgentProfile.objects.for_tenant(tenant)
    if None not in team_ids:
        query = query.filter(pk__in=AgentProfile.objects.filter(membership__teams__in=team_ids).values("pk"))
    # One lock statement, ordered by id: batches sharing agents queue up here and never deadlock.
    profiles = {
        p.pk: p for p in query.select_for_update(no_key=True, of=("self",)).select_related("membership__user", "calendar").order_by("pk")
    }
    members: dict[int | None, list[AgentProfile]] = {None: sorted(profiles.values(), key=lambda p: p.pk)} if None in team_ids else {}
    named = [t for t in team_ids if t is not None]
    if named:
        through = Team.members.through
        by_team: dict[int, list[AgentProfile]] = defaultdict(list)
        by_membership = {p.membership_id: p for p in profiles.values()}
        for team_id, membership_id in through.objects.filter(team_id__in=named).values_list("team_id", "membership_id"):
            if membership_id in by_membership:
                by_team[team_id].append(by_membership[membership_id])
        for team_id in named:
            members[team_id] = sorted(by_team.get(team_id, []), key=lambda p: p.pk)
    user_ids = [p.membership.user_id for p in profiles.values()]
    loads: dict[tuple[int, str], int] = defaultdict(int)
    for row in (
        Conversation.objects.for_tenant(tenant).filter(assignee_id__in=user_ids, status=Status.OPEN)
        .values("assignee_id", "last_channel").annotate(n=Count("id")).order_by()
    ):
        loads[(row["assignee_id"], row["last_channel"])] = row["n"]
    skills: dict[int, set[int]] = defaultdict(set)
    for agent_id, skill_id in AgentSkill.objects.for_tenant(tenant).filter(agent_id__in=list(profiles)).values_list("agent_id", "skill_id"):
        skills[agent_id].add(skill_id)
    open_now = {pk: p.calendar is None or is_open(p.calendar, at) for pk, p in profiles.items()}
    return _Agents(profiles, members, loads, skills, open_now)


def _last_agents(tenant: Tenant, conversations: list[Conversation]) -> dict[int, int]:
    """Stickiness for the whole batch in one query: customer id -> membership id of the agent of their
    most recent other conversation that had one."""
    customer_ids = {c.customer_id for c in conversations}
    batch_ids = [c.pk for c in conversations]
    rows = (
        Conversation.objects.for_tenant(tenant)
        .filter(customer_id__in=customer_ids, assignee__isnull=False).exclude(pk__in=batch_ids)
        .order_by("customer_id", "-updated_at").distinct("customer_id").values_list("customer_id", "assignee_id")
    )
    last_user = dict(rows)
    if not last_user:
        return {}
    memberships = dict(
        Membership.objects.for_tenant(tenant).filter(user_id__in=set(last_user.values())).values_list("user_id", "pk")
    )
    return {customer_id: memberships[user_id] for customer_id, user_id in last_user.items() if user_id in memberships}


def _queue_key(item: _Item) -> tuple:
    conversation = item.conversation
    due = conversation.first_response_due_at
    waiting = conversation.waiting_since
    queued = item.routing.queued_at
    return (
        _PRIORITY_RANK.get(conversation.priority, 3),
        due is None, due or 0,
        waiting is None, waiting or 0,
        queued is None, queued or 0,
        conversation.pk,
    )


def _why_nobody(agents: _Agents, members: list[AgentProfile], channel: str, skill_ids: frozenset[int]) -> dict[str, int]:
    left_out: dict[str, int] = {}

    def leave(reason: str) -> None:
        left_out[reason] = left_out.get(reason, 0) + 1

    for profile in members:
        if profile.presence != Presence.ONLINE:
            leave("offline")
        elif not agents.open_now[profile.pk]:
            leave("off_hours")
        elif profile.capacity_for(channel) <= 0:
            leave("no_channel")
        elif not skill_ids <= agents.skills.get(profile.pk, set()):
            leave("no_skills")
        elif agents.loads[(profile.membership.user_id, channel)] >= profile.capacity_for(channel):
            leave("full")
    return left_out


def _label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


@dataclass
class _Result:
    assigned: list[tuple[_Item, AgentProfile, str, int, int]] = field(default_factory=list)
    queued: list[tuple[_Item, str]] = field(default_factory=list)


def _decide(items: list[_Item], agents: _Agents, sticky: dict[int, int], at: datetime) -> _Result:
    result = _Result()
    tick = 0
    for item in sorted(items, key=_queue_key):
        conversation = item.conversation
        channel = conversation.last_channel
        team = conversation.team
        members = agents.team_members.get(team.pk if team is not None else None, [])
        routing = item.routing
        relaxed = bool(item.skill_ids) and routing.skills_relax_at is not None and at >= routing.skills_relax_at
        needed = frozenset() if relaxed else item.skill_ids
        candidates = [
            Candidate(p, p.capacity_for(channel), agents.loads[(p.membership.user_id, channel)])
            for p in members
            if p.presence == Presence.ONLINE and agents.open_now[p.pk] and needed <= agents.skills.get(p.pk, set())
            and agents.loads[(p.membership.user_id, channel)] < p.capacity_for(channel)
        ]
        method = team.assignment_method if team is not None else "least_busy"
        if not candidates:
            why = Pool(candidates=[], left_out=_why_nobody(agents, members, channel, needed)).why_empty(channel)
            result.queued.append((item, why))
            continue
        candidate, reason = candidates_rank(candidates, method=method, sticky_membership_id=sticky.get(conversation.customer_id))[0]
        profile = candidate.profile
        if relaxed:
            reason += ", skills relaxed after the team's wait"
        load = candidate.open_count
        agents.loads[(profile.membership.user_id, channel)] = load + 1
        # Distinct moments keep round robin's order within a batch what one decision after another gives.
        tick += 1
        profile.last_assigned_at = at + timedelta(microseconds=tick)
        result.assigned.append((item, profile, reason, load, profile.capacity_for(channel)))
    return result


def _write(tenant: Tenant, result: _Result, at: datetime) -> None:
    from routing.services import _drain_later

    entries = []
    for item, profile, reason, load, capacity in result.assigned:
        conversation, routing = item.conversation, item.routing
        channel = conversation.last_channel
        membership = profile.membership
        if routing.queued_at is not None:
            waited = int((at - routing.queued_at).total_seconds())
            item.notes.append(f"waited {waited}s in the {conversation.team or 'general'} queue")
        item.notes.append(f"assigned to {membership.name}: {reason}, {load + 1}/{capacity} {_label(channel)}")
        routing.queued_at = None
        routing.skills_relax_at = None
        routing.last_agent = membership
        entries.append(TimelineEntry(
            tenant=tenant, customer_id=conversation.customer_id, conversation=conversation, kind=EntryKind.EVENT,
            event="routed", created_at=at, updated_at=at,
            data={**item.data, "explanation": "; ".join(item.notes), "assignee_id": membership.user_id, "method": reason,
                  "load": load + 1, "capacity": capacity, "channel": channel},
        ))
    for item, why in result.queued:
        conversation, routing = item.conversation, item.routing
        queue_name = f"the {conversation.team} queue" if conversation.team else "the general queue"
        item.notes.append(f"waiting in {queue_name}: {why}")
        if routing.queued_at is None:
            routing.queued_at = at
            team = conversation.team
            relax_after = team.skills_relax_after_seconds if team is not None else None
            if relax_after is not None and item.skill_ids:
                routing.skills_relax_at = at + timedelta(seconds=relax_after)
                _drain_later(conversation, routing.skills_relax_at)
            entries.append(TimelineEntry(
                tenant=tenant, customer_id=conversation.customer_id, conversation=conversation, kind=EntryKind.EVENT,
                event="queued", created_at=at, updated_at=at, data={**item.data, "explanation": "; ".join(item.notes)},
            ))
    TimelineEntry.objects.bulk_create(entries)
    conversations_assign_bulk(
        tenant=tenant, assignments=[(item.conversation, profile.membership.user_id) for item, profile, *_ in result.assigned]
    )
    profiles = list({profile.pk: profile for _, profile, *_ in result.assigned}.values())
    if profiles:
        rows_update(AgentProfile, profiles, ["last_assigned_at"])
    routings = [item.routing for item, *_ in result.assigned] + [item.routing for item, _ in result.queued]
    for routing in routings:
        routing.routed_at = routing.routed_at or at
        routing.attempts += 1
    if routings:
        rows_update(
            ConversationRouting, routings, ["rule", "queued_at", "skills_relax_at", "routed_at", "attempts", "last_agent"]
        )


def conversations_route_batch(*, tenant: Tenant, conversation_ids: list[int]) -> dict[str, int]:
    """Route these conversations (those still open, unassigned and not held by another worker) in one
    transaction: {"assigned": n, "queued": n, "skipped": n}. Voice calls that rang out on an agent are
    routed one by one (they must avoid that agent), after the batch."""
    at = timezone.now()
    voice_retries: list[int] = []
    with transaction.atomic():
        conversations = _lock_conversations(tenant, conversation_ids)
        if conversations:
            voice_retries = _rang_out(tenant, conversations)
            conversations = [c for c in conversations if c.pk not in voice_retries]
        if not conversations:
            counts = {"assigned": 0, "queued": 0, "skipped": len(set(conversation_ids))}
        else:
            routings = _routing_rows(tenant, conversations)
            items = [_Item(c, routings[c.pk]) for c in conversations]
            _stored_skills(tenant, items)
            _apply_rules(tenant, items, at)
            agents = _lock_agents(tenant, {i.conversation.team_id for i in items}, at)
            result = _decide(items, agents, _last_agents(tenant, conversations), at)
            _write(tenant, result, at)
            counts = {
                "assigned": len(result.assigned), "queued": len(result.queued),
                "skipped": len(set(conversation_ids)) - len(conversations),
            }
    if voice_retries:
        from routing.services import conversation_route

        for conversation_id in voice_retries:
            outcome = conversation_route(tenant=tenant, conversation_id=conversation_id, wait=False)
            if outcome.status in ("assigned", "queued"):
                counts[outcome.status] += 1
                counts["skipped"] -= 1
    logger.debug("Routed a batch of %d: %s", len(conversation_ids), counts)
    return counts


def _rang_out(tenant: Tenant, conversations: list[Conversation]) -> list[int]:
    voice = [c.pk for c in conversations if c.last_channel == Channel.VOICE]
    if not voice:
        return []
    return sorted(set(
        TimelineEntry.objects.for_tenant(tenant)
        .filter(conversation_id__in=voice, kind=EntryKind.EVENT, event="offer_unanswered")
        .values_list("conversation_id", flat=True)
    ))

