"""The widget's HTTP endpoints under /chat/<key>/ (PROTOCOL.md). Thin: check the origin and the visitor,
parse, call one service or selector, answer JSON with CORS headers for the allowed origin.

No cookies: the visitor is the bearer of `Authorization: Visitor <token>`, so CSRF does not apply.
"""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.adapters.web_chat import config, services
from channels_app.adapters.web_chat.live import agent_typing_name
from channels_app.adapters.web_chat.payloads import message_payload, messages_payload
from channels_app.adapters.web_chat.selectors import (
    agents_online,
    next_open_at,
    visitor_for_token,
    visitor_messages_after,
    visitor_recent_messages,
    visitor_unread_count,
)
from channels_app.inbound import InboundRejected, inbox_for_hook
from channels_app.models import Channel
from omnidesk.lib.cors import cors_allow, cors_preflight

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
MAX_MULTIPART_BYTES = config.MAX_ATTACHMENT_BYTES + MAX_JSON_BYTES
ORIGIN_REFUSED = "This site is not allowed to use this chat."


def _detail(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _visitor_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "visitor" else ""


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _json_body(request: HttpRequest) -> dict:
    if _declared_length(request) > MAX_JSON_BYTES:
        raise services.ChatRefused(413, f"The request is larger than {MAX_JSON_BYTES} bytes.")
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise services.ChatRefused(400, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise services.ChatRefused(400, "The body must be a JSON object.")
    return data


def _client_address(request: HttpRequest) -> str:
    # uvicorn puts the proxy's X-Forwarded-For into REMOTE_ADDR for trusted proxies (FORWARDED_ALLOW_IPS).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def chat_endpoint(*, methods: tuple[str, ...], visitor: bool = True):
    """Inbox by key (404), Origin against its list (403, preflight for OPTIONS), the visitor by token (401);
    refusals and storage outages as {"detail"} answers, every answer with the CORS headers it needs."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, key: str) -> HttpResponse:
            origin = request.headers.get("Origin", "")
            try:
                inbox = inbox_for_hook(key, [Channel.CHAT])
            except InboundRejected as exc:
                return cors_allow(exc.response(), origin)
            # No Origin at all: not a browser's cross-site request (curl, a server); nothing to protect against.
            if origin and not config.origin_allowed(inbox, origin):
                logger.info("Chat request for inbox %s refused: origin %r", inbox.pk, origin)
                return _detail(403, ORIGIN_REFUSED)
            if request.method == "OPTIONS":
                return cors_preflight(origin, methods=("GET", "POST", "OPTIONS"), headers=("Authorization", "Content-Type"))
            if request.method not in methods:
                return cors_allow(_detail(405, f"Use {' or '.join(methods)}."), origin)
            try:
                if visitor:
                    found = visitor_for_token(inbox=inbox, token=_visitor_token(request))
                    if found is None:
                        return cors_allow(_detail(401, "Unknown visitor: start a session first (POST session)."), origin)
                    found.inbox = inbox
                    response = view(request, inbox, found)
                else:
                    response = view(request, inbox)
            except services.ChatRefused as exc:
                extra = {"retry_after": exc.retry_after} if exc.retry_after is not None else {}
                response = _detail(exc.status, exc.detail, **extra)
                if exc.retry_after is not None:
                    response["Retry-After"] = str(exc.retry_after)
            except (OperationalError, InterfaceError) as exc:
                logger.error("Database unavailable on chat endpoint %s: %s", request.path, exc)
                response = _detail(503, "Storage is unavailable; try again in a moment.")
                response["Retry-After"] = "10"
            except DatabaseError:
                logger.exception("Chat request for inbox %s not stored", inbox.pk)
                response = _detail(503, "Storage failed; try again in a moment.")
            return cors_allow(response, origin)

        return wrapper

    return decorate


def _presence(inbox) -> dict:
    online = agents_online(inbox=inbox)
    reopen = next_open_at(inbox=inbox, online=online)
    return {"agents_online": online, "next_open_at": reopen.isoformat() if reopen else None}


def _ws_url(request: HttpRequest, inbox, token: str) -> str:
    base = settings.PUBLIC_BASE_URL
    scheme = "wss" if base.startswith("https:") else "ws"
    return f"{scheme}://{base.split('://', 1)[1].rstrip('/')}/ws/chat/{inbox.key}/?token={token}"


@chat_endpoint(methods=("GET",), visitor=False)
def chat_config(request: HttpRequest, inbox) -> HttpResponse:
    return JsonResponse({"config": config.widget_config(inbox), **_presence(inbox)})


@chat_endpoint(methods=("POST",), visitor=False)
def chat_session(request: HttpRequest, inbox) -> HttpResponse:
    data = _json_body(request)
    token = data.get("visitor_token")
    claims = services.claims_parse(tenant=inbox.tenant, name=data.get("name"), email=data.get("email"),
                                   phone=data.get("phone"))
    result = services.visitor_session_start(
        inbox=inbox, token=token if isinstance(token, str) else None, claims=claims,
        user_id=data.get("user_id"), user_hash=data.get("user_hash"), address=_client_address(request),
    )
    visitor = result.visitor
    messages = visitor_recent_messages(visitor=visitor)
    services.messages_mark_delivered(tenant=inbox.tenant, entry_ids=[m.pk for m in messages if m.direction == "outbound"])
    return JsonResponse({
        "visitor_token": result.token,
        "visitor": {"name": visitor.name, "email": visitor.email, "phone": visitor.phone,
                    "verified": bool(visitor.verified_user_id)},
        "config": config.widget_config(inbox),
        "messages": messages_payload(messages, tenant_id=inbox.tenant_id),
        "unread": visitor_unread_count(visitor=visitor),
        **_presence(inbox),
        "ws_url": _ws_url(request, inbox, result.token),
        "poll_interval_ms": config.POLL_INTERVAL_MS,
    })


def _after(request: HttpRequest) -> int:
    raw = request.GET.get("after", "0") or "0"
    if not raw.isdigit() or len(raw) > 18:
        raise services.ChatRefused(400, "after must be a message id (a non-negative integer).")
    return int(raw)


@chat_endpoint(methods=("GET", "POST"))
def chat_messages(request: HttpRequest, inbox, visitor) -> HttpResponse:
    if request.method == "GET":
        messages = visitor_messages_after(visitor=visitor, after=_after(request))
        services.messages_mark_delivered(
            tenant=inbox.tenant, entry_ids=[m.pk for m in messages if m.direction == "outbound"]
        )
        typing = agent_typing_name(tenant_id=inbox.tenant_id, visitor_id=visitor.pk)
        return JsonResponse({
            "messages": messages_payload(messages, tenant_id=inbox.tenant_id),
            "agent_typing": {"name": typing} if typing else None,
            "unread": visitor_unread_count(visitor=visitor),
            "agents_online": agents_online(inbox=inbox),
        })
    if request.content_type == "multipart/form-data":
        if _declared_length(request) > MAX_MULTIPART_BYTES:
            raise services.ChatRefused(
                413, f"The upload is larger than {config.MAX_ATTACHMENT_BYTES / 1_000_000:.0f} MB."
            )
        upload = request.FILES.get("file")
        if upload is None:
            raise services.ChatRefused(400, "Send the file in a form field named file.")
        body, client_id = request.POST.get("body", ""), request.POST.get("client_id") or None
    else:
        data = _json_body(request)
        upload, body, client_id = None, data.get("body"), data.get("client_id")
    entry, created = services.visitor_message_send(visitor=visitor, body=body, client_id=client_id, upload=upload)
    return JsonResponse({"message": message_payload(entry)}, status=201 if created else 200)


@chat_endpoint(methods=("POST",))
def chat_typing(request: HttpRequest, inbox, visitor) -> HttpResponse:
    _json_body(request)
    services.visitor_typing(visitor=visitor)
    return HttpResponse(status=204)


@chat_endpoint(methods=("POST",))
def chat_read(request: HttpRequest, inbox, visitor) -> HttpResponse:
    data = _json_body(request)
    services.visitor_mark_read(visitor=visitor, up_to=data.get("up_to"))
    return HttpResponse(status=204)


@chat_endpoint(methods=("POST",))
def chat_offline(request: HttpRequest, inbox, visitor) -> HttpResponse:
    data = _json_body(request)
    entry, follow_up = services.visitor_offline_message(
        visitor=visitor, name=data.get("name"), email=data.get("email"), body=data.get("body"),
        client_id=data.get("client_id"),
    )
    return JsonResponse({"message": message_payload(entry), "follow_up": follow_up}, status=201)
