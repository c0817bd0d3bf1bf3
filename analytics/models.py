from __future__ import annotations

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
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["tenant", "name", "occurred_at"], name="analytics_tenant_name_time")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"
