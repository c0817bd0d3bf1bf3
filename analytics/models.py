from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from omnidesk.lib.tenancy import TenantOwned


class EventName(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    REPLY = "reply", "Reply"
    RESOLUTION = "resolution", "Resolution"
    REOPEN = "reopen", "Reopen"
    CHANNEL_SWITCH = "channel_switch", "Channel switch"
    ASSIGNMENT = "assignment", "Assignment"
    SLA_MET = "sla_met", "SLA target met"
    SLA_MISSED = "sla_missed", "SLA target missed"
    CONVERSATION_OPENED = "conversation_opened", "Conversation opened"
    CALL_HANDLED = "call_handled", "Call handled"
    CSAT_SENT = "csat_sent", "CSAT survey sent"
    CSAT_ANSWER = "csat_answer", "CSAT answer"


class AnalyticsEvent(TenantOwned):
    """One reportable moment, written in the same transaction as the change it reports. Append-only.

    Dimensions are copied in (not joined later) so reports stay right after a conversation moves on.
    """

    name = models.CharField(max_length=32, choices=EventName.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer_id_snapshot = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=16, blank=True)
    inbox_id_snapshot = models.BigIntegerField(null=True)
    team_id_snapshot = models.BigIntegerField(null=True)
    agent_id_snapshot = models.BigIntegerField(null=True)
    customer_tier = models.CharField(max_length=16, blank=True)
    value_seconds = models.FloatField(null=True, help_text="The duration measured, in wall-clock seconds.")
    business_seconds = models.FloatField(
        null=True,
        help_text="The same duration counted on the conversation's business-hours calendar (its SLA policy's, "
        "else the tenant's analytics calendar, else 24/7).",
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            # A tenant's events of one kind in a time range, with their conversations: the drill-down from a report
            # number to its conversations reads this index alone (a semi-join on conversation ids).
            models.Index(fields=["tenant", "name", "occurred_at"], include=["conversation"], name="analytics_name_time_conv"),
            # A conversation's own events: drill-downs, first-contact resolution and handle time at resolution.
            models.Index(fields=["conversation", "name", "occurred_at"], name="analytics_conversation_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class AnalyticsSettings(TenantOwned):
    """Per-tenant analytics configuration: the calendar business-hours durations fall back to."""

    default_calendar = models.ForeignKey(
        "routing.BusinessCalendar", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Business-hours durations of conversations without an SLA calendar count on this one "
        "(empty: around the clock).",
    )

    class Meta:
        verbose_name_plural = "analytics settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="analytics_settings_one_per_tenant")]

    def __str__(self) -> str:
        return f"Analytics settings of tenant {self.tenant_id}"


class RollupLevel(models.TextChoices):
    FULL = "full", "Every dimension"
    AGENT = "agent", "Per channel, team and agent"
    TEAM = "team", "Per channel and team"
    CHANNEL = "channel", "Per channel only"


class AnalyticsRollup(TenantOwned):
    """Sums of analytics facts per tenant-local day (or hour) and dimensions; kept by `analytics.rollups`.

    Four levels, so a report reads the fewest rows that carry what it filters on: `full` rows carry channel,
    inbox, team, agent and tier (inbox and tier filters); `agent` rows channel, team and agent (an agent filter,
    agents' and supervisors' own scopes); `team` rows channel and team; `channel` rows the channel alone (the
    unfiltered dashboards). Rows are per day (`hour` = -1); `channel` rows also per hour for every metric, the
    others per hour for arrivals (`new`, the heatmap) only. Missing ids are 0, a missing tier is "", so the unique key has no NULLs and
    `INSERT ... ON CONFLICT` finds its row. `hist`/`business_hist` count durations per log-spaced bucket
    (see `analytics.rollups.bucket_bounds`); the arrays are 1-based, index = bucket + 1, NULL = 0.
    """

    day = models.DateField()
    hour = models.SmallIntegerField(default=-1, help_text="Local hour 0-23, or -1 for the whole day.")
    level = models.CharField(max_length=8, choices=RollupLevel.choices)
    channel = models.CharField(max_length=16, blank=True)
    inbox_id = models.BigIntegerField(default=0)
    team_id = models.BigIntegerField(default=0)
    agent_id = models.BigIntegerField(default=0)
    tier = models.CharField(max_length=16, blank=True)
    metric = models.CharField(max_length=40)
    count = models.BigIntegerField(default=0)
    total = models.FloatField(default=0, help_text="Sum of the facts' values (seconds, or CSAT scores).")
    business_total = models.FloatField(default=0)
    hist = ArrayField(models.IntegerField(null=True), null=True, blank=True)
    business_hist = ArrayField(models.IntegerField(null=True), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "level", "day", "hour", "channel", "inbox_id", "team_id", "agent_id", "tier", "metric"],
                name="analytics_rollup_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "level", "hour", "day"], name="analytics_rollup_range"),
            # One agent's rows (an agent's own report, the one-agent filter) without reading their teammates'.
            models.Index(fields=["tenant", "level", "agent_id", "hour", "day"], name="analytics_rollup_agent"),
            # Rows emptied by a revised event, found at once to be deleted (they exist only for that moment).
            models.Index(fields=["tenant"], condition=models.Q(count=0), name="analytics_rollup_emptied"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.day} {self.channel or 'all'}: {self.count}"


class PresenceSpan(TenantOwned):
    """An agent's presence from one change to the next (ended_at empty while it lasts): presence time reports."""

    membership = models.ForeignKey("customers.Membership", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    presence = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["tenant", "started_at"], name="presence_span_tenant_start")]
        constraints = [
            # One running span per agent: a change closes it before opening the next.
            models.UniqueConstraint(
                fields=["tenant", "membership"], condition=models.Q(ended_at__isnull=True), name="presence_span_one_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.presence} from {self.started_at:%Y-%m-%d %H:%M}"
