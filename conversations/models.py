from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import Case, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from channels_app.models import Channel
from omnidesk.lib.tenancy import TenantOwned


class Status(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending (waiting on customer)"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


ACTIVE_STATUSES = (Status.OPEN, Status.PENDING, Status.SNOOZED)


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Conversation(TenantOwned):
    number = models.PositiveIntegerField(help_text="Sequential per tenant, shown as #123.")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_conversations"
    )
    team = models.ForeignKey("routing.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    subject = models.CharField(max_length=300, blank=True)
    first_channel = models.CharField(max_length=16, choices=Channel.choices)
    last_channel = models.CharField(max_length=16, choices=Channel.choices)
    first_inbox = models.ForeignKey(
        "channels_app.Inbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    last_agent_message_at = models.DateTimeField(null=True, blank=True)
    # When the customer started waiting for a reply; None while the ball is in the customer's court.
    waiting_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Every channel the conversation has used, in order of first use (the list's channel icons and filter).
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list, blank=True)
    # Urgent 0 ... low 3, computed by Postgres, so the list sorts "urgent first" on an index.
    priority_order = models.GeneratedField(
        expression=Case(
            When(priority=Priority.URGENT, then=Value(0)), When(priority=Priority.HIGH, then=Value(1)),
            When(priority=Priority.NORMAL, then=Value(2)), default=Value(3),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )
    # SLA due times, kept by routing's SLA engine; here so queues and lists sort on them cheaply.
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # Set when this conversation was merged into another (it is closed then; its entries live there).
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="conversation_unique_number")]
        indexes = [
            # The workspace list's order (longest waiting first: waiting_since ASC is NULLS LAST in Postgres),
            # so a page is an index range scan: per status, per assignee (Mine, Unassigned), by priority.
            models.Index(fields=["tenant", "status", "waiting_since", "-updated_at", "-id"], name="conv_list_waiting"),
            models.Index(
                fields=["tenant", "assignee", "status", "waiting_since", "-updated_at", "-id"], name="conv_list_assignee"
            ),
            # An agent's teams' conversations (the "My teams" view and that part of what an agent may see).
            models.Index(fields=["tenant", "team", "status", "waiting_since", "-updated_at", "-id"], name="conv_list_team"),
            models.Index(
                fields=["tenant", "status", "priority_order", "waiting_since", "-updated_at", "-id"], name="conv_list_priority"
            ),
            # The "SLA at risk" view: the soonest running due time (LEAST skips NULLs).
            models.Index(
                "tenant", "status", Least("first_response_due_at", "next_response_due_at", "resolution_due_at"),
                name="conv_sla_due",
            ),
            models.Index(fields=["tenant", "customer", "status"], name="conv_tenant_customer_status"),
            models.Index(fields=["tenant", "-updated_at"], name="conv_tenant_updated"),
            GinIndex(fields=["tags"], name="conv_tags"),
            # The CSAT sweeper's window of recent resolves, every tenant's (conversations.csat.csat_surveys_due).
            models.Index(fields=["resolved_at"], condition=models.Q(status="resolved"), name="conv_resolved_at"),
            # The live overview, agent board and backlog aggregate the active conversations only: a narrow copy of
            # their columns answers those counts by index-only scans instead of visiting a large table's pages.
            models.Index(
                fields=["tenant", "last_channel", "waiting_since"],
                include=["id", "status", "assignee", "team", "created_at", "updated_at", "number", "customer",
                         "first_inbox", "first_response_due_at", "next_response_due_at", "resolution_due_at"],
                condition=models.Q(status__in=ACTIVE_STATUSES),
                name="conv_active_live",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"


class ConversationRead(TenantOwned):
    """When a member last opened a conversation; the list shows it unread if the customer wrote since."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    last_read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "conversation"], name="conversation_read_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.conversation_id} at {self.last_read_at:%Y-%m-%d %H:%M}"


class SavedFilter(TenantOwned):
    """A member's named workspace list: a view with its filters and sort, kept as the list's query string."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user", "name"], name="saved_filter_unique_name")]

    def __str__(self) -> str:
        return self.name


class EntryKind(models.TextChoices):
    MESSAGE = "message", "Message"
    NOTE = "note", "Internal note"
    CALL = "call", "Call"
    EVENT = "event", "System event"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    # A reply to send later: stored and shown, sent at `scheduled_at` unless cancelled first.
    SCHEDULED = "scheduled", "Scheduled"
    CANCELLED = "cancelled", "Cancelled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class TimelineEntry(TenantOwned):
    """One thing that happened with a customer: a message on any channel, a note, a call, a system event.

    `conversation` is empty only for customer-level events (a merge), which show on all of the
    customer's conversations.
    """

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="timeline")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="entries"
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    inbox = models.ForeignKey("channels_app.Inbox", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(blank=True)
    event = models.CharField(max_length=64, blank=True, help_text="For system events: what happened.")
    data = models.JSONField(default=dict, blank=True)
    # The provider's id (Twilio MessageSid, e-mail Message-ID…): a re-delivered webhook finds its twin.
    external_id = models.CharField(max_length=255, null=True, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="For a reply sent later: when it goes out.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "timeline entries"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "inbox", "external_id"],
                condition=models.Q(external_id__isnull=False),
                # Messages without an inbox (API imports) must be unique too: NULL inboxes compare equal.
                nulls_distinct=False,
                name="entry_unique_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="entry_conversation_time"),
            models.Index(fields=["tenant", "customer", "created_at"], name="entry_customer_time"),
            # E-mail threading finds a Message-ID whatever inbox it went through.
            models.Index(fields=["tenant", "external_id"], name="entry_tenant_external_id"),
            # Workspace search over message and note text ("simple": no language guessing across tenants).
            GinIndex(SearchVector("body", config="simple"), name="entry_body_search"),
            # The sweeper's "scheduled replies now due": only the few waiting rows are indexed.
            models.Index(
                fields=["scheduled_at"], condition=models.Q(delivery_status="scheduled"), name="entry_scheduled_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.tenant_id}/{timezone.now():%Y/%m}/{filename}"


class Attachment(TenantOwned):
    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=500)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    source_url = models.URLField(max_length=1000, blank=True, help_text="Where the provider served it from.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class CannedResponse(TenantOwned):
    """A saved reply agents insert by shortcut; {customer_name}, {customer_first_name} and {agent_name} are filled in."""

    shortcut = models.SlugField(max_length=40, help_text="Typed as /shortcut in the composer.")
    title = models.CharField(max_length=120)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["shortcut"]
        constraints = [models.UniqueConstraint(fields=["tenant", "shortcut"], name="canned_unique_shortcut")]

    def __str__(self) -> str:
        return f"/{self.shortcut} — {self.title}"


def new_csat_token() -> str:
    # 256 random bits: the survey's only credential in public links, never derived from ids.
    return secrets.token_urlsafe(32)


class CsatSurvey(TenantOwned):
    """The satisfaction survey of a resolved conversation: at most one per conversation, ever.

    A survey the channel refused (opted out, WhatsApp window closed) is kept with the reason, so a later
    resolve does not try again. The latest answer counts; `score`/`comment` hold it.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="csat_surveys")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    inbox = models.ForeignKey("channels_app.Inbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The identity value it went to (E.164, e-mail, chat visitor); an SMS answer must come from it.
    recipient = models.CharField(max_length=320, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_csat_token, editable=False)
    sent_entry = models.ForeignKey(TimelineEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When it was handed to the channel.")
    refused_reason = models.CharField(max_length=500, blank=True, help_text="Why it was not sent, if it was not.")
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True, help_text="When the latest answer came.")
    answered_via = models.CharField(max_length=16, blank=True, help_text="reply, link, form or widget.")
    answer_entry = models.ForeignKey(TimelineEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "CSAT survey"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "conversation"], name="csat_one_per_conversation"),
            models.CheckConstraint(condition=models.Q(score__isnull=True) | models.Q(score__gte=1, score__lte=5),
                                   name="csat_score_1_to_5"),
        ]
        indexes = [
            # An SMS/WhatsApp reply looks for the latest survey sent to its sender on its channel.
            models.Index(fields=["tenant", "channel", "recipient", "-sent_at"], name="csat_recipient_recent"),
        ]

    def __str__(self) -> str:
        return f"CSAT of {self.conversation_id}: {self.score or '-'}"
