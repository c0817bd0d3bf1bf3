"""REST API: the tenant's inboxes (`/api/v1/inboxes/`). Never a secret, not even masked."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers

from channels_app.models import Channel, Inbox
from customers.models import Role
from customers.serializers import error_responses
from omnidesk.lib import api_schema  # noqa: F401 - registers the token scheme with the schema
from omnidesk.lib.api import TenantViewSet, id_or_404

# Where each channel's provider posts to (see channels_app/urls.py); chat and voice have no inbound webhook.
WEBHOOK_PATHS = {
    Channel.SMS: "/twilio/{key}/messages/",
    Channel.WHATSAPP: "/twilio/{key}/messages/",
    Channel.EMAIL: "/email/{key}/",
    Channel.API: "/api/{key}/messages/",
}


class InboxSerializer(serializers.ModelSerializer):
    key = serializers.SerializerMethodField(help_text="The inbox's key in its webhook URL (admins only, else null).")
    webhook_url = serializers.SerializerMethodField(
        help_text="The URL to configure at the provider (admins only, else null; null for channels without one)."
    )

    class Meta:
        model = Inbox
        fields = ["id", "channel", "name", "address", "is_active", "created_at", "key", "webhook_url"]
        read_only_fields = fields

    def _admin(self) -> bool:
        return self.context["view"].membership.has_role(Role.ADMIN)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_key(self, inbox: Inbox) -> str | None:
        return inbox.key if self._admin() else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_webhook_url(self, inbox: Inbox) -> str | None:
        path = WEBHOOK_PATHS.get(inbox.channel)
        if path is None or not self._admin():
            return None
        return inbox.webhook_base_url + path.format(key=inbox.key)


@extend_schema_view(
    list=extend_schema(summary="List inboxes", responses={200: InboxSerializer(many=True), **error_responses(404)}),
    retrieve=extend_schema(summary="An inbox", responses={200: InboxSerializer, **error_responses(404)}),
)
class InboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every member sees the tenant's inboxes; admins also get the key and webhook URL to set up the provider."""

    serializer_class = InboxSerializer
    queryset = Inbox.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return Inbox.objects.for_tenant(self.tenant)

    def get_object(self) -> Inbox:
        id_or_404(self.kwargs["pk"])
        return super().get_object()
