"""Login throttling with django-axes: failed logins are counted per username and client address."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lock check, skipped when `authenticate()` gets no request.

    Only code inside the process calls it that way (Django's test client `login()`, management commands);
    every login over HTTP passes its request, so attackers always meet the lock.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def login_username(request, credentials) -> str | None:
    """The name failures are counted under: logins ignore case and spaces, so `Ann@X.com ` is `ann@x.com`."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    return username.strip().lower() if isinstance(username, str) else None


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The page a locked-out sign-in gets: what happened and when to try again (429, so scripts back off)."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return render(
        request, "registration/locked_out.html", {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes},
        status=429,
    )
