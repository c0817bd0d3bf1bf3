"""REST API: conversations (list, detail, changes), their timeline and new replies or notes (`/api/v1/`).

Visibility is the workspace's (`conversation_list`): agents see their own, their teams' and unassigned
conversations, supervisors and admins all; anything else answers 404, like another tenant's.
"""

from __future__ import annotations

import datetime
import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import transaction
from django.http import Http404
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from channels_app.adapters.base import SendRefused
from channels_app.models import Channel
from channels_app.services import reply_send
from conversations.models import Conversation, Priority, Status
from conversations.selectors import conversation_get, conversation_list, conversation_timeline, member_names
from conversations.serializers import (
    ConversationSerializer,
    ConversationUpdateSerializer,
    MessageCreateSerializer,
    TimelineEntrySerializer,
)
from conversations.services import (
    KEEP_TEAM,
    conversation_assign,
    conversation_set_status,
    conversation_update,
    note_add,
)
from customers.serializers import error_responses
from omnidesk.lib.api import TenantViewSet
from omnidesk.lib.api_defaults import NewestFirstCursor

_NUMBER = re.compile(r"[0-9]{1,10}")
# The path takes any segment (so a bad one is a JSON 404, not the site's HTML one) but is documented as a number.
NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="The conversation's number (#123 is 123).")


class ConversationCursor(NewestFirstCursor):
    """Most recently changed first; polling clients combine it with `updated_since`."""

    ordering = ("-updated_at", "-id")


class TimelineCursor(ConversationCursor):
    page_size = 100
    ordering = ("created_at", "id")


class ChannelRefused(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The channel refuses this reply now."
    default_code = "refused"


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, in UTC: an offset that pushes it past year 9999 is a field error, not a database error."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise ValidationError("The date-time is out of range once converted to UTC.", code="invalid") from exc


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ConversationFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Status.choices)
    channel = filters.ChoiceFilter(choices=Channel.choices, method="filter_channel", help_text="A channel it has used.")
    inbox = IdFilter(field_name="first_inbox_id", min_value=1, max_value=2**63 - 1, help_text="The inbox it came in on.")
    team = IdFilter(field_name="team_id", min_value=1, max_value=2**63 - 1)
    assignee = filters.CharFilter(
        method="filter_assignee", help_text="A user id, `me` or `none` (unassigned).",
        validators=[RegexValidator(r"^(me|none|[0-9]{1,18})$", "Give a user id, me or none.")],
    )
    priority = filters.ChoiceFilter(choices=Priority.choices)
    tag = filters.CharFilter(method="filter_tag", max_length=64)
    updated_since = UtcDateTimeFilter(
        field_name="updated_at", lookup_expr="gte",
        help_text="ISO 8601 date-time: only conversations changed at or after it (cheap polling).",
    )

    def filter_channel(self, queryset, name, value):
        return queryset.filter(channels__contains=[value])

    def filter_assignee(self, queryset, name, value):
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        user_id = self.request.user.pk if value == "me" else int(value)
        return queryset.filter(assignee_id=user_id)

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value.strip().lower()])


@extend_schema_view(
    list=extend_schema(
        summary="List conversations", responses={200: ConversationSerializer(many=True), **error_responses(400, 404)},
    ),
    retrieve=extend_schema(summary="A conversation", parameters=[NUMBER], responses={200: ConversationSerializer, **error_responses(404)}),
    partial_update=extend_schema(
        summary="Change status, priority, assignee, team, tags or subject", parameters=[NUMBER],
        description="Each change goes through the workspace's services and is recorded on the timeline. "
        "Ids are looked up in this tenant: another tenant's is a 400 and nothing changes.",
        request=ConversationUpdateSerializer, responses={200: ConversationSerializer, **error_responses(400, 404)},
    ),
)
class ConversationViewSet(mixins.ListModelMixin, TenantViewSet):
    serializer_class = ConversationSerializer
    pagination_class = ConversationCursor
    filterset_class = ConversationFilter
    lookup_field = "number"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no tenant
            return Conversation.objects.none()
        return conversation_list(tenant=self.tenant, membership=self.membership)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["people"] = member_names(tenant=self.tenant)
        return context

    def get_object(self) -> Conversation:
        number = self.kwargs["number"]
        if not _NUMBER.fullmatch(number) or int(number) >= 2**31:
            raise Http404
        try:
            return conversation_get(tenant=self.tenant, membership=self.membership, number=int(number))
        except Conversation.DoesNotExist as exc:
            raise Http404 from exc

    def retrieve(self, request, number=None, format=None):  # format: the router's .json suffix routes
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, number=None, format=None):  # format: the router's .json suffix routes
        conversation = self.get_object()
        body = ConversationUpdateSerializer(data=request.data, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        changes = body.validated_data
        with transaction.atomic():
            if "status" in changes:
                conversation_set_status(
                    tenant=self.tenant, conversation=conversation, status=changes["status"],
                    snoozed_until=changes.get("snoozed_until"), actor=request.user,
                )
            if "assignee" in changes or "team" in changes:
                conversation_assign(
                    tenant=self.tenant, conversation=conversation,
                    assignee=changes["assignee"] if "assignee" in changes else conversation.assignee,
                    team=changes["team"] if "team" in changes else KEEP_TEAM, actor=request.user,
                )
            details = {name: changes[name] for name in ("priority", "tags", "subject") if name in changes}
            if details:
                conversation_update(tenant=self.tenant, conversation=conversation, actor=request.user, **details)
        # Read back without the visibility rule: an agent who handed it to another team still sees the result.
        conversation = (
            Conversation.objects.for_tenant(self.tenant).select_related("customer", "assignee", "team")
            .get(pk=conversation.pk)
        )
        return Response(self.get_serializer(conversation).data)

    def _entry_context(self, conversation: Conversation) -> dict:
        return {**self.get_serializer_context(), "numbers": {conversation.pk: conversation.number}}

    @extend_schema(
        summary="The conversation's timeline, oldest first", parameters=[NUMBER],
        description="Messages on every channel (each with its channel), notes, calls and system events, "
        "plus customer-level events such as merges.",
        responses={200: TimelineEntrySerializer(many=True), **error_responses(404)},
    )
    @action(detail=True, methods=["get"], pagination_class=TimelineCursor, filter_backends=[])
    def timeline(self, request, number=None, format=None):  # format: the router's .json suffix routes
        conversation = self.get_object()
        page = self.paginate_queryset(conversation_timeline(conversation=conversation))
        entries = TimelineEntrySerializer(page, many=True, context=self._entry_context(conversation))
        return self.get_paginated_response(entries.data)

    @extend_schema(
        summary="Reply to the customer, or add an internal note", parameters=[NUMBER],
        description="`private: true` adds a note. Otherwise the reply goes out on `channel` (from the inbox the "
        "customer last wrote to) or from `inbox`: it is stored as queued and delivered by a worker. A channel "
        "that refuses it now (opted out, outside WhatsApp's 24-hour window, too long, no address) answers 409 "
        "with the reason; nothing is stored then.",
        request=MessageCreateSerializer,
        responses={201: TimelineEntrySerializer, **error_responses(400, 404, 409)},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def messages(self, request, number=None, format=None):  # format: the router's .json suffix routes
        conversation = self.get_object()
        body = MessageCreateSerializer(data=request.data, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        message = body.validated_data
        if message["private"]:
            entry = note_add(tenant=self.tenant, conversation=conversation, author=request.user, body=message["text"])
        else:
            try:
                entry = reply_send(
                    tenant=self.tenant, conversation=conversation, author=request.user, channel=message["channel"],
                    body=message["text"], inbox=message.get("inbox"),
                )
            except SendRefused as exc:
                raise ChannelRefused(" ".join(exc.messages)) from exc
        entry = conversation_timeline(conversation=conversation).get(pk=entry.pk)
        data = TimelineEntrySerializer(entry, context=self._entry_context(conversation)).data
        return Response(data, status=status.HTTP_201_CREATED)
