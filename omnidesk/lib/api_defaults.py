"""The classes DRF's settings name: token authentication, the seat (tenant and role) of a request, its rate
limit, the default paging.

Kept apart from `omnidesk.lib.api` because DRF imports these while `rest_framework.views` and `generics` are
being imported: this module must not import DRF's views.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.pagination import CursorPagination
from rest_framework.throttling import SimpleRateThrottle

from customers.models import ApiToken, Membership, Role


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>`: a live token of a user who still holds the token's seat."""

    keyword = "Token"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Token <key>'.")
        from customers.services import api_token_hash

        try:
            key = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token is not valid.") from exc
        token = (
            ApiToken.objects.select_related("membership__user", "membership__tenant")
            .filter(key_hash=api_token_hash(key)).first()
        )
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The token is not valid or was revoked.")
        if not token.membership.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is deactivated.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            # At most one write a minute per token: polling clients should not turn reads into writes.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.membership.user, token

    def authenticate_header(self, request):
        return self.keyword


def request_membership(request) -> Membership | None:
    """The seat a request acts in: the token's, else the session's current one (set by the middleware)."""
    if isinstance(request.auth, ApiToken):
        return request.auth.membership
    return getattr(request._request, "membership", None)


class IsTenantMember(permissions.BasePermission):
    """A signed-in person with a seat; views may ask for a higher role with `required_role`."""

    message = "You need a seat in this tenant."

    def has_permission(self, request, view) -> bool:
        membership = request_membership(request)
        if membership is None:
            return False
        role = getattr(view, "required_role", Role.AGENT)
        if request.method not in permissions.SAFE_METHODS:
            role = getattr(view, "required_write_role", role)
        if not membership.has_role(role):
            self.message = f"This needs the {role} role."
            return False
        return True


class TokenRateThrottle(SimpleRateThrottle):
    """Requests per token (or per signed-in user) per minute; 429 with Retry-After beyond it."""

    scope = "api"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class NewestFirstCursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-id",)

    def paginate_queryset(self, queryset, request, view=None):
        # A cursor is base64 a client can edit: a position that is not a value of the ordering field
        # (text for an id, a date that does not exist) is the same 404 as a damaged cursor, not a 500.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError) as exc:
            raise exceptions.NotFound(self.invalid_cursor_message) from exc
