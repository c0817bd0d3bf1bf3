from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from customers.selectors import membership_current, memberships_of_user

SESSION_KEY = "current_tenant_id"


class CurrentTenantMiddleware:
    """Resolve the tenant once per request from the user's memberships (never from request input).

    Sets `request.membership` and `request.tenant` (None for anonymous users and users with no seat).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None
        request.tenant = None
        if request.user.is_authenticated:
            memberships = list(memberships_of_user(user=request.user))
            chosen = membership_current(memberships=memberships, wanted_tenant_id=request.session.get(SESSION_KEY))
            if chosen is not None:
                request.membership = chosen
                request.tenant = chosen.tenant
                request.memberships = memberships
        return self.get_response(request)
