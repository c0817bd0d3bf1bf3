"""REST API: teams, agents and their presence, and a conversation's SLA state (`/api/v1/`)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Count, Prefetch, Q
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from conversations.models import Conversation, Status
from conversations.selectors import conversation_get
from customers.models import Membership, Role
from customers.serializers import error_responses
from omnidesk.lib import api_schema  # noqa: F401 - registers the token scheme with the schema
from omnidesk.lib.api import TenantAPIView, TenantViewSet, id_or_404
from routing.models import ConversationSla, Presence, SlaMetric, SlaPolicy, Team
from routing.services import agent_set_presence
from routing.sla import DUE_FIELDS

# --- teams ---


class TeamSerializer(serializers.ModelSerializer):
    member_ids = serializers.SerializerMethodField(help_text="Membership ids of the team's agents (see /agents/).")

    class Meta:
        model = Team
        fields = ["id", "name", "assignment_method", "member_ids", "created_at"]
        read_only_fields = fields

    def get_member_ids(self, team: Team) -> list[int]:
        return sorted(member.pk for member in team.members.all())


@extend_schema_view(
    list=extend_schema(summary="List teams", responses={200: TeamSerializer(many=True), **error_responses(404)}),
    retrieve=extend_schema(summary="A team with its members", responses={200: TeamSerializer, **error_responses(404)}),
)
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    serializer_class = TeamSerializer
    queryset = Team.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return Team.objects.for_tenant(self.tenant).prefetch_related(Prefetch("members", queryset=Membership.objects.only("pk")))

    def get_object(self) -> Team:
        id_or_404(self.kwargs["pk"])
        return super().get_object()


# --- agents ---


class AgentSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The membership id (team member ids refer to it).")
    user_id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    presence = serializers.ChoiceField(choices=Presence.choices)
    capacity = serializers.DictField(
        child=serializers.IntegerField(), help_text="Open conversations at once per channel; a missing channel is 0."
    )
    load = serializers.DictField(
        child=serializers.IntegerField(), help_text="Open conversations assigned to them now, per channel."
    )


class PresenceSerializer(serializers.Serializer):
    presence = serializers.ChoiceField(choices=Presence.choices)


def _agent_rows(memberships: list[Membership], tenant) -> list[dict]:
    loads: dict[int, dict[str, int]] = {}
    rows = (
        Conversation.objects.for_tenant(tenant)
        .filter(status=Status.OPEN, assignee_id__in=[m.user_id for m in memberships])
        .values("assignee_id", "last_channel").annotate(n=Count("id"))
    )
    for row in rows:
        loads.setdefault(row["assignee_id"], {})[row["last_channel"]] = row["n"]
    result = []
    for membership in memberships:
        profile = getattr(membership, "agent_profile", None)
        result.append({
            "id": membership.pk, "user_id": membership.user_id, "name": membership.name, "email": membership.user.email,
            "role": membership.role, "presence": profile.presence if profile else Presence.OFFLINE,
            "capacity": {k: int(v or 0) for k, v in (profile.capacity or {}).items()} if profile else {},
            "load": loads.get(membership.user_id, {}),
        })
    return result


@extend_schema_view(
    list=extend_schema(
        summary="List agents",
        description="Agents see themselves and the people of their teams; supervisors and admins everyone.",
        responses={200: AgentSerializer(many=True), **error_responses(404)},
    ),
)
class AgentViewSet(mixins.ListModelMixin, TenantViewSet):
    serializer_class = AgentSerializer
    queryset = Membership.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        people = Membership.objects.for_tenant(self.tenant).select_related("user", "agent_profile")
        if not self.membership.has_role(Role.SUPERVISOR):
            people = people.filter(Q(teams__in=self.membership.teams.all()) | Q(pk=self.membership.pk)).distinct()
        return people

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AgentSerializer(_agent_rows(page, self.tenant), many=True).data)

    @extend_schema(
        summary="Set my presence", request=PresenceSerializer,
        responses={200: AgentSerializer, **error_responses(400)},
    )
    @action(detail=False, methods=["patch"], url_path="me/presence")
    def presence(self, request, format=None):  # format: the router's .json suffix routes
        data = PresenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent_set_presence(tenant=self.tenant, membership=self.membership, presence=data.validated_data["presence"])
        me = Membership.objects.for_tenant(self.tenant).select_related("user", "agent_profile").get(pk=self.membership.pk)
        return Response(AgentSerializer(_agent_rows([me], self.tenant)[0]).data)


# --- SLA state of a conversation ---


class SlaPolicyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SlaMetricStateSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=SlaMetric.choices)
    running = serializers.BooleanField(help_text="The clock runs now (false once met, missed or stopped).")
    started_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True, help_text="Null while the conversation is pending or snoozed.")
    at_risk_at = serializers.DateTimeField(allow_null=True)
    target_seconds = serializers.IntegerField(allow_null=True)
    business_hours = serializers.BooleanField(help_text="The target counts only the policy calendar's open hours.")
    at_risk = serializers.BooleanField()
    breached = serializers.BooleanField()
    outcome = serializers.ChoiceField(
        choices=[("met", "met"), ("missed", "missed")], allow_null=True, help_text="Once the cycle ended or breached."
    )


class SlaStateSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    policy = SlaPolicyRefSerializer(allow_null=True)
    paused = serializers.BooleanField(help_text="Pending or snoozed: the clock is stopped.")
    paused_since = serializers.DateTimeField(allow_null=True)
    metrics = SlaMetricStateSerializer(many=True, help_text="The metrics the policy measures in their latest cycle.")


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


def sla_state(*, conversation: Conversation, sla: ConversationSla | None, now: datetime) -> dict:
    policy: SlaPolicy | None = sla.policy if sla is not None else None
    metrics = []
    cycles = (sla.state or {}).get("metrics", {}) if sla is not None else {}
    for metric in DUE_FIELDS:
        cycle = cycles.get(metric)
        if cycle is None:
            continue
        running = not cycle.get("ended") and not cycle.get("breached")
        at_risk_at, due = cycle.get("at_risk"), cycle.get("due")
        metrics.append({
            "metric": metric, "running": running, "started_at": _when(cycle.get("start")),
            "due_at": _when(due), "at_risk_at": _when(at_risk_at), "target_seconds": cycle.get("target"),
            "business_hours": bool(cycle.get("business")),
            "at_risk": bool(cycle.get("at_risk_fired")) or (running and at_risk_at is not None and now.timestamp() >= at_risk_at),
            "breached": bool(cycle.get("breached")) or (running and due is not None and now.timestamp() >= due),
            "outcome": cycle.get("recorded"),
        })
    return {
        "number": conversation.number,
        "policy": {"id": policy.pk, "name": policy.name} if policy is not None else None,
        "paused": sla is not None and sla.paused_at is not None,
        "paused_since": sla.paused_at if sla is not None else None,
        "metrics": metrics,
    }


class ConversationSlaView(TenantAPIView):
    """A conversation's SLA: its policy, and per metric the due time and whether it is at risk or breached.
    Visible to whoever may see the conversation."""

    @extend_schema(summary="SLA state of a conversation", responses={200: SlaStateSerializer, **error_responses(404)})
    def get(self, request, number: int):
        if number >= 2**31:
            raise Http404
        try:
            conversation = conversation_get(tenant=self.tenant, membership=self.membership, number=number)
        except Conversation.DoesNotExist as exc:
            raise Http404 from exc
        sla = ConversationSla.objects.for_tenant(self.tenant).select_related("policy").filter(conversation=conversation).first()
        return Response(SlaStateSerializer(sla_state(conversation=conversation, sla=sla, now=timezone.now())).data)
