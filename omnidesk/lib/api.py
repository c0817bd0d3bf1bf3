"""The REST API's shared pieces: token authentication, the tenant and role of a request, errors, paging, limits.

Every API view inherits `TenantAPIView` (or `TenantViewSet`): the tenant comes from the token's membership
(or, for the workspace's own calls, the signed-in session's current seat), never from the request, and a
row of another tenant answers the same 404 as a missing one.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView, exception_handler

from omnidesk.lib.api_defaults import (
    IsTenantMember,
    NewestFirstCursor,
    TokenAuthentication,
    TokenRateThrottle,
    request_membership,
)


class TenantAPIView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsTenantMember]
    throttle_classes = [TokenRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.membership = request_membership(request)
        self.tenant = self.membership.tenant


class TenantViewSet(viewsets.GenericViewSet):
    """A viewset whose `get_queryset` must start from `.for_tenant(self.tenant)`."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsTenantMember]
    throttle_classes = [TokenRateThrottle]
    pagination_class = NewestFirstCursor

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.membership = request_membership(request)
        self.tenant = self.membership.tenant


def api_exception_handler(exc, context):
    """Every error is `{"detail": "..."}`; invalid input adds `{"errors": {field: [messages]}}`."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        path, message = _first_error(errors)
        summary = "Invalid input." if message is None else message if path in ("", "non_field_errors") else f"{path}: {message}"
        response.data = {"detail": str(summary), "errors": errors}
    elif not isinstance(response.data, dict) or "detail" not in response.data:
        response.data = {"detail": str(response.data)}
    return response


def _first_error(errors, path: str = "") -> tuple[str, str | None]:
    """The first message in DRF's nested errors and where it is, e.g. ("identities.1.value", "… is not valid")."""
    if isinstance(errors, dict | list):
        items = errors.items() if isinstance(errors, dict) else ((None, value) for value in errors)
        for key, value in items:
            # A list of item errors has {} for the items that were fine.
            found = _first_error(value, path if key is None else f"{path}.{key}" if path else str(key))
            if found[1] is not None:
                return found
        return path, None
    return path, str(errors)


def id_or_404(value) -> int:
    """A path id as an int, or 404 for anything that is not one (beyond bigint Postgres would refuse it)."""
    value = str(value)
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise Http404
    return int(value)
