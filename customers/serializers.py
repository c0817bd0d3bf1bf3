"""REST API bodies for customers, and the error bodies every API view declares in its schema."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from customers.identities import normalize_identity
from customers.models import Customer, Identity, IdentityKind, Tier, validate_time_zone


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in a sentence a developer can act on.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.JSONField(), help_text="Messages per input field (`non_field_errors` for the whole body)."
    )


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers of a view for its schema: 400 has field errors, the others a detail only."""
    described = {
        400: OpenApiResponse(ValidationErrorSerializer, "Invalid input; `errors` says which field and why."),
        401: OpenApiResponse(ErrorSerializer, "No token, or a token that is not valid or was revoked."),
        403: OpenApiResponse(ErrorSerializer, "The token's role may not do this."),
        404: OpenApiResponse(ErrorSerializer, "No such object in this tenant (another tenant's look the same)."),
        409: OpenApiResponse(ErrorSerializer, "The channel refuses it now; `detail` says why and what to do."),
        429: OpenApiResponse(ErrorSerializer, "Too many requests for this token; retry after `Retry-After` seconds."),
    }
    return {code: described[code] for code in (401, 403, 429, *codes)}


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "kind", "value", "opted_out_at", "created_at"]
        read_only_fields = fields


class IdentityInputSerializer(serializers.Serializer):
    """An address as the client writes it; stored normalized (E.164 with the tenant's region, lower-cased e-mail)."""

    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=320, trim_whitespace=True)

    def validate(self, attrs):
        try:
            normalize_identity(attrs["kind"], attrs["value"], region=self.context["tenant"].default_region)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"value": exc.messages}) from exc
        return attrs


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    merged_into = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="Set when this record was merged into another (the survivor)."
    )

    class Meta:
        model = Customer
        fields = [
            "id", "name", "tier", "language", "time_zone", "attributes", "identities", "merged_into",
            "created_at", "updated_at",
        ]
        read_only_fields = fields


def _time_zone(value: str) -> str:
    if value:
        try:
            validate_time_zone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
    return value


def _has_nul(value) -> bool:
    """Postgres jsonb cannot hold U+0000 in any key or string."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class CustomerUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    language = serializers.RegexField(
        r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", max_length=16, required=False, allow_blank=True,
        error_messages={"invalid": "Write a BCP 47 language tag, e.g. en, de or pt-BR."},
    )
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="IANA, e.g. Europe/Berlin.")
    attributes = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Your own fields (JSON object); replaces the stored one."
    )

    def validate_time_zone(self, value: str) -> str:
        return _time_zone(value)

    def validate_attributes(self, value: dict) -> dict:
        if _has_nul(value):
            raise serializers.ValidationError("Attributes cannot contain NUL characters (\\u0000).")
        return value


class CustomerCreateSerializer(CustomerUpdateSerializer):
    identities = IdentityInputSerializer(many=True, required=False, max_length=20)


class IdentityAddSerializer(IdentityInputSerializer):
    pass


class CustomerMergeSerializer(serializers.Serializer):
    merge = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1,
        help_text="The id of the duplicate to merge into this customer; this one survives.",
    )
