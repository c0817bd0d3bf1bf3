"""Writes to conversations and their timeline. Every channel adapter and every view goes through here."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from analytics.models import EventName
from analytics.services import (
    analytics_assignment_record,
    analytics_assignments_build,
    analytics_conversation_opened,
    analytics_event_record,
    analytics_events_save,
    analytics_reopen_record,
    analytics_resolution_record,
)
from channels_app.models import Channel, Inbox
from conversations.csat import csat_answer_from_inbound, csat_schedule_on_resolve
from conversations.models import (
    ACTIVE_STATUSES,
    Attachment,
    Conversation,
    DeliveryStatus,
    Direction,
    EntryKind,
    Priority,
    Status,
    TimelineEntry,
)
from customers.identities import normalize_identity
from customers.models import Customer, Membership, Tenant
from customers.services import audit_record, customer_lock_for_identity, tenant_counter_next
from omnidesk.lib.bulk import rows_update
from omnidesk.lib.events import emit_on_commit
from omnidesk.lib.text import strip_nul

logger = logging.getLogger(__name__)

CONVERSATION_SEQUENCE = "conversation"
KEEP_TEAM = object()


class ConversationError(ValidationError):
    pass


@dataclass(frozen=True)
class InboundMessage:
    """What an adapter hands over after verifying and parsing a provider's webhook."""

    channel: str
    sender_kind: str
    sender_value: str
    body: str = ""
    sender_name: str = ""
    external_id: str | None = None
    subject: str = ""
    received_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # A conversation the channel knows this message continues (an e-mail reply's thread); honoured when
    # it is the sender's and not closed, even if resolved outside the reopen window.
    conversation_hint: int | None = None
    # What the timeline entry is: a message, or a call (voice stores calls through the same continuity rule).
    kind: str = EntryKind.MESSAGE


@dataclass(frozen=True)
class OutgoingFile:
    """A file an agent attaches to a reply or a note, already read (the composer's form caps its size)."""

    name: str
    content: bytes
    content_type: str = ""

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class InboundResult:
    entry: TimelineEntry
    conversation: Conversation
    created: bool
    # "opened", "joined", "reopened", or "duplicate" for a re-delivered message.
    continuity: str


def _emit_conversation(name: str, conversation: Conversation, **payload: Any) -> None:
    emit_on_commit(
        name, tenant_id=conversation.tenant_id, owner=(conversation.assignee_id, conversation.team_id),
        conversation_id=conversation.pk, number=conversation.number, **payload,
    )


def timeline_add_event(
    *,
    tenant: Tenant,
    customer: Customer,
    event: str,
    conversation: Conversation | None = None,
    actor=None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    at = at or timezone.now()
    return TimelineEntry.objects.create(
        tenant=tenant,
        customer=customer,
        conversation=conversation,
        kind=EntryKind.EVENT,
        event=event,
        author=actor if actor is not None and actor.is_authenticated else None,
        data=data or {},
        created_at=at,
        updated_at=at,
    )


@transaction.atomic
def conversation_open(
    *,
    tenant: Tenant,
    customer: Customer,
    channel: str,
    inbox: Inbox | None = None,
    subject: str = "",
    priority: str = Priority.NORMAL,
    at: datetime | None = None,
) -> Conversation:
    at = at or timezone.now()
    conversation = Conversation.objects.create(
        tenant=tenant,
        number=tenant_counter_next(tenant=tenant, name=CONVERSATION_SEQUENCE),
        customer=customer,
        first_channel=channel,
        last_channel=channel,
        channels=[channel],
        first_inbox=inbox,
        subject=subject[:300],
        priority=priority,
        created_at=at,
        updated_at=at,
    )
    analytics_conversation_opened(conversation=conversation, at=at)
    _emit_conversation("conversation.opened", conversation, customer_id=customer.pk, channel=channel)
    return conversation


def _status_change(
    conversation: Conversation, new_status: str, *, actor=None, at: datetime, reason: str = "",
    snoozed_until: datetime | None = None,
) -> None:
    """Apply a status change to a locked conversation and record it; callers save the conversation."""
    old_status = conversation.status
    reopening = old_status in (Status.RESOLVED, Status.CLOSED) and new_status in ACTIVE_STATUSES
    conversation.status = new_status
    conversation.snoozed_until = snoozed_until if new_status == Status.SNOOZED else None
    conversation.updated_at = at
    if new_status == Status.RESOLVED:
        conversation.resolved_at = at
        conversation.waiting_since = None
    if reopening:
        conversation.resolved_at = None
        conversation.reopen_count += 1
    data: dict[str, Any] = {"from": old_status, "to": new_status}
    if reason:
        data["reason"] = reason
    if snoozed_until:
        data["snoozed_until"] = snoozed_until.isoformat()
    timeline_add_event(
        tenant=conversation.tenant, customer=conversation.customer, conversation=conversation,
        event="status_changed", actor=actor, data=data, at=at,
    )
    if new_status == Status.RESOLVED:
        analytics_resolution_record(conversation=conversation, at=at)
        csat_schedule_on_resolve(conversation)
    if reopening:
        analytics_reopen_record(conversation=conversation, at=at, reason=reason)
        _emit_conversation("conversation.reopened", conversation, customer_id=conversation.customer_id)
    _emit_conversation("conversation.status_changed", conversation, old_status=old_status, new_status=new_status)


def _lock_conversation(tenant: Tenant, conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
        .select_related("customer", "tenant").get(pk=conversation.pk)
    )


@transaction.atomic
def conversation_set_status(
    *, tenant: Tenant, conversation: Conversation, status: str, actor=None, snoozed_until: datetime | None = None
) -> Conversation:
    if status not in Status.values:
        raise ConversationError(f"{status!r} is not a status ({', '.join(Status.values)}).")
    at = timezone.now()
    if status == Status.SNOOZED and (snoozed_until is None or snoozed_until <= at):
        raise ConversationError("Snoozing needs a time in the future to wake up at.")
    conversation = _lock_conversation(tenant, conversation)
    if conversation.status == status and conversation.snoozed_until == (snoozed_until if status == Status.SNOOZED else None):
        return conversation
    _status_change(conversation, status, actor=actor, at=at, snoozed_until=snoozed_until)
    conversation.save()
    return conversation


@transaction.atomic
def conversation_assign(
    *, tenant: Tenant, conversation: Conversation, assignee=None, team: Any = KEEP_TEAM, actor=None
) -> Conversation:
    """Set the assignee (a user with a seat in this tenant, or None) and the team (None clears it;
    leaving it out keeps the current team)."""
    if assignee is not None and not Membership.objects.for_tenant(tenant).filter(user=assignee).exists():
        raise ConversationError(f"{assignee} is not a member of {tenant}.")
    if team is not KEEP_TEAM and team is not None and team.tenant_id != tenant.pk:
        raise ConversationError("That team belongs to another tenant.")
    conversation = _lock_conversation(tenant, conversation)
    new_assignee_id = assignee.pk if assignee is not None else None
    new_team_id = conversation.team_id if team is KEEP_TEAM else (team.pk if team is not None else None)
    return conversation_assign_locked(
        tenant=tenant, conversation=conversation, assignee_id=new_assignee_id, team_id=new_team_id, actor=actor
    )


def conversation_assign_locked(
    *, tenant: Tenant, conversation: Conversation, assignee_id: int | None, team_id: int | None, actor=None
) -> Conversation:
    """conversation_assign for a caller that already holds the conversation's row lock (inside its
    transaction) and has checked that the assignee has a seat in the tenant: the routing engine."""
    new_assignee_id, new_team_id = assignee_id, team_id
    if conversation.assignee_id == new_assignee_id and conversation.team_id == new_team_id:
        return conversation
    at = timezone.now()
    data = _assigned_data(conversation, new_assignee_id, new_team_id)
    conversation.assignee_id = new_assignee_id
    conversation.team_id = new_team_id
    conversation.updated_at = at
    conversation.save(update_fields=["assignee", "team", "updated_at"])
    timeline_add_event(
        tenant=tenant, customer=conversation.customer, conversation=conversation, event="assigned",
        actor=actor, data=data, at=at,
    )
    analytics_assignment_record(
        conversation=conversation, at=at, previous_agent_id=data["from_assignee_id"], agent_id=new_assignee_id
    )
    _emit_conversation("conversation.assigned", conversation, assignee_id=new_assignee_id, team_id=new_team_id)
    return conversation


def _assigned_data(conversation: Conversation, assignee_id: int | None, team_id: int | None) -> dict[str, Any]:
    """The "assigned" timeline event's data, the same for one assignment and for a batch."""
    return {
        "from_assignee_id": conversation.assignee_id, "to_assignee_id": assignee_id,
        "from_team_id": conversation.team_id, "to_team_id": team_id,
    }


def conversations_assign_bulk(*, tenant: Tenant, assignments: list[tuple[Conversation, int]]) -> None:
    """conversation_assign_locked for many conversations at once (the routing engine's batches): the
    caller holds every row lock; a handful of statements instead of four per conversation."""
    at = timezone.now()
    changed, entries, assigned = [], [], []
    for conversation, assignee_id in assignments:
        if conversation.assignee_id == assignee_id:
            continue
        data = _assigned_data(conversation, assignee_id, conversation.team_id)
        conversation.assignee_id = assignee_id
        conversation.updated_at = at
        changed.append(conversation)
        entries.append(TimelineEntry(
            tenant=tenant, customer_id=conversation.customer_id, conversation=conversation, kind=EntryKind.EVENT,
            event="assigned", data=data, created_at=at, updated_at=at,
        ))
        assigned.append((conversation, data["from_assignee_id"], assignee_id))
    if not changed:
        return
    rows_update(Conversation, changed, ["assignee", "updated_at"])
    TimelineEntry.objects.bulk_create(entries)
    analytics_events_save(analytics_assignments_build(assignments=assigned, at=at))
    for conversation in changed:
        _emit_conversation(
            "conversation.assigned", conversation, assignee_id=conversation.assignee_id, team_id=conversation.team_id
        )


def _note_channel(conversation: Conversation, channel: str, *, actor, at: datetime) -> None:
    """Record a channel switch when a message uses another channel than the conversation's last one."""
    if channel not in conversation.channels:
        conversation.channels = [*conversation.channels, channel]
    if channel == conversation.last_channel:
        return
    old = conversation.last_channel
    conversation.last_channel = channel
    data = {"from": old, "to": channel}
    timeline_add_event(
        tenant=conversation.tenant, customer=conversation.customer, conversation=conversation,
        event="channel_switched", actor=actor, data=data, at=at,
    )
    analytics_event_record(conversation=conversation, name=EventName.CHANNEL_SWITCH, channel=channel, occurred_at=at, data=data)
    _emit_conversation("conversation.channel_switched", conversation, from_channel=old, to_channel=channel)


def _with_owner(conversation: Conversation | None, tenant: Tenant, customer: Customer) -> Conversation | None:
    """Attach the tenant and customer we already hold, instead of joining them in again."""
    if conversation is not None:
        conversation.tenant = tenant
        conversation.customer = customer
    return conversation


def _conversation_for_inbound(
    *, tenant: Tenant, customer: Customer, message: InboundMessage, inbox: Inbox | None, at: datetime
) -> tuple[Conversation, str]:
    """The continuity rule, in one place for every channel.

    An open, pending or snoozed conversation of the customer takes the message, whatever its channel;
    else a conversation resolved within the tenant's reopen window is reopened; else a new one opens.
    """
    conversations = Conversation.objects.for_tenant(tenant).select_for_update(no_key=True)
    if message.conversation_hint is not None:
        hinted = _with_owner(
            conversations.filter(pk=message.conversation_hint, customer=customer).exclude(status=Status.CLOSED).first(),
            tenant, customer,
        )
        if hinted is not None:
            reopening = hinted.status == Status.RESOLVED
            if hinted.status != Status.OPEN:
                _status_change(hinted, Status.OPEN, at=at, reason="customer_replied")
            return hinted, "reopened" if reopening else "joined"
    active = _with_owner(
        conversations.filter(customer=customer, status__in=ACTIVE_STATUSES).order_by("-updated_at").first(), tenant, customer
    )
    if active is not None:
        if active.status != Status.OPEN:
            _status_change(active, Status.OPEN, at=at, reason="customer_replied")
        return active, "joined"
    window_start = at - timedelta(days=tenant.reopen_window_days)
    recent = _with_owner(
        conversations.filter(customer=customer, status=Status.RESOLVED, resolved_at__gte=window_start)
        .order_by("-resolved_at").first(),
        tenant, customer,
    )
    if recent is not None:
        _status_change(recent, Status.OPEN, at=at, reason="customer_replied")
        return recent, "reopened"
    subject = message.subject or message.body.strip().split("\n", 1)[0][:120]
    return conversation_open(tenant=tenant, customer=customer, channel=message.channel, inbox=inbox, subject=subject, at=at), "opened"


def _existing_delivery(tenant: Tenant, inbox: Inbox | None, external_id: str | None) -> TimelineEntry | None:
    if not external_id:
        return None
    # A bare id lookup first: this runs for every inbound message and almost never finds anything.
    found = list(
        TimelineEntry.objects.for_tenant(tenant).filter(inbox=inbox, external_id=external_id).values_list("pk", flat=True)[:1]
    )
    if not found:
        return None
    return TimelineEntry.objects.select_related("conversation").get(pk=found[0])


def _without_nul(message: InboundMessage) -> InboundMessage:
    """Postgres text and jsonb cannot hold NUL characters; senders put them in anyway."""
    return replace(
        message,
        body=strip_nul(message.body), subject=strip_nul(message.subject), sender_name=strip_nul(message.sender_name),
        sender_value=strip_nul(message.sender_value), external_id=strip_nul(message.external_id),
        data=strip_nul(message.data),
    )


def message_record_inbound(*, tenant: Tenant, inbox: Inbox | None, message: InboundMessage) -> InboundResult:
    """Store a customer's message on their one timeline. Safe to call again with the same external id.

    Raises InvalidIdentity (nothing stored) when the sender's address is impossible.
    """
    if message.channel not in Channel.values:
        raise ConversationError(f"{message.channel!r} is not a channel.")
    if message.kind not in (EntryKind.MESSAGE, EntryKind.CALL):
        raise ConversationError(f"{message.kind!r} is not something a customer sends.")
    if inbox is not None and inbox.tenant_id != tenant.pk:
        raise ConversationError("That inbox belongs to another tenant.")
    message = _without_nul(message)
    sender = normalize_identity(message.sender_kind, message.sender_value, region=tenant.default_region)
    # No savepoint of its own (two statements fewer on the busiest path): a database error inside rolls back
    # whatever encloses the call; a caller that goes on after one wraps it in its own atomic block, as the
    # Twilio receipt worker does. A refused sender raised above, outside any transaction.
    with transaction.atomic(savepoint=False):
        # One customer's messages are stored one at a time: two simultaneous messages cannot open two
        # conversations, and a re-delivery racing its original finds it after the lock.
        customer = customer_lock_for_identity(
            tenant=tenant, kind=message.sender_kind, normalized=sender, name=message.sender_name
        )
        duplicate = _existing_delivery(tenant, inbox, message.external_id)
        if duplicate is not None:
            return InboundResult(duplicate, duplicate.conversation, False, "duplicate")

        at = timezone.now()
        # A digit replying to a satisfaction survey is stored on the surveyed conversation, which stays resolved.
        csat_answer = csat_answer_from_inbound(tenant=tenant, customer=customer, inbox=inbox, message=message, at=at)
        if csat_answer is not None:
            return csat_answer
        conversation, continuity = _conversation_for_inbound(
            tenant=tenant, customer=customer, message=message, inbox=inbox, at=at
        )
        _note_channel(conversation, message.channel, actor=None, at=at)
        entry = TimelineEntry.objects.create(
            tenant=tenant,
            customer=customer,
            conversation=conversation,
            kind=message.kind,
            direction=Direction.INBOUND,
            channel=message.channel,
            inbox=inbox,
            body=message.body,
            data={**message.data, **({"subject": message.subject} if message.subject else {})},
            external_id=message.external_id or None,
            delivery_status=DeliveryStatus.RECEIVED,
            created_at=message.received_at or at,
            updated_at=at,
        )
        conversation.last_customer_message_at = at
        # Not for the message that opened the conversation: conversation.opened is that news, and the SLA
        # engine would otherwise compute the new conversation's clocks twice (a task each).
        started_waiting = conversation.waiting_since is None and continuity != "opened"
        conversation.waiting_since = conversation.waiting_since or at
        conversation.updated_at = at
        conversation.save()
        _emit_conversation(
            "message.created", conversation, entry_id=entry.pk, kind=entry.kind, direction=entry.direction,
            channel=entry.channel, started_waiting=started_waiting,
        )
    return InboundResult(entry, conversation, True, continuity)


@transaction.atomic
def message_record_outbound(
    *, tenant: Tenant, conversation: Conversation, author, channel: str, body: str, inbox: Inbox | None = None,
    data: dict[str, Any] | None = None, files: Sequence[OutgoingFile] = (), scheduled_at: datetime | None = None,
) -> TimelineEntry:
    """An agent's reply, stored as `queued`; the channel adapter sends it after commit.

    With `scheduled_at` it is stored as `scheduled` instead and counts as a reply only once
    `message_release_scheduled` lets it go.
    """
    if scheduled_at is not None:
        return _message_record_scheduled(
            tenant=tenant, conversation=conversation, author=author, channel=channel, body=body, inbox=inbox,
            data=data, files=files, scheduled_at=scheduled_at,
        )
    if channel not in Channel.values:
        raise ConversationError(f"{channel!r} is not a channel.")
    if not body.strip():
        raise ConversationError("A reply needs some text.")
    if inbox is not None and (inbox.tenant_id != tenant.pk or inbox.channel != channel):
        raise ConversationError("That inbox does not send on this channel for this tenant.")
    conversation = _lock_conversation(tenant, conversation)
    if conversation.status == Status.CLOSED:
        raise ConversationError(f"Conversation #{conversation.number} is closed; start a new one to write again.")
    at = timezone.now()
    _note_channel(conversation, channel, actor=author, at=at)
    entry = TimelineEntry.objects.create(
        tenant=tenant, customer=conversation.customer, conversation=conversation, kind=EntryKind.MESSAGE,
        direction=Direction.OUTBOUND, channel=channel, inbox=inbox, author=author, body=body,
        data=data or {}, delivery_status=DeliveryStatus.QUEUED, created_at=at, updated_at=at,
    )
    attachments_add(tenant=tenant, entry=entry, files=files)
    _reply_bookkeeping(conversation, entry, at=at)
    return entry


def _reply_bookkeeping(conversation: Conversation, entry: TimelineEntry, *, at: datetime) -> None:
    """What an agent's reply going out does to its (locked) conversation: response times, waiting, events."""
    channel, author_id = entry.channel, entry.author_id
    if conversation.first_response_at is None:
        conversation.first_response_at = at
        analytics_event_record(
            conversation=conversation, name=EventName.FIRST_RESPONSE, channel=channel, agent_id=author_id,
            inbox_id=entry.inbox_id, occurred_at=at, value_seconds=(at - conversation.created_at).total_seconds(),
        )
    if conversation.waiting_since is not None:
        analytics_event_record(
            conversation=conversation, name=EventName.REPLY, channel=channel, agent_id=author_id,
            inbox_id=entry.inbox_id, occurred_at=at, value_seconds=(at - conversation.waiting_since).total_seconds(),
        )
    conversation.waiting_since = None
    conversation.last_agent_message_at = at
    conversation.updated_at = at
    conversation.save()
    _emit_conversation(
        "message.created", conversation, entry_id=entry.pk, kind=entry.kind, direction=entry.direction, channel=channel,
        started_waiting=False,
    )


_UNSET: Any = object()


@transaction.atomic
def conversation_update(
    *, tenant: Tenant, conversation: Conversation, actor=None, priority: str = _UNSET, subject: str = _UNSET,
    tags: list[str] = _UNSET,
) -> Conversation:
    """Change priority, subject or tags; records what changed and emits conversation.updated once."""
    conversation = _lock_conversation(tenant, conversation)
    changed: dict[str, dict[str, Any]] = {}
    if priority is not _UNSET and priority != conversation.priority:
        if priority not in Priority.values:
            raise ConversationError(f"{priority!r} is not a priority ({', '.join(Priority.values)}).")
        changed["priority"] = {"from": conversation.priority, "to": priority}
        conversation.priority = priority
    if subject is not _UNSET and subject.strip()[:300] != conversation.subject:
        changed["subject"] = {"from": conversation.subject, "to": subject.strip()[:300]}
        conversation.subject = subject.strip()[:300]
    if tags is not _UNSET:
        cleaned = sorted({t.strip().lower()[:64] for t in tags if t and t.strip()})
        if cleaned != sorted(conversation.tags):
            changed["tags"] = {"from": sorted(conversation.tags), "to": cleaned}
            conversation.tags = cleaned
    if not changed:
        return conversation
    at = timezone.now()
    conversation.updated_at = at
    conversation.save(update_fields=["priority", "subject", "tags", "updated_at"])
    timeline_add_event(
        tenant=tenant, customer=conversation.customer, conversation=conversation, event="updated", actor=actor,
        data=changed, at=at,
    )
    _emit_conversation("conversation.updated", conversation, changed=sorted(changed))
    return conversation


@transaction.atomic
def note_add(
    *, tenant: Tenant, conversation: Conversation, author, body: str, files: Sequence[OutgoingFile] = ()
) -> TimelineEntry:
    if not body.strip():
        raise ConversationError("A note needs some text.")
    conversation = _lock_conversation(tenant, conversation)
    at = timezone.now()
    mentioned = _mentioned_user_ids(tenant, body, author)
    entry = TimelineEntry.objects.create(
        tenant=tenant, customer=conversation.customer, conversation=conversation, kind=EntryKind.NOTE,
        author=author, body=body, created_at=at, updated_at=at, data={"mentions": mentioned} if mentioned else {},
    )
    attachments_add(tenant=tenant, entry=entry, files=files)
    conversation.updated_at = at
    conversation.save(update_fields=["updated_at"])
    _emit_conversation("note.created", conversation, entry_id=entry.pk)
    if mentioned:
        _emit_conversation("mention.created", conversation, entry_id=entry.pk, notify_user_ids=mentioned)
    return entry


_MENTION = re.compile(r"(?<![\w.])@([\w.+-]+)")


def _mentioned_user_ids(tenant: Tenant, body: str, author) -> list[int]:
    """Teammates named in a note as @handle: the local part of their e-mail, or their display name without spaces."""
    handles = {match.lower().rstrip(".") for match in _MENTION.findall(body)}
    if not handles:
        return []
    found = []
    for membership in Membership.objects.for_tenant(tenant).select_related("user"):
        names = {membership.user.email.split("@")[0].lower(), membership.name.replace(" ", "").lower()}
        if names & handles and membership.user_id != getattr(author, "pk", None):
            found.append(membership.user_id)
    return sorted(found)


# Delivery statuses only move forward; providers' callbacks arrive out of order.
_DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0, DeliveryStatus.SENDING: 0, DeliveryStatus.SENT: 1, DeliveryStatus.DELIVERED: 2, DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
}


@transaction.atomic
def message_set_delivery_status(
    *, tenant: Tenant, entry: TimelineEntry, status: str, external_id: str | None = None, error_code: str = "",
    reason: str = "",
) -> TimelineEntry:
    if status not in _DELIVERY_RANK:
        raise ConversationError(f"{status!r} is not a delivery status.")
    entry = TimelineEntry.objects.for_tenant(tenant).select_for_update(no_key=True).get(pk=entry.pk)
    if external_id and entry.external_id != external_id:
        entry.external_id = external_id
    current = _DELIVERY_RANK.get(entry.delivery_status, -1)
    moved = _DELIVERY_RANK[status] > current
    if _DELIVERY_RANK[status] >= current:
        entry.delivery_status = status
        entry.error_code = error_code[:32]
        entry.failure_reason = reason[:500]
    entry.updated_at = timezone.now()
    try:
        with transaction.atomic():
            entry.save(update_fields=["external_id", "delivery_status", "error_code", "failure_reason", "updated_at"])
    except IntegrityError as exc:
        raise ConversationError(f"External id {external_id!r} is already used in this inbox.") from exc
    if moved and entry.conversation_id is not None:
        emit_on_commit(
            "message.status_changed", tenant_id=tenant.pk, conversation_id=entry.conversation_id,
            number=entry.conversation.number, entry_id=entry.pk, delivery_status=entry.delivery_status,
        )
    return entry


def attachment_filename(filename: str) -> str:
    """A name safe to store and to show: only the last path component of what a sender calls the file
    ("../../x.jpg" is "x.jpg"), without characters file systems or headers choke on."""
    base_name = PurePosixPath((filename or "").replace("\\", "/")).name
    try:
        safe_name = get_valid_filename(base_name) if base_name.strip(". ") else "attachment"
    except SuspiciousFileOperation:
        # Nothing usable left once unsafe characters are dropped (a name of control characters).
        safe_name = "attachment"
    return safe_name[:255]


def attachment_store(
    *, tenant: Tenant, entry: TimelineEntry, filename: str, content: bytes, content_type: str = "",
    source_url: str = "",
) -> Attachment:
    """Save a file through Django's storage API and link it to a timeline entry."""
    if entry.tenant_id != tenant.pk:
        raise ConversationError("That timeline entry belongs to another tenant.")
    safe_name = attachment_filename(filename)
    attachment = Attachment(
        tenant=tenant, entry=entry, filename=safe_name[:255], content_type=content_type[:127], size=len(content),
        source_url=source_url,
    )
    attachment.file.save(safe_name, ContentFile(content), save=False)
    attachment.save()
    return attachment


def attachments_add(*, tenant: Tenant, entry: TimelineEntry, files: Sequence[OutgoingFile]) -> list[Attachment]:
    """An agent's files on their reply or note. Files are written as the rows are; a rolled-back
    transaction leaves the file in storage without a row (harmless, and rare: limits are checked first)."""
    return [
        attachment_store(tenant=tenant, entry=entry, filename=f.name, content=f.content, content_type=f.content_type)
        for f in files
    ]


# --- Send later ------------------------------------------------------------------------------------

# How far ahead a reply may be scheduled; beyond that the context of the conversation has moved on.
SCHEDULE_MAX_AHEAD = timedelta(days=30)


def check_schedule_time(send_at: datetime, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    if send_at <= now:
        raise ConversationError("The time to send at has passed; choose a time in the future or send now.")
    if send_at > now + SCHEDULE_MAX_AHEAD:
        raise ConversationError(f"Replies can be scheduled at most {SCHEDULE_MAX_AHEAD.days} days ahead.")


def _message_record_scheduled(
    *, tenant: Tenant, conversation: Conversation, author, channel: str, body: str, inbox: Inbox | None,
    data: dict[str, Any] | None, files: Sequence[OutgoingFile], scheduled_at: datetime,
) -> TimelineEntry:
    if channel not in Channel.values:
        raise ConversationError(f"{channel!r} is not a channel.")
    if not body.strip():
        raise ConversationError("A reply needs some text.")
    if inbox is not None and (inbox.tenant_id != tenant.pk or inbox.channel != channel):
        raise ConversationError("That inbox does not send on this channel for this tenant.")
    check_schedule_time(scheduled_at)
    conversation = _lock_conversation(tenant, conversation)
    if conversation.status == Status.CLOSED:
        raise ConversationError(f"Conversation #{conversation.number} is closed; start a new one to write again.")
    at = timezone.now()
    entry = TimelineEntry.objects.create(
        tenant=tenant, customer=conversation.customer, conversation=conversation, kind=EntryKind.MESSAGE,
        direction=Direction.OUTBOUND, channel=channel, inbox=inbox, author=author, body=body, data=data or {},
        delivery_status=DeliveryStatus.SCHEDULED, scheduled_at=scheduled_at, created_at=at, updated_at=at,
    )
    attachments_add(tenant=tenant, entry=entry, files=files)
    # Not a reply yet: response times, waiting and the SLA clocks move when it goes out.
    _emit_conversation("message.scheduled", conversation, entry_id=entry.pk, scheduled_at=scheduled_at.isoformat())
    return entry


def _lock_scheduled(tenant: Tenant, entry_id: int) -> tuple[Conversation, TimelineEntry] | None:
    """The conversation, then the scheduled entry, locked (the order every writer of both uses)."""
    conversation_id = (
        TimelineEntry.objects.for_tenant(tenant).filter(pk=entry_id, delivery_status=DeliveryStatus.SCHEDULED)
        .values_list("conversation_id", flat=True).first()
    )
    if conversation_id is None:
        return None
    conversation = (
        Conversation.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
        .select_related("customer", "tenant").get(pk=conversation_id)
    )
    entry = (
        TimelineEntry.objects.for_tenant(tenant).select_for_update(no_key=True)
        .filter(pk=entry_id, conversation=conversation, delivery_status=DeliveryStatus.SCHEDULED).first()
    )
    # Merged away between the two reads: the caller's next attempt finds it in its new conversation.
    return (conversation, entry) if entry is not None else None


@transaction.atomic
def message_release_scheduled(*, tenant: Tenant, entry_id: int) -> TimelineEntry | None:
    """A due scheduled reply becomes an ordinary queued one, exactly once; None when it is no longer
    scheduled (cancelled, refused, or released by another worker). The caller hands it to delivery."""
    locked = _lock_scheduled(tenant, entry_id)
    if locked is None:
        return None
    conversation, entry = locked
    at = timezone.now()
    if conversation.status == Status.CLOSED:
        _scheduled_failed(conversation, entry, f"Not sent: conversation #{conversation.number} was closed before {at:%Y-%m-%d %H:%M} UTC.")
        return None
    _note_channel(conversation, entry.channel, actor=entry.author, at=at)
    # It takes its place on the timeline when it goes out, after whatever the customer wrote meanwhile.
    entry.delivery_status = DeliveryStatus.QUEUED
    entry.created_at = at
    entry.updated_at = at
    entry.save(update_fields=["delivery_status", "created_at", "updated_at"])
    _reply_bookkeeping(conversation, entry, at=at)
    return entry


def _scheduled_failed(conversation: Conversation, entry: TimelineEntry, reason: str, code: str = "refused") -> None:
    entry.delivery_status = DeliveryStatus.FAILED
    entry.error_code = code
    entry.failure_reason = reason[:500]
    entry.updated_at = timezone.now()
    entry.save(update_fields=["delivery_status", "error_code", "failure_reason", "updated_at"])
    _emit_conversation("message.failed", conversation, entry_id=entry.pk, reason=entry.failure_reason)


@transaction.atomic
def message_fail_scheduled(*, tenant: Tenant, entry_id: int, reason: str) -> bool:
    """A scheduled reply the channel refuses at its time (WhatsApp window closed, opted out): failed,
    with the reason on the timeline. False when it was no longer scheduled."""
    locked = _lock_scheduled(tenant, entry_id)
    if locked is None:
        return False
    _scheduled_failed(*locked, reason)
    return True


@transaction.atomic
def message_cancel_scheduled(*, tenant: Tenant, conversation: Conversation, entry_id: int, actor=None) -> TimelineEntry:
    """Cancel a reply that has not gone out yet. Cancelling it again changes nothing."""
    entry = (
        TimelineEntry.objects.for_tenant(tenant)
        .filter(pk=entry_id, conversation_id=conversation.pk, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND)
        .first()
    )
    if entry is None or (entry.scheduled_at is None and entry.delivery_status != DeliveryStatus.SCHEDULED):
        raise ConversationError("There is no scheduled reply with that id in this conversation.")
    if entry.delivery_status == DeliveryStatus.CANCELLED:
        return entry
    locked = _lock_scheduled(tenant, entry_id)
    if locked is None:
        entry.refresh_from_db()
        if entry.delivery_status == DeliveryStatus.CANCELLED:
            return entry
        raise ConversationError(
            f"Too late to cancel: the reply is already {entry.get_delivery_status_display().lower()}."
        )
    entry = locked[1]
    at = timezone.now()
    entry.delivery_status = DeliveryStatus.CANCELLED
    entry.data = {**entry.data, "cancelled_by": getattr(actor, "pk", None), "cancelled_at": at.isoformat()}
    entry.updated_at = at
    entry.save(update_fields=["delivery_status", "data", "updated_at"])
    _emit_conversation("message.cancelled", locked[0], entry_id=entry.pk)
    return entry


def scheduled_due_ids(*, until: datetime, limit: int = 1000) -> list[tuple[int, int, datetime]]:
    """(tenant id, entry id, scheduled_at) of scheduled replies due by `until`, oldest first, every tenant (the sweeper)."""
    return list(
        TimelineEntry.objects.filter(delivery_status=DeliveryStatus.SCHEDULED, scheduled_at__lte=until)
        .order_by("scheduled_at").values_list("tenant_id", "pk", "scheduled_at")[:limit]
    )


# --- Merging conversations -------------------------------------------------------------------------


def conversation_merge_refusal(
    *, tenant: Tenant, survivor: Conversation, merged: Conversation, at: datetime | None = None
) -> str:
    """Why `merged` cannot go into `survivor`, or "" when it can (no queries: the page offers the
    candidates with it, and conversation_merge checks again under the row locks)."""
    at = at or timezone.now()
    if merged.customer_id != survivor.customer_id:
        return (
            f"#{merged.number} belongs to another customer ({merged.customer}); only conversations of the same "
            "customer can be merged. If they are one person, merge the customers first."
        )
    if survivor.merged_into_id is not None:
        return f"#{survivor.number} was itself merged into another conversation; merge into that one."
    if survivor.status == Status.CLOSED:
        return f"#{survivor.number} is closed; merge into an active conversation."
    if merged.merged_into_id is not None:
        return f"#{merged.number} was already merged into another conversation."
    if merged.status == Status.CLOSED:
        return f"#{merged.number} is closed; closed conversations stay as they are."
    window = timedelta(days=tenant.reopen_window_days)
    if merged.status == Status.RESOLVED and (merged.resolved_at is None or merged.resolved_at < at - window):
        return (
            f"#{merged.number} was resolved more than {window.days} days ago; only active or recently resolved "
            "conversations can be merged."
        )
    return ""


@transaction.atomic
def conversation_merge(*, tenant: Tenant, survivor: Conversation, merged: Conversation, actor=None) -> Conversation:
    """Move `merged`'s timeline into `survivor` (same customer) and close it with a note of where it went.

    The survivor keeps its assignment, team, status and SLA. Merging the same pair again changes nothing.
    """
    if survivor.pk == merged.pk:
        raise ConversationError("A conversation cannot be merged into itself.")
    # Both rows locked in id order, so two merges of the same pair in opposite directions cannot deadlock.
    locked = {
        c.pk: c
        for c in Conversation.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
        .select_related("customer", "tenant").filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")
    }
    if len(locked) != 2:
        raise ConversationError("Both conversations must belong to this workspace.")
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if merged.merged_into_id == survivor.pk:
        return survivor
    at = timezone.now()
    refusal = conversation_merge_refusal(tenant=tenant, survivor=survivor, merged=merged, at=at)
    if refusal:
        raise ConversationError(refusal)

    moved = TimelineEntry.objects.for_tenant(tenant).filter(conversation=merged).update(conversation=survivor)
    survivor.tags = sorted({*survivor.tags, *merged.tags})
    survivor.channels = list(dict.fromkeys([*survivor.channels, *merged.channels]))
    survivor.last_customer_message_at = _latest(survivor.last_customer_message_at, merged.last_customer_message_at)
    survivor.last_agent_message_at = _latest(survivor.last_agent_message_at, merged.last_agent_message_at)
    survivor.updated_at = at
    survivor.save(update_fields=["tags", "channels", "last_customer_message_at", "last_agent_message_at", "updated_at"])

    merged.merged_into = survivor
    _status_change(merged, Status.CLOSED, actor=actor, at=at, reason="merged")
    merged.save()
    details = {
        "survivor_id": survivor.pk, "survivor_number": survivor.number,
        "merged_id": merged.pk, "merged_number": merged.number, "entries_moved": moved,
    }
    timeline_add_event(
        tenant=tenant, customer=merged.customer, conversation=merged, event="conversation_merged_into", actor=actor,
        data=details, at=at,
    )
    timeline_add_event(
        tenant=tenant, customer=survivor.customer, conversation=survivor, event="conversation_merged", actor=actor,
        data=details, at=at,
    )
    audit_record(tenant=tenant, actor=actor, action="conversation.merge", target=survivor, details=details)
    _emit_conversation("conversation.merged", survivor, merged_conversation_id=merged.pk, merged_number=merged.number)
    return survivor


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)
