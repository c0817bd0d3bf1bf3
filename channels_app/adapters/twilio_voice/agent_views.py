"""The agents' side of voice, under /app/voice/ (session and CSRF, unlike the Twilio hooks): the Call
button, the SMS follow-up after a call, and softphone tokens."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from channels_app.adapters.twilio_voice import followup, outbound, softphone
from channels_app.models import Channel
from channels_app.services import recipient_for, reply_send
from conversations.forms import ReplyForm
from conversations.models import Conversation
from conversations.selectors import canned_responses_for, conversation_get, conversation_reply_channels
from omnidesk.lib.access import member_required

logger = logging.getLogger(__name__)


def _conversation_or_404(request: HttpRequest, number: int) -> Conversation:
    try:
        return conversation_get(tenant=request.tenant, membership=request.membership, number=number)
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc


def _conversation_url(conversation: Conversation) -> str:
    return reverse("workspace:conversation", kwargs={"number": conversation.number})


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@member_required()
@require_http_methods(["GET", "POST"])
def conversation_call(request: HttpRequest, number: int) -> HttpResponse:
    """GET: the Call form (numbers, voice inboxes, where to ring the agent). POST: place the call."""
    conversation = _conversation_or_404(request, number)
    if request.method == "GET":
        options = outbound.call_options(tenant=request.tenant, membership=request.membership,
                                        conversation=conversation)
        return render(request, "conversations/_call_form.html", {"conversation": conversation, "options": options})
    raw_inbox = request.POST.get("inbox", "").strip()
    if raw_inbox and not raw_inbox.isdigit():
        messages.error(request, "Choose one of the workspace's voice inboxes to call from.")
        return redirect(_conversation_url(conversation))
    try:
        entry = outbound.call_place(
            tenant=request.tenant, membership=request.membership, conversation=conversation,
            number=request.POST.get("number", "").strip()[:64], inbox_id=int(raw_inbox) if raw_inbox else None,
            ring=request.POST.get("ring", "").strip()[:16],
        )
    except (outbound.CallRefused, outbound.CallFailed) as exc:
        messages.error(request, f"The call was not placed: {exc}")
    else:
        where = "your browser softphone" if entry.data["ring"] == outbound.RING_SOFTPHONE else "your phone"
        messages.success(request, f"Calling {where} now; answer it to be connected to {entry.data['to']}.")
    return redirect(_conversation_url(conversation))


def _followup_or_404(request: HttpRequest, entry_id: int):
    entry = followup.call_entry_for_member(tenant=request.tenant, membership=request.membership, entry_id=entry_id)
    if entry is None:
        raise Http404("No such call.")
    return entry, followup.call_followup(tenant=request.tenant, entry=entry)


def _composer(request: HttpRequest, follow: followup.FollowUp, *, body: str, channel: str = Channel.SMS,
              error: str = "") -> HttpResponse:
    """The workspace composer, on SMS with the draft, sending through the follow-up route."""
    conversation = follow.entry.conversation
    channels = conversation_reply_channels(conversation=conversation)
    hint = f"Follow-up to the call with {follow.number}"
    if follow.inbox is not None:
        hint += f", from {follow.inbox.address}"
    try:
        recipient = recipient_for(tenant=request.tenant, conversation=conversation, channel=Channel.SMS).value
    except ValidationError:
        recipient = ""
    if recipient and recipient != follow.number:
        # Replies go to the number the customer last texted from; say so rather than surprise the agent.
        hint += f". SMS replies to this customer go to {recipient}, the number they last texted from"
    context = {
        "conversation": conversation,
        "reply_form": ReplyForm(channels=channels, time_zone=request.tenant.time_zone),
        "canned": canned_responses_for(tenant=request.tenant, conversation=conversation,
                                       agent_membership=request.membership),
        "draft": {
            "composer": "reply", "channel": channel, "body": body, "hint": hint + ".", "error": error,
            "action": reverse("workspace:voice:call_followup", kwargs={"entry_id": follow.entry.pk}),
        },
    }
    return render(request, "conversations/_composer.html", context)


@member_required()
@require_http_methods(["GET", "POST"])
def call_followup(request: HttpRequest, entry_id: int) -> HttpResponse:
    """GET (htmx): the composer prefilled for an SMS to the caller. POST: send it as a reply."""
    entry, follow = _followup_or_404(request, entry_id)
    conversation = entry.conversation
    if request.method == "GET":
        if not _is_htmx(request):
            return redirect(_conversation_url(conversation))
        return _composer(request, follow, body=follow.body)
    form = ReplyForm(request.POST, request.FILES, channels=conversation_reply_channels(conversation=conversation),
                     time_zone=request.tenant.time_zone)
    try:
        if not form.is_valid():
            raise ValidationError([f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()])
        channel = form.cleaned_data["channel"]
        reply_send(
            tenant=request.tenant, conversation=conversation, author=request.user, channel=channel,
            body=form.cleaned_data["body"], inbox=follow.inbox if channel == Channel.SMS else None,
            files=form.cleaned_data["attachments"], send_at=form.cleaned_data["send_at"],
        )
    except ValidationError as exc:
        reason = " ".join(exc.messages)
        if not _is_htmx(request):
            messages.error(request, reason)
            return redirect(_conversation_url(conversation))
        # In place, keeping the draft: only the composer is swapped.
        response = _composer(request, follow, body=form.data.get("body", ""),
                             channel=form.data.get("channel", Channel.SMS), error=reason)
        response["HX-Retarget"] = "[data-composer]"
        response["HX-Reswap"] = "outerHTML"
        response["HX-Push-Url"] = "false"
        return response
    return redirect(_conversation_url(conversation))


@require_POST
def softphone_token(request: HttpRequest, key: str) -> HttpResponse:
    """A Voice access token for the signed-in agent's own Client identity (JSON, for the softphone script)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Sign in first."}, status=401)
    if request.membership is None:
        return JsonResponse({"detail": "You have no seat in a tenant."}, status=403)
    inbox = softphone.voice_inbox_for_member(tenant=request.tenant, key=key)
    if inbox is None:
        return JsonResponse({"detail": "Unknown inbox."}, status=404)
    try:
        issued = softphone.softphone_token_issue(inbox=inbox, membership=request.membership)
    except softphone.SoftphoneUnavailable as exc:
        return JsonResponse({"detail": str(exc)}, status=409)
    response = JsonResponse({"token": issued.token, "identity": issued.identity, "expires_in": issued.expires_in})
    response["Cache-Control"] = "no-store"
    return response
