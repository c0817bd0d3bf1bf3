"""The SLA engine: policy choice, due times, pauses, exact timers, at-risk/breach, escalation, met/missed.

One idempotent service, `sla_apply`, recomputes a conversation's whole SLA picture from its current facts
(priority, status, first response, waiting_since) and its ConversationSla state; every handler and task ends
in it, so a missed or repeated event costs nothing. Per metric a "cycle" (start, due, at-risk moment, what
fired) lives in ConversationSla.state["metrics"]; a cycle with the same start keeps its flags when due times
move, so each at-risk/breach/met/missed happens once per cycle.

Timers: each at-risk and due moment within TIMER_HORIZON gets a Celery ETA task that re-checks the state
(stale timers, whose moment no longer matches the cycle, do nothing). Moments further out are scheduled by the
30-second sweeper when they come within the horizon (Redis redelivers ETA tasks older than its one-hour
visibility timeout, so far-off ETAs would only duplicate); the sweeper also fires any moment whose task was
lost, so a lost timer costs at most one sweep.

While a conversation is pending or snoozed its clock is stopped: the due times on the conversation are cleared
and come back, pushed out by the paused time, when it reopens.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from analytics.models import EventName
from analytics.services import analytics_event_record
from conversations.models import ACTIVE_STATUSES, Conversation, Priority, Status
from customers.models import Role
from omnidesk.lib.events import emit_on_commit
from routing.business_hours import add_business_seconds, business_seconds_between
from routing.models import BusinessCalendar, ConversationSla, SlaMetric, SlaPolicy

logger = logging.getLogger(__name__)

DUE_FIELDS = {
    SlaMetric.FIRST_RESPONSE: "first_response_due_at",
    SlaMetric.NEXT_RESPONSE: "next_response_due_at",
    SlaMetric.RESOLUTION: "resolution_due_at",
}
PAUSED_STATUSES = (Status.PENDING, Status.SNOOZED)
PRIORITY_LADDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
# Below Redis' default one-hour visibility timeout, past which a waiting ETA task is delivered again.
TIMER_HORIZON_SECONDS = 50 * 60
# The sweeper leaves a moment this long to its own ETA task before firing it itself.
SWEEP_GRACE_SECONDS = 2.0
AT_RISK = "at_risk"
BREACH = "breach"


def _ts(at: datetime) -> float:
    return at.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# --- policy choice ---------------------------------------------------------------------------------------


def sla_policy_match(*, conversation: Conversation) -> SlaPolicy | None:
    """The first active policy, by position, whose conditions (channel, priority, tier, inbox) all hold."""
    policies = (
        SlaPolicy.objects.for_tenant(conversation.tenant_id).filter(is_active=True)
        .prefetch_related("inboxes").order_by("position", "id")
    )
    tier = conversation.customer.tier
    for policy in policies:
        if policy.channels and conversation.first_channel not in policy.channels:
            continue
        if policy.priorities and conversation.priority not in policy.priorities:
            continue
        if policy.tiers and tier not in policy.tiers:
            continue
        inbox_ids = {inbox.pk for inbox in policy.inboxes.all()}
        if inbox_ids and conversation.first_inbox_id not in inbox_ids:
            continue
        return policy
    return None


def _calendar(policy: SlaPolicy, conversation: Conversation) -> BusinessCalendar | None:
    # Follow-the-sun: without a calendar of its own the policy counts the team's hours.
    if policy.calendar_id:
        return policy.calendar
    if conversation.team_id:
        return conversation.team.calendar
    return None


# --- time that counts: open hours minus pauses -------------------------------------------------------------


def _pauses(state: dict[str, Any], sla: ConversationSla, until: datetime | None = None) -> list[tuple[datetime, datetime]]:
    pauses = [(_dt(start), _dt(end)) for start, end in state.get("pauses", [])]
    if sla.paused_at is not None and until is not None and until > sla.paused_at:
        pauses.append((sla.paused_at, until))
    return pauses


def _add_counted(calendar, start: datetime, seconds: float, pauses) -> datetime:
    at, remaining = start, float(seconds)
    for pause_start, pause_end in pauses:
        if pause_end <= at:
            continue
        if pause_start > at:
            candidate = add_business_seconds(calendar, at, remaining)
            if candidate <= pause_start:
                return candidate
            remaining -= business_seconds_between(calendar, at, pause_start)
        at = max(at, pause_end)
    return add_business_seconds(calendar, at, remaining)


def _counted_between(calendar, start: datetime, end: datetime, pauses) -> float:
    total = business_seconds_between(calendar, start, end)
    for pause_start, pause_end in pauses:
        total -= business_seconds_between(calendar, max(pause_start, start), min(pause_end, end))
    return max(total, 0.0)


# --- cycles -------------------------------------------------------------------------------------------------


def _cycle_start(metric: str, conversation: Conversation, previous: dict | None, now: datetime) -> datetime | None:
    """When the metric's clock started, or None when the metric does not run now."""
    active = conversation.status in ACTIVE_STATUSES
    if metric == SlaMetric.FIRST_RESPONSE:
        return conversation.created_at if active and conversation.first_response_at is None else None
    if metric == SlaMetric.NEXT_RESPONSE:
        # From the oldest unanswered customer message, once the first response is given.
        if active and conversation.first_response_at is not None and conversation.waiting_since is not None:
            return conversation.waiting_since
        return None
    if not active:
        return None
    if previous is not None and not previous.get("ended"):
        return _dt(previous["start"])
    # A reopened conversation starts a new resolution clock.
    return now if previous is not None else conversation.created_at


def _completion(metric: str, conversation: Conversation, cycle: dict, now: datetime) -> tuple[datetime, bool]:
    """When an ended cycle ended, and whether an agent actually did what the metric measures."""
    start = _dt(cycle["start"])
    if metric == SlaMetric.FIRST_RESPONSE and conversation.first_response_at is not None:
        return conversation.first_response_at, True
    if metric == SlaMetric.NEXT_RESPONSE and conversation.last_agent_message_at and conversation.last_agent_message_at >= start:
        return conversation.last_agent_message_at, True
    if metric == SlaMetric.RESOLUTION and conversation.status == Status.RESOLVED and conversation.resolved_at:
        return conversation.resolved_at, True
    return now, False


def _record_outcome(conversation, sla, cycle: dict, metric: str, name: str, at: datetime, calendar) -> None:
    start = _dt(cycle["start"])
    pauses = _pauses(sla.state, sla, until=at)
    counted = _counted_between(calendar if cycle["business"] else None, start, at, pauses)
    analytics_event_record(
        conversation=conversation, name=name, occurred_at=at, value_seconds=(at - start).total_seconds(),
        data={
            "metric": metric, "business_seconds": counted, "target_seconds": cycle["target"],
            "business_hours": cycle["business"], "due_at": _dt(cycle["due"]).isoformat() if cycle.get("due") else None,
            "policy_id": sla.policy_id, "priority": conversation.priority,
        },
    )
    cycle["recorded"] = "met" if name == EventName.SLA_MET else "missed"


def _close_cycle(conversation, sla, metric: str, cycle: dict, now: datetime, calendar) -> None:
    """End a cycle; met or missed is recorded once (a breach already recorded "missed")."""
    if cycle.get("ended"):
        return
    ended_at, done = _completion(metric, conversation, cycle, now)
    cycle["ended"] = _ts(ended_at)
    due = cycle.get("due")
    if cycle.get("recorded"):
        return
    if due is not None and _ts(ended_at) > due:
        _record_outcome(conversation, sla, cycle, metric, EventName.SLA_MISSED, ended_at, calendar)
    elif done:
        _record_outcome(conversation, sla, cycle, metric, EventName.SLA_MET, ended_at, calendar)


def _update_pause(conversation: Conversation, sla: ConversationSla, now: datetime) -> None:
    paused = conversation.status in PAUSED_STATUSES
    if paused and sla.paused_at is None:
        sla.paused_at = now
    elif not paused and sla.paused_at is not None:
        sla.state.setdefault("pauses", []).append([_ts(sla.paused_at), _ts(now)])
        sla.paused_seconds += max((now - sla.paused_at).total_seconds(), 0.0)
        sla.paused_at = None


def _plan(conversation: Conversation, sla: ConversationSla, policy: SlaPolicy | None, now: datetime) -> None:
    """Bring every metric's cycle up to date and copy the due times onto the conversation."""
    metrics: dict[str, dict] = sla.state.setdefault("metrics", {})
    targets = {}
    calendar = None
    if policy is not None:
        targets = {t.metric: t for t in policy.targets.all() if t.priority == conversation.priority}
        calendar = _calendar(policy, conversation)
    pauses = _pauses(sla.state, sla)
    for metric, field in DUE_FIELDS.items():
        previous = metrics.get(metric)
        start = _cycle_start(metric, conversation, previous, now)
        if previous is not None and (start is None or _ts(start) != previous["start"]):
            _close_cycle(conversation, sla, metric, previous, now, calendar)
        target = targets.get(metric)
        if start is None or target is None:
            if previous is not None and not previous.get("ended"):
                metrics.pop(metric)  # the policy no longer measures this metric
            setattr(conversation, field, None)
            continue
        cycle = previous if previous is not None and previous["start"] == _ts(start) else {"start": _ts(start)}
        cycle.update(target=target.seconds, business=target.business_hours, share=policy.at_risk_share)
        cycle.setdefault("scheduled", [])
        if sla.paused_at is not None:
            cycle["due"] = cycle["at_risk"] = None
        else:
            counted_on = calendar if target.business_hours else None
            cycle["due"] = _ts(_add_counted(counted_on, start, target.seconds, pauses))
            cycle["at_risk"] = _ts(_add_counted(counted_on, start, target.seconds * policy.at_risk_share, pauses))
        metrics[metric] = cycle
        setattr(conversation, field, _dt(cycle["due"]) if cycle["due"] is not None else None)


def _pending_moments(sla: ConversationSla) -> list[tuple[str, str, float]]:
    """(metric, kind, moment) of every timer not fired yet."""
    moments = []
    for metric, cycle in sla.state.get("metrics", {}).items():
        if cycle.get("ended") or cycle.get("due") is None:
            continue
        if not cycle.get("at_risk_fired") and cycle.get("at_risk") is not None:
            moments.append((metric, AT_RISK, cycle["at_risk"]))
        if not cycle.get("breached"):
            moments.append((metric, BREACH, cycle["due"]))
    return moments


def _schedule_timers(sla: ConversationSla, now: datetime) -> None:
    """ETA tasks for moments within the horizon, sent after commit; remembers next_check for the sweeper."""
    moments = _pending_moments(sla)
    sla.state["next_check"] = min((moment for _, _, moment in moments), default=None)
    horizon = _ts(now) + TIMER_HORIZON_SECONDS
    for metric, kind, moment in moments:
        cycle = sla.state["metrics"][metric]
        if moment > horizon or moment in cycle["scheduled"]:
            continue
        cycle["scheduled"] = [*cycle["scheduled"][-5:], moment]
        args = [sla.tenant_id, sla.conversation_id, metric, kind, moment]
        transaction.on_commit(lambda args=args: _send_timer(args))


def _send_timer(args: list) -> None:
    try:
        sla_timer_fire.apply_async(args=args, eta=_dt(args[-1]))
    except OperationalError:
        # Broker down: the sweeper fires the moment when it passes.
        logger.warning("Could not schedule SLA timer %s; the sweeper will catch it", args)


# --- the service --------------------------------------------------------------------------------------------


def _lock(conversation: Conversation) -> ConversationSla:
    # Lock order everywhere: the conversation row, then its SLA row.
    list(Conversation.objects.for_tenant(conversation.tenant_id).select_for_update(no_key=True).filter(pk=conversation.pk).values_list("pk"))
    sla, _ = ConversationSla.objects.get_or_create(conversation=conversation, defaults={"tenant_id": conversation.tenant_id})
    return ConversationSla.objects.for_tenant(conversation.tenant_id).select_for_update(no_key=True).get(pk=sla.pk)


def _policy_for(conversation: Conversation, sla: ConversationSla, policy: SlaPolicy | None) -> SlaPolicy | None:
    if policy is not None:
        if policy.tenant_id != conversation.tenant_id:
            raise ValueError("That SLA policy belongs to another tenant.")
        sla.state["explicit"] = True
        return policy
    # A policy chosen by a routing rule sticks; a matched one is re-matched (priority may have changed).
    if sla.state.get("explicit") and sla.policy_id:
        return SlaPolicy.objects.for_tenant(conversation.tenant_id).filter(pk=sla.policy_id).first()
    sla.state["explicit"] = False
    return sla_policy_match(conversation=conversation)


@transaction.atomic
def sla_apply(*, conversation: Conversation, policy: SlaPolicy | None = None) -> None:
    """Choose the policy (explicit, else the first matching), recompute cycles and due times, arm timers.

    Safe to call any number of times; the conversation's current fields are the input, its due-time fields
    are written (on the instance passed in too).
    """
    now = timezone.now()
    sla = _lock(conversation)
    chosen = _policy_for(conversation, sla, policy)
    if chosen is not None:
        chosen = SlaPolicy.objects.for_tenant(conversation.tenant_id).select_related("calendar").prefetch_related("targets").get(pk=chosen.pk)
    sla.policy = chosen
    _update_pause(conversation, sla, now)
    _plan(conversation, sla, chosen, now)
    _schedule_timers(sla, now)
    sla.save()
    conversation.save(update_fields=list(DUE_FIELDS.values()))


# --- firing -------------------------------------------------------------------------------------------------


def _notify_user_ids(conversation: Conversation) -> list[int]:
    """The assignee and the team's supervisors: who a live notification goes to."""
    ids = {conversation.assignee_id} if conversation.assignee_id else set()
    if conversation.team_id:
        members = conversation.team.members.filter(role__in=[Role.SUPERVISOR, Role.ADMIN])
        ids.update(members.values_list("user_id", flat=True))
    return sorted(ids)


def _raise_priority(conversation: Conversation, now: datetime) -> None:
    from conversations.services import timeline_add_event

    position = PRIORITY_LADDER.index(conversation.priority)
    if position == len(PRIORITY_LADDER) - 1:
        return
    old, conversation.priority = conversation.priority, PRIORITY_LADDER[position + 1]
    conversation.updated_at = now
    conversation.save(update_fields=["priority", "updated_at"])
    timeline_add_event(
        tenant=conversation.tenant, customer=conversation.customer, conversation=conversation, event="priority_changed",
        data={"from": old, "to": conversation.priority, "reason": "sla_breached"}, at=now,
    )
    emit_on_commit(
        "conversation.updated", tenant_id=conversation.tenant_id, conversation_id=conversation.pk,
        number=conversation.number, changed=["priority"],
    )


def _send_escalation_mail(recipients: list[str], subject: str, body: str) -> None:
    try:
        send_mail(subject, body, None, recipients)
    except (smtplib.SMTPException, OSError):
        logger.exception("Could not send the SLA escalation e-mail to %s", recipients)


def _escalate(conversation: Conversation, policy: SlaPolicy, metric: str, due: datetime, now: datetime) -> list[str]:
    from conversations.services import conversation_assign

    actions = []
    if policy.escalate_raise_priority and conversation.priority != Priority.URGENT:
        _raise_priority(conversation, now)
        actions.append(f"priority raised to {conversation.priority}")
    team = policy.escalate_to_team
    if team is not None and (conversation.team_id != team.pk or conversation.assignee_id is not None):
        conversation_assign(tenant=conversation.tenant, conversation=conversation, assignee=None, team=team)
        conversation.refresh_from_db(fields=["assignee", "team", "updated_at"])
        actions.append(f"reassigned to {team.name}")
    if policy.escalate_notify_emails:
        recipients = list(policy.escalate_notify_emails)
        subject = f"SLA breached: conversation #{conversation.number} ({SlaMetric(metric).label})"
        body = (
            f"The {SlaMetric(metric).label.lower()} target of policy '{policy.name}' for conversation "
            f"#{conversation.number} was due at {due.isoformat()}."
        )
        transaction.on_commit(lambda: _send_escalation_mail(recipients, subject, body))
        actions.append("e-mail sent to " + ", ".join(recipients))
    return actions


def _fire(conversation: Conversation, sla: ConversationSla, metric: str, kind: str, now: datetime) -> None:
    from conversations.services import timeline_add_event

    cycle = sla.state["metrics"][metric]
    due = _dt(cycle["due"])
    policy = sla.policy
    event = "sla_at_risk" if kind == AT_RISK else "sla_breached"
    cycle["at_risk_fired" if kind == AT_RISK else "breached"] = _ts(now)
    data: dict[str, Any] = {
        "metric": metric, "due_at": due.isoformat(), "policy_id": sla.policy_id,
        "policy": policy.name if policy else "", "target_seconds": cycle["target"],
    }
    # Who owned it when it breached, plus whoever the escalation hands it to.
    assignee_id, team_id, notify = conversation.assignee_id, conversation.team_id, set(_notify_user_ids(conversation))
    if kind == BREACH:
        calendar = _calendar(policy, conversation) if policy else None
        _record_outcome(conversation, sla, cycle, metric, EventName.SLA_MISSED, now, calendar)
        if policy is not None:
            data["escalation"] = _escalate(conversation, policy, metric, due, now)
            notify.update(_notify_user_ids(conversation))
    timeline_add_event(
        tenant=conversation.tenant, customer=conversation.customer, conversation=conversation, event=event,
        data=data, at=now,
    )
    emit_on_commit(
        "sla.at_risk" if kind == AT_RISK else "sla.breached", tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk, number=conversation.number, metric=metric, due_at=due.isoformat(),
        policy_id=sla.policy_id, assignee_id=assignee_id, team_id=team_id, notify_user_ids=sorted(notify),
    )


def _locked_conversation(tenant_id: int, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.for_tenant(tenant_id).select_for_update(no_key=True, of=("self",))
        .select_related("tenant", "customer", "team").filter(pk=conversation_id).first()
    )


@transaction.atomic
def sla_timer_check(*, tenant_id: int, conversation_id: int, metric: str, kind: str, moment: float) -> bool:
    """Fire one timer if it is still current and has not fired; returns whether it fired."""
    conversation = _locked_conversation(tenant_id, conversation_id)
    if conversation is None:
        return False
    sla = ConversationSla.objects.for_tenant(tenant_id).select_for_update(no_key=True, of=("self",)).select_related("policy").filter(
        conversation_id=conversation_id
    ).first()
    cycle = (sla.state.get("metrics", {}).get(metric) if sla else None) or {}
    current = cycle.get("at_risk" if kind == AT_RISK else "due")
    fired = cycle.get("at_risk_fired" if kind == AT_RISK else "breached")
    # Stale: the conversation changed since this timer was set (another timer carries the new moment).
    if sla is None or sla.paused_at is not None or cycle.get("ended") or fired or current != moment:
        return False
    now = timezone.now()
    if now.timestamp() < moment:
        return False
    if kind == AT_RISK and now.timestamp() >= cycle["due"]:
        # Caught late (lost timer): the breach says it all; warning now would only be noise.
        cycle["at_risk_fired"] = _ts(now)
    else:
        _fire(conversation, sla, metric, kind, now)
    _plan_after_fire(conversation, sla, now)
    return True


def _plan_after_fire(conversation: Conversation, sla: ConversationSla, now: datetime) -> None:
    # Escalation may have changed the priority or team: recompute the other metrics under the same locks.
    if sla.policy is not None and not sla.state.get("explicit"):
        sla.policy = sla_policy_match(conversation=conversation)
    if sla.policy is not None:
        sla.policy = SlaPolicy.objects.for_tenant(conversation.tenant_id).select_related("calendar").prefetch_related("targets").get(pk=sla.policy.pk)
    _plan(conversation, sla, sla.policy, now)
    _schedule_timers(sla, now)
    sla.save()
    conversation.save(update_fields=list(DUE_FIELDS.values()))


def sla_sweep(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Fire moments whose timer was lost, arm timers for moments entering the horizon, and give an SLA
    to active conversations whose opening event never reached us."""
    now = now or timezone.now()
    fired = armed = applied = 0
    # Across tenants by design (a beat task); each row is then re-read under its own tenant.
    due_rows = (
        ConversationSla.objects.filter(state__next_check__lte=_ts(now) + TIMER_HORIZON_SECONDS, paused_at__isnull=True)
        .values_list("tenant_id", "conversation_id")[:limit]
    )
    for tenant_id, conversation_id in due_rows:
        fired_here, armed_here = _sweep_one(tenant_id, conversation_id, now)
        fired += fired_here
        armed += armed_here
    orphans = (
        Conversation.objects.filter(status__in=ACTIVE_STATUSES, sla__isnull=True, created_at__lte=now - timedelta(seconds=10))
        .values_list("tenant_id", "pk")[:limit]
    )
    for tenant_id, conversation_id in orphans:
        with transaction.atomic():
            conversation = _locked_conversation(tenant_id, conversation_id)
            if conversation is not None:
                sla_apply(conversation=conversation)
                applied += 1
    return {"fired": fired, "armed": armed, "applied": applied}


def _sweep_one(tenant_id: int, conversation_id: int, now: datetime) -> tuple[int, int]:
    fired = armed = 0
    sla = ConversationSla.objects.for_tenant(tenant_id).filter(conversation_id=conversation_id).first()
    if sla is None:
        return 0, 0
    for metric, kind, moment in sorted(_pending_moments(sla), key=lambda item: item[2]):
        if moment <= _ts(now) - SWEEP_GRACE_SECONDS:
            fired += sla_timer_check(tenant_id=tenant_id, conversation_id=conversation_id, metric=metric, kind=kind, moment=moment)
        elif moment <= _ts(now) + TIMER_HORIZON_SECONDS and moment not in sla.state["metrics"][metric].get("scheduled", []):
            with transaction.atomic():
                locked = ConversationSla.objects.for_tenant(tenant_id).select_for_update(no_key=True).get(pk=sla.pk)
                _schedule_timers(locked, now)
                locked.save(update_fields=["state", "updated_at"])
            armed += 1
            break
    return fired, armed


# --- Celery entry points ------------------------------------------------------------------------------------


@shared_task(name="routing.sla.sla_timer_fire", acks_late=True)
def sla_timer_fire(tenant_id: int, conversation_id: int, metric: str, kind: str, moment: float) -> bool:
    return sla_timer_check(tenant_id=tenant_id, conversation_id=conversation_id, metric=metric, kind=kind, moment=moment)


@shared_task(name="routing.sla.sla_sweep_task")
def sla_sweep_task() -> dict[str, int]:
    return sla_sweep()


@shared_task(name="routing.sla.sla_apply_task")
def sla_apply_task(tenant_id: int, conversation_id: int) -> None:
    with transaction.atomic():
        conversation = _locked_conversation(tenant_id, conversation_id)
        if conversation is not None:
            sla_apply(conversation=conversation)
