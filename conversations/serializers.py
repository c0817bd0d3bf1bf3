"""REST API bodies for conversations, their timeline and new messages."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from channels_app.models import Channel, Inbox
from conversations.models import (
    Attachment,
    Conversation,
    DeliveryStatus,
    Direction,
    Priority,
    Status,
    TimelineEntry,
)
from customers.models import Membership
from routing.models import Team

MAX_TAGS = 50
# Message, note and call data an integration may see; the rest (raw HTML, provider media and recording URLs,
# parser internals) stays inside. System events' data is ours and goes out whole.
SAFE_ENTRY_DATA = (
    "from", "to", "cc", "subject", "message_id", "in_reply_to", "mentions", "template",
    "status", "duration", "answered_at", "ended_at", "voicemail", "call_back", "transcript",
)


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The user id (what `assignee` takes).")
    name = serializers.CharField()


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CustomerSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    tier = serializers.CharField()


class SlaSerializer(serializers.Serializer):
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    next_response_due_at = serializers.DateTimeField(allow_null=True)
    resolution_due_at = serializers.DateTimeField(allow_null=True)


def _person(user_id: int | None, people: dict[int, str]) -> dict | None:
    return None if user_id is None else {"id": user_id, "name": people.get(user_id, f"User {user_id}")}


class ConversationSerializer(serializers.ModelSerializer):
    """`context["people"]`: user id -> display name of the tenant's members (one query per request)."""

    customer = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    sla = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id", "number", "subject", "customer", "status", "snoozed_until", "priority", "assignee", "team", "tags",
            "channels", "first_channel", "last_channel", "sla", "waiting_since", "first_response_at",
            "last_customer_message_at", "last_agent_message_at", "resolved_at", "reopen_count", "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CustomerSummarySerializer)
    def get_customer(self, conversation: Conversation) -> dict:
        customer = conversation.customer
        return {"id": customer.pk, "name": str(customer), "tier": customer.tier}

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_assignee(self, conversation: Conversation) -> dict | None:
        return _person(conversation.assignee_id, self.context["people"])

    @extend_schema_field(TeamRefSerializer(allow_null=True))
    def get_team(self, conversation: Conversation) -> dict | None:
        team = conversation.team
        return None if team is None else {"id": team.pk, "name": team.name}

    @extend_schema_field(SlaSerializer)
    def get_sla(self, conversation: Conversation) -> dict:
        return SlaSerializer(conversation).data


class ConversationUpdateSerializer(serializers.Serializer):
    """`context["tenant"]`: ids are looked up within it, so another tenant's is a field error, never applied."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    snoozed_until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="With status `snoozed`: when it wakes up (in the future)."
    )
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="The user id of a member of this tenant, or null to unassign.",
    )
    team = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1, help_text="A team id, or null for none."
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=MAX_TAGS,
        help_text="Replaces the tags (stored lower-case, without duplicates).",
    )
    subject = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate_assignee(self, value: int | None):
        if value is None:
            return None
        membership = (
            Membership.objects.for_tenant(self.context["tenant"]).select_related("user").filter(user_id=value).first()
        )
        if membership is None:
            raise serializers.ValidationError(f"No member of this tenant has the user id {value}.")
        return membership.user

    def validate_team(self, value: int | None):
        if value is None:
            return None
        team = Team.objects.for_tenant(self.context["tenant"]).filter(pk=value).first()
        if team is None:
            raise serializers.ValidationError(f"This tenant has no team with the id {value}.")
        return team

    def validate(self, attrs):
        if attrs.get("status") == Status.SNOOZED:
            until = attrs.get("snoozed_until")
            if until is None or until <= timezone.now():
                raise serializers.ValidationError({"snoozed_until": ["Snoozing needs a time in the future to wake up at."]})
        elif attrs.get("snoozed_until") is not None:
            raise serializers.ValidationError({"snoozed_until": ["Give snoozed_until only with status snoozed."]})
        return attrs


class AttachmentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="filename")
    url = serializers.SerializerMethodField(help_text="The member-checked download (needs a signed-in session).")

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "content_type", "url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, attachment: Attachment) -> str:
        path = reverse("workspace:attachment", kwargs={"attachment_id": attachment.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class TimelineEntrySerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField()
    attachments = AttachmentSerializer(many=True, read_only=True)
    conversation = serializers.SerializerMethodField(help_text="Its number; null for customer-level events (merges).")
    # Blank on entries without them (notes, system events); declared so the schema allows "" (read-only model
    # fields lose allow_blank).
    channel = serializers.ChoiceField(choices=Channel.choices, allow_blank=True, read_only=True)
    direction = serializers.ChoiceField(choices=Direction.choices, allow_blank=True, read_only=True)
    delivery_status = serializers.ChoiceField(choices=DeliveryStatus.choices, allow_blank=True, read_only=True)

    class Meta:
        model = TimelineEntry
        fields = [
            "id", "conversation", "kind", "channel", "direction", "inbox", "author", "body", "event", "data",
            "delivery_status", "error_code", "failure_reason", "scheduled_at", "attachments", "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_author(self, entry: TimelineEntry) -> dict | None:
        return _person(entry.author_id, self.context["people"])

    @extend_schema_field(serializers.DictField(child=serializers.JSONField()))
    def get_data(self, entry: TimelineEntry) -> dict:
        if entry.kind == "event":
            return entry.data
        return {key: value for key, value in entry.data.items() if key in SAFE_ENTRY_DATA}

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_conversation(self, entry: TimelineEntry) -> int | None:
        return self.context["numbers"].get(entry.conversation_id)


class MessageCreateSerializer(serializers.Serializer):
    """`context["tenant"]`: the inbox is looked up within it."""

    text = serializers.CharField(max_length=20000, trim_whitespace=False)
    private = serializers.BooleanField(default=False, help_text="True: an internal note the customer never sees.")
    channel = serializers.ChoiceField(
        choices=Channel.choices, required=False, help_text="Reply on this channel (from the inbox the customer last used)."
    )
    inbox = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Reply from this inbox (its channel)."
    )

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Write some text.")
        return value

    def validate_inbox(self, value: int) -> Inbox:
        inbox = Inbox.objects.for_tenant(self.context["tenant"]).filter(pk=value, is_active=True).first()
        if inbox is None:
            raise serializers.ValidationError(f"This tenant has no active inbox with the id {value}.")
        return inbox

    def validate(self, attrs):
        if attrs["private"]:
            return attrs
        inbox = attrs.get("inbox")
        channel = attrs.get("channel")
        if inbox is None and channel is None:
            raise serializers.ValidationError({"channel": ["Say which channel (or inbox) to reply on, or send private: true."]})
        if inbox is not None and channel is not None and inbox.channel != channel:
            raise serializers.ValidationError({"inbox": [f"That inbox sends on {inbox.channel}, not {channel}."]})
        attrs["channel"] = channel or inbox.channel
        return attrs
