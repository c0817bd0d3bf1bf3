"""CORS for the endpoints other sites' pages call (the chat widget, its inline CSAT rating).

The caller decides whether the origin is allowed (channels_app.adapters.web_chat.config.origin_allowed);
these only write the headers, the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_allow(response: HttpResponse, origin: str) -> HttpResponse:
    """Let `origin` read `response` (no header without one); Vary keeps caches from serving it to another origin."""
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    patch_vary_headers(response, ("Origin",))
    return response


def cors_preflight(origin: str, *, methods: Iterable[str], headers: Iterable[str]) -> HttpResponse:
    """The 204 answer to an OPTIONS preflight from an allowed origin."""
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = ", ".join(methods)
    response["Access-Control-Allow-Headers"] = ", ".join(headers)
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return cors_allow(response, origin)
