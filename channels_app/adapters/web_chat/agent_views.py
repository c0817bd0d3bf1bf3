"""The workspace side: an agent writing a chat reply shows "typing" to the visitor (static/js/composer.js)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from channels_app.adapters.web_chat.services import agent_typing
from conversations.models import Conversation
from conversations.selectors import conversation_get
from omnidesk.lib.access import member_required


@require_POST
@member_required()
def conversation_typing(request: HttpRequest, number: int) -> HttpResponse:
    try:
        conversation = conversation_get(tenant=request.tenant, membership=request.membership, number=number)
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc
    agent_typing(tenant=request.tenant, conversation=conversation, membership=request.membership)
    return HttpResponse(status=204)
