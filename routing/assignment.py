"""Agent selection: who may take a conversation now, and in what order of preference.

An agent is eligible when online, inside their own working hours (if they have a calendar), taking
the channel (capacity > 0), holding the required skills (unless relaxed) and below capacity, where
load is their OPEN conversations on that channel. Ranking is computed without locks; the caller locks
the chosen agent's profile and re-counts before assigning (see services._assign_first_free).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Subquery, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from channels_app.models import Channel
from conversations.models import Conversation, Status
from customers.models import Tenant
from routing.models import AgentProfile, AgentSkill, AssignmentMethod, Presence, Team

_NEVER = datetime.min


@dataclass(frozen=True)
class Candidate:
    profile: AgentProfile
    capacity: int
    open_count: int

    @property
    def spare(self) -> int:
        return self.capacity - self.open_count

    @property
    def name(self) -> str:
        return self.profile.membership.name


@dataclass(frozen=True)
class Pool:
    candidates: list[Candidate]
    # Why agents were left out, for the timeline when nobody is left ("2 offline, 1 at capacity").
    left_out: dict[str, int]

    def why_empty(self, channel: str) -> str:
        if not self.left_out:
            return "no agents to take it"
        label = Channel(channel).label if channel in Channel.values else channel
        words = {
            "offline": "not online", "off_hours": "outside working hours", "no_channel": f"not taking {label}",
            "no_skills": "missing skills", "full": f"at {label} capacity", "excluded": "did not answer",
        }
        return ", ".join(f"{count} {words[key]}" for key, count in self.left_out.items())


def open_counts(tenant: Tenant, user_ids: list[int], channel: str) -> dict[int, int]:
    rows = (
        Conversation.objects.for_tenant(tenant)
        .filter(assignee_id__in=user_ids, status=Status.OPEN, last_channel=channel)
        .values("assignee_id").annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def open_count(tenant: Tenant, user_id: int, channel: str) -> int:
    return (
        Conversation.objects.for_tenant(tenant)
        .filter(assignee_id=user_id, status=Status.OPEN, last_channel=channel).count()
    )


def _skilled_profile_ids(tenant: Tenant, profile_ids: list[int], skill_ids: set[int]) -> set[int]:
    rows = (
        AgentSkill.objects.for_tenant(tenant)
        .filter(agent_id__in=profile_ids, skill_id__in=skill_ids)
        .values("agent_id").annotate(n=Count("skill_id", distinct=True)).filter(n=len(skill_ids))
    )
    return {row["agent_id"] for row in rows}


def _pool_order(method: str, preferred_membership_id: int | None) -> list:
    preferred = [Case(When(membership_id=preferred_membership_id, then=0), default=1)] if preferred_membership_id else []
    never_first = F("last_assigned_at").asc(nulls_first=True)
    if method == AssignmentMethod.ROUND_ROBIN:
        return [*preferred, never_first, "pk"]
    # Most spare capacity first; among equals, whoever waited longest since their last assignment.
    return [*preferred, (F("cap") - F("load")).desc(), F("load").asc(), never_first, "pk"]


def _pool_query(tenant: Tenant, team: Team | None, channel: str, skill_ids: set[int], exclude: frozenset[int]):
    """Eligible agents with room, in one query: load and capacity are computed in SQL."""
    load = (
        Conversation.objects.for_tenant(tenant)
        .filter(assignee_id=OuterRef("membership__user_id"), status=Status.OPEN, last_channel=channel)
        .order_by().values("assignee_id").annotate(n=Count("id")).values("n")
    )
    profiles = AgentProfile.objects.for_tenant(tenant).filter(presence=Presence.ONLINE)
    if team is not None:
        profiles = profiles.filter(membership__teams=team)
    if exclude:
        profiles = profiles.exclude(membership_id__in=exclude)
    for skill_id in skill_ids:
        profiles = profiles.filter(Exists(AgentSkill.objects.filter(agent_id=OuterRef("pk"), skill_id=skill_id)))
    return (
        profiles.annotate(
            cap=Coalesce(Cast(KT(f"capacity__{channel}"), IntegerField()), 0),
            load=Coalesce(Subquery(load, output_field=IntegerField()), 0),
        )
        .filter(cap__gt=F("load"))
        .select_related("membership__user", "calendar")
    )


# How many of the best-ranked agents are loaded: enough to fall back past a few that another worker is
# assigning to at this moment, few enough that a 50-agent team costs one small query, not 50 objects.
POOL_SIZE = 8


def agent_pool(
    *, tenant: Tenant, team: Team | None, channel: str, skill_ids: set[int], at: datetime,
    exclude_membership_ids: frozenset[int] = frozenset(), method: str = AssignmentMethod.LEAST_BUSY,
    preferred_membership_id: int | None = None, size: int = POOL_SIZE,
) -> Pool:
    """The best eligible agents with spare capacity on `channel`, ranked in SQL by the team's method (the
    preferred agent, for stickiness, first); without a team, every agent of the tenant. When nobody is
    left, `left_out` says why (worked out only then: it costs a pass over the team)."""
    from routing.business_hours import is_open

    ranked = _pool_query(tenant, team, channel, skill_ids, exclude_membership_ids).order_by(
        *_pool_order(method, preferred_membership_id)
    )
    candidates: list[Candidate] = []
    # Agents outside their own working hours are dropped here, so read a few more than needed.
    for profile in ranked[: size * 3]:
        if profile.calendar is None or is_open(profile.calendar, at):
            candidates.append(Candidate(profile, profile.cap, profile.load))
            if len(candidates) == size:
                break
    if candidates:
        return Pool(candidates=candidates, left_out={})
    return Pool(candidates=[], left_out=_why_nobody(tenant, team, channel, skill_ids, at, exclude_membership_ids))


def _why_nobody(
    tenant: Tenant, team: Team | None, channel: str, skill_ids: set[int], at: datetime, exclude: frozenset[int]
) -> dict[str, int]:
    from routing.business_hours import is_open

    profiles = AgentProfile.objects.for_tenant(tenant).select_related("membership", "calendar")
    if team is not None:
        profiles = profiles.filter(membership__teams=team)
    left_out: dict[str, int] = {}

    def leave(reason: str) -> None:
        left_out[reason] = left_out.get(reason, 0) + 1

    present = []
    for profile in profiles:
        if profile.membership_id in exclude:
            leave("excluded")
        elif profile.presence != Presence.ONLINE:
            leave("offline")
        elif profile.calendar is not None and not is_open(profile.calendar, at):
            leave("off_hours")
        elif profile.capacity_for(channel) <= 0:
            leave("no_channel")
        else:
            present.append(profile)
    skilled = _skilled_profile_ids(tenant, [p.pk for p in present], skill_ids) if skill_ids else {p.pk for p in present}
    counts = open_counts(tenant, [p.membership.user_id for p in present], channel) if present else {}
    for profile in present:
        if profile.pk not in skilled:
            leave("no_skills")
        elif counts.get(profile.membership.user_id, 0) >= profile.capacity_for(channel):
            leave("full")
    return left_out


def candidates_rank(
    candidates: list[Candidate], *, method: str, sticky_membership_id: int | None = None
) -> list[tuple[Candidate, str]]:
    """Candidates best first, each with the reason it would be chosen."""

    def last_assigned(c: Candidate) -> datetime:
        return c.profile.last_assigned_at.replace(tzinfo=None) if c.profile.last_assigned_at else _NEVER

    if method == AssignmentMethod.ROUND_ROBIN:
        ordered = sorted(candidates, key=lambda c: (last_assigned(c), c.profile.pk))
        reason = "round robin"
    else:
        # Most spare capacity first; among equals, whoever waited longest since their last assignment.
        ordered = sorted(candidates, key=lambda c: (-c.spare, c.open_count, last_assigned(c), c.profile.pk))
        reason = "least busy"
    ranked = [(c, reason) for c in ordered]
    sticky = [item for item in ranked if item[0].profile.membership_id == sticky_membership_id]
    if sticky:
        ranked.remove(sticky[0])
        ranked.insert(0, (sticky[0][0], "returning customer's last agent"))
    return ranked


def last_agent_membership_id(tenant: Tenant, conversation: Conversation) -> int | None:
    """The agent of the customer's most recent other conversation that had one."""
    from customers.models import Membership

    last_user = (
        Conversation.objects.for_tenant(tenant)
        .filter(customer_id=conversation.customer_id, assignee__isnull=False)
        .exclude(pk=conversation.pk).order_by("-updated_at").values("assignee_id")[:1]
    )
    return Membership.objects.for_tenant(tenant).filter(user_id=Subquery(last_user)).values_list("pk", flat=True).first()
