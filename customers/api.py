"""REST API: who am I, and the tenant's customers (`/api/v1/`)."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from customers.models import Customer, Identity
from customers.selectors import customer_get, customer_list, customer_search
from customers.serializers import (
    CustomerCreateSerializer,
    CustomerMergeSerializer,
    CustomerSerializer,
    CustomerUpdateSerializer,
    IdentityAddSerializer,
    IdentitySerializer,
    error_responses,
)
from customers.services import (
    IdentityTaken,
    MergeError,
    customer_add_identity,
    customer_create,
    customer_merge,
    customer_update,
)
from omnidesk.lib import api_schema  # noqa: F401 - registers the token scheme with the schema
from omnidesk.lib.api import TenantAPIView, TenantViewSet


class MeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.CharField()
    tenant = serializers.CharField(help_text="The tenant's slug: every request with this token acts there.")


class MeView(TenantAPIView):
    """The person and tenant the request acts as (the token's seat)."""

    @extend_schema(responses={200: MeSerializer, **error_responses()})
    def get(self, request):
        membership = self.membership
        return Response(MeSerializer({
            "user_id": membership.user_id, "email": membership.user.email, "name": membership.name,
            "role": membership.role, "tenant": self.tenant.slug,
        }).data)


# The path takes any segment (so a bad one is a JSON 404, not the site's HTML one) but is documented as a number.
CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The customer's id.")


def _customer_or_404(tenant, customer_id: str) -> Customer:
    """Any customer of the tenant, merged-away ones included (they show whom they were merged into)."""
    if not str(customer_id).isascii() or not str(customer_id).isdigit() or int(customer_id) >= 2**63:
        raise Http404
    try:
        return customer_get(tenant=tenant, customer_id=int(customer_id))
    except Customer.DoesNotExist as exc:
        raise Http404 from exc


def _with_identities(queryset):
    return queryset.prefetch_related(Prefetch("identities", queryset=Identity.objects.order_by("kind", "value")))


@extend_schema_view(
    list=extend_schema(
        summary="List customers",
        parameters=[OpenApiParameter("q", str, description="Search by name or any address (a phone number in any format).")],
        responses={200: CustomerSerializer(many=True), **error_responses(400, 404)},
    ),
    retrieve=extend_schema(summary="A customer with its addresses", parameters=[CUSTOMER_ID], responses={200: CustomerSerializer, **error_responses(404)}),
    create=extend_schema(
        summary="Create a customer", request=CustomerCreateSerializer,
        responses={201: CustomerSerializer, **error_responses(400)},
    ),
    partial_update=extend_schema(
        summary="Change a customer", parameters=[CUSTOMER_ID], request=CustomerUpdateSerializer,
        responses={200: CustomerSerializer, **error_responses(400, 404)},
    ),
)
class CustomerViewSet(TenantViewSet):
    """The tenant's customers. Agents and up may read and write; merges too, as in the workspace."""

    serializer_class = CustomerSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        # Postgres text cannot hold NUL: a search for one finds what the rest of the text finds.
        query = self.request.query_params.get("q", "").replace("\x00", "").strip()
        customers = customer_search(tenant=self.tenant, query=query) if query else customer_list(tenant=self.tenant)
        return _with_identities(customers)

    def get_object(self) -> Customer:
        return _customer_or_404(self.tenant, self.kwargs["pk"])

    def list(self, request, format=None):  # format: the router's .json suffix routes
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CustomerSerializer(page, many=True).data)

    def retrieve(self, request, pk=None, format=None):  # format: the router's .json suffix routes
        return Response(CustomerSerializer(self._fresh(self.get_object())).data)

    def create(self, request, format=None):  # format: the router's .json suffix routes
        body = CustomerCreateSerializer(data=request.data, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        identities = [(i["kind"], i["value"]) for i in fields.pop("identities", [])]
        try:
            customer = customer_create(tenant=self.tenant, identities=identities, actor=request.user, **fields)
        except IdentityTaken as exc:
            raise serializers.ValidationError({"identities": exc.messages}) from exc
        return Response(CustomerSerializer(self._fresh(customer)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None, format=None):  # format: the router's .json suffix routes
        customer = self.get_object()
        body = CustomerUpdateSerializer(data=request.data, partial=True, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        customer = customer_update(tenant=self.tenant, customer=customer, actor=request.user, **body.validated_data)
        return Response(CustomerSerializer(self._fresh(customer)).data)

    @extend_schema(
        summary="Add an address to a customer", parameters=[CUSTOMER_ID], request=IdentityAddSerializer,
        responses={201: IdentitySerializer, **error_responses(400, 404)},
    )
    @action(detail=True, methods=["post"])
    def identities(self, request, pk=None, format=None):  # format: the router's .json suffix routes
        customer = self.get_object()
        body = IdentityAddSerializer(data=request.data, context={"tenant": self.tenant})
        body.is_valid(raise_exception=True)
        try:
            identity = customer_add_identity(tenant=self.tenant, customer=customer, **body.validated_data)
        except IdentityTaken as exc:
            raise serializers.ValidationError({"value": exc.messages}) from exc
        return Response(IdentitySerializer(identity).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Merge a duplicate into this customer", parameters=[CUSTOMER_ID],
        description="Moves the other customer's addresses, conversations and timeline here; this customer survives. "
        "Merging the same pair again changes nothing. Recorded on the timeline and in the audit log.",
        request=CustomerMergeSerializer, responses={200: CustomerSerializer, **error_responses(400, 404)},
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None, format=None):  # format: the router's .json suffix routes
        survivor = self.get_object()
        body = CustomerMergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            merged = customer_get(tenant=self.tenant, customer_id=body.validated_data["merge"])
        except Customer.DoesNotExist as exc:
            raise serializers.ValidationError({"merge": ["No customer with this id in this tenant."]}) from exc
        try:
            survivor = customer_merge(tenant=self.tenant, survivor=survivor, merged=merged, actor=request.user)
        except MergeError as exc:
            raise serializers.ValidationError({"merge": exc.messages}) from exc
        return Response(CustomerSerializer(self._fresh(survivor)).data)

    def _fresh(self, customer: Customer) -> Customer:
        return _with_identities(Customer.objects.for_tenant(self.tenant)).get(pk=customer.pk)
