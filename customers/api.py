"""REST API: who am I, and the tenant's customers (`/api/v1/`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from omnidesk.lib import api_schema  # noqa: F401 - registers the token scheme with the schema
from omnidesk.lib.api import TenantAPIView


class MeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.CharField()
    tenant = serializers.CharField(help_text="The tenant's slug: every request with this token acts there.")


class MeView(TenantAPIView):
    """The person and tenant the request acts as (the token's seat)."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        membership = self.membership
        return Response(MeSerializer({
            "user_id": membership.user_id, "email": membership.user.email, "name": membership.name,
            "role": membership.role, "tenant": self.tenant.slug,
        }).data)
