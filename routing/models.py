"""Routing and SLA configuration (set by admins) and per-conversation routing/SLA state (kept by the engine)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from channels_app.models import Channel
from conversations.models import Priority
from customers.models import Tier, validate_time_zone
from omnidesk.lib.tenancy import TenantOwned


class BusinessCalendar(TenantOwned):
    """Opening hours in a time zone: several intervals per weekday (split shifts) and holidays."""

    name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    holiday_country = models.CharField(
        max_length=8, blank=True, help_text="Also close on this country's public holidays (the `holidays` package), e.g. US, DE."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="calendar_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class CalendarInterval(TenantOwned):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="intervals")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="00:00 means midnight at the end of the day.")

    class Meta:
        ordering = ["calendar", "weekday", "start"]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class Holiday(TenantOwned):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class AssignmentMethod(models.TextChoices):
    LEAST_BUSY = "least_busy", "Least busy (most spare capacity on the channel)"
    ROUND_ROBIN = "round_robin", "Round robin (longest since last assignment)"


class Team(TenantOwned):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField("customers.Membership", blank=True, related_name="teams")
    assignment_method = models.CharField(
        max_length=16, choices=AssignmentMethod.choices, default=AssignmentMethod.LEAST_BUSY
    )
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    skills_relax_after_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="After this long in the queue, any team member may take a conversation."
    )
    requeue_offline_after_seconds = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Re-queue an agent's open conversations when they stay offline this long (empty: never).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name


class Skill(TenantOwned):
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="skill_unique_name")]

    def __str__(self) -> str:
        return self.name


class Presence(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


def default_capacity() -> dict[str, int]:
    return {Channel.CHAT: 3, Channel.SMS: 5, Channel.WHATSAPP: 5, Channel.EMAIL: 10, Channel.VOICE: 1, Channel.API: 10}


class AgentProfile(TenantOwned):
    """How an agent takes work in one tenant: capacity per channel, languages, presence, hours."""

    membership = models.OneToOneField("customers.Membership", on_delete=models.CASCADE, related_name="agent_profile")
    capacity = models.JSONField(
        default=default_capacity,
        help_text='Open conversations at once per channel, e.g. {"chat": 3, "sms": 5}; 0 or missing = never.',
    )
    languages = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    presence_changed_at = models.DateTimeField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    phone_number = models.CharField(max_length=32, blank=True, help_text="E.164 number rung for voice calls.")
    client_identity = models.CharField(max_length=64, blank=True, help_text="Twilio Client identity of the browser softphone.")

    class Meta:
        indexes = [models.Index(fields=["tenant", "presence"], name="agent_tenant_presence")]

    def __str__(self) -> str:
        return f"Agent profile of {self.membership.user}"

    def capacity_for(self, channel: str) -> int:
        return int((self.capacity or {}).get(channel, 0) or 0)


class AgentSkill(TenantOwned):
    agent = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="skills")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(5)])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "skill"], name="agent_skill_unique")]

    def __str__(self) -> str:
        return f"{self.skill} ({self.level})"


class BusinessHoursCondition(models.TextChoices):
    ANY = "any", "Any time"
    OPEN = "open", "Within business hours"
    CLOSED = "closed", "Outside business hours"


class SlaPolicy(TenantOwned):
    """Targets per priority; ordered with conditions, first match wins."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=100, help_text="Lower positions are tried first.")
    is_active = models.BooleanField(default=True)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list, blank=True)
    priorities = ArrayField(models.CharField(max_length=16, choices=Priority.choices), default=list, blank=True)
    tiers = ArrayField(models.CharField(max_length=16, choices=Tier.choices), default=list, blank=True)
    inboxes = models.ManyToManyField("channels_app.Inbox", blank=True, related_name="+")
    calendar = models.ForeignKey(
        BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Business-hours targets count time on this calendar (empty: calendar hours).",
    )
    at_risk_share = models.FloatField(
        default=0.75, validators=[MinValueValidator(0.05), MaxValueValidator(0.99)],
        help_text="Warn when this share of a target has elapsed.",
    )
    escalate_raise_priority = models.BooleanField(default=False)
    escalate_to_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escalate_notify_emails = ArrayField(models.EmailField(), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return self.name


class SlaMetric(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    NEXT_RESPONSE = "next_response", "Next response"
    RESOLUTION = "resolution", "Resolution"


class SlaTarget(TenantOwned):
    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=16, choices=Priority.choices)
    metric = models.CharField(max_length=16, choices=SlaMetric.choices)
    seconds = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    business_hours = models.BooleanField(default=True, help_text="Count only the policy calendar's open hours.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority", "metric"], name="sla_target_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.priority}: {self.seconds}s"


class RoutingRule(TenantOwned):
    """Ordered, first match wins. Empty conditions match everything."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=100, help_text="Lower positions are tried first.")
    is_active = models.BooleanField(default=True)
    # Conditions
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list, blank=True)
    inboxes = models.ManyToManyField("channels_app.Inbox", blank=True, related_name="+")
    keywords = models.TextField(
        blank=True, help_text="One per line: a word or phrase, or /a regular expression/, matched in the first message."
    )
    languages = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    tiers = ArrayField(models.CharField(max_length=16, choices=Tier.choices), default=list, blank=True)
    business_hours = models.CharField(
        max_length=8, choices=BusinessHoursCondition.choices, default=BusinessHoursCondition.ANY
    )
    business_calendar = models.ForeignKey(
        BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True, help_text="All of these tags present.")
    # Actions
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    required_skills = models.ManyToManyField(Skill, blank=True, related_name="+")
    set_priority = models.CharField(max_length=16, choices=Priority.choices, blank=True)
    add_tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    set_sla_policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class ConversationRouting(TenantOwned):
    """The engine's state for one conversation: what rule matched, what it needs, where it waits."""

    conversation = models.OneToOneField("conversations.Conversation", on_delete=models.CASCADE, related_name="routing")
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    required_skills = models.ManyToManyField(Skill, blank=True, related_name="+")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Waiting in the team queue since.")
    skills_relax_at = models.DateTimeField(null=True, blank=True)
    routed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_agent = models.ForeignKey(
        "customers.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["tenant", "queued_at"], name="routing_tenant_queued")]

    def __str__(self) -> str:
        return f"Routing of conversation {self.conversation_id}"


class ConversationSla(TenantOwned):
    """The SLA clock of one conversation; the due times themselves are copied onto the conversation."""

    conversation = models.OneToOneField("conversations.Conversation", on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Pending or snoozed since (the clock stops).")
    paused_seconds = models.FloatField(default=0)
    state = models.JSONField(
        default=dict, blank=True, help_text="Per metric: at_risk/breached/met timestamps, so each fires once."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SLA of conversation {self.conversation_id}"
