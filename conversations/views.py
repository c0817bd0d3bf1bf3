from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from channels_app.models import Channel
from channels_app.services import reply_send
from conversations.forms import AssignForm, DetailsForm, NoteForm, ReplyForm, StatusForm
from conversations.models import Conversation, Priority
from conversations.selectors import (
    canned_responses_for,
    conversation_get,
    conversation_reply_channels,
    conversation_search,
    conversation_timeline_recent,
    workspace_view,
    workspace_view_counts,
)
from conversations.services import conversation_assign, conversation_set_status, conversation_update, note_add
from customers.models import Membership
from omnidesk.lib.access import member_required
from routing.models import Team


def _conversation_or_404(request, number: int) -> Conversation:
    try:
        return conversation_get(tenant=request.tenant, membership=request.membership, number=number)
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc


@member_required()
def workspace_home(request):
    counts = workspace_view_counts(tenant=request.tenant, membership=request.membership)
    view = request.GET.get("view") or "mine"
    if view not in {name for name, _, _ in counts}:
        view = "mine"
    channel = request.GET.get("channel", "") if request.GET.get("channel") in Channel.values else ""
    priority = request.GET.get("priority", "") if request.GET.get("priority") in Priority.values else ""
    query = request.GET.get("q", "").strip()
    if query:
        conversations = conversation_search(tenant=request.tenant, membership=request.membership, query=query)[:100]
    else:
        conversations = workspace_view(
            tenant=request.tenant, membership=request.membership, view=view, channel=channel, priority=priority
        )[:100]
    return render(
        request, "conversations/home.html",
        {
            "conversations": conversations, "views": counts, "view": "" if query else view, "channel": channel,
            "priority": priority, "query": query,
            "channels": Channel.choices, "priorities": Priority.choices,
        },
    )


@member_required()
def conversation_detail(request, number: int):
    conversation = _conversation_or_404(request, number)
    timeline, earlier = conversation_timeline_recent(conversation=conversation, everything=request.GET.get("all") == "1")
    return render(
        request, "conversations/detail.html",
        {
            "conversation": conversation,
            "timeline": timeline,
            "earlier_count": earlier,
            "status_form": StatusForm(initial={"status": conversation.status}),
            "note_form": NoteForm(),
            "reply_form": ReplyForm(channels=conversation_reply_channels(conversation=conversation)),
            "assign_form": _assign_form(request, initial={
                "assignee": conversation.assignee_id or "", "team": conversation.team_id or "",
            }),
            "canned": canned_responses_for(
                tenant=request.tenant, conversation=conversation, agent_membership=request.membership
            ),
            "details_form": DetailsForm(initial={"priority": conversation.priority, "tags": ", ".join(conversation.tags)}),
        },
    )


@member_required()
@require_POST
def conversation_status(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("workspace:conversation", number=number)
    try:
        conversation_set_status(
            tenant=request.tenant, conversation=conversation, status=form.cleaned_data["status"],
            snoozed_until=form.cleaned_data["snoozed_until"], actor=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("workspace:conversation", number=number)


@member_required()
@require_POST
def conversation_add_note(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = NoteForm(request.POST)
    if form.is_valid():
        note_add(tenant=request.tenant, conversation=conversation, author=request.user, body=form.cleaned_data["body"])
    else:
        messages.error(request, "A note needs some text.")
    return redirect("workspace:conversation", number=number)


@member_required()
@require_POST
def conversation_reply(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = ReplyForm(request.POST, channels=conversation_reply_channels(conversation=conversation))
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("workspace:conversation", number=number)
    try:
        reply_send(
            tenant=request.tenant, conversation=conversation, author=request.user,
            channel=form.cleaned_data["channel"], body=form.cleaned_data["body"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("workspace:conversation", number=number)


def _assign_form(request, data=None, initial=None) -> AssignForm:
    members = Membership.objects.for_tenant(request.tenant).select_related("user").order_by("display_name", "user__email")
    teams = Team.objects.for_tenant(request.tenant).order_by("name")
    return AssignForm(data, initial=initial, members=members, teams=teams)


@member_required()
@require_POST
def conversation_assign_view(request, number: int):
    conversation = _conversation_or_404(request, number)
    data = request.POST.copy()
    if data.get("assignee") == "me":
        data["assignee"] = str(request.user.pk)
    form = _assign_form(request, data)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("workspace:conversation", number=number)
    assignee = (
        Membership.objects.for_tenant(request.tenant).select_related("user").get(user_id=form.cleaned_data["assignee"]).user
        if form.cleaned_data["assignee"] else None
    )
    team = Team.objects.for_tenant(request.tenant).get(pk=form.cleaned_data["team"]) if form.cleaned_data["team"] else None
    try:
        conversation_assign(tenant=request.tenant, conversation=conversation, assignee=assignee, team=team, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("workspace:conversation", number=number)


@member_required()
@require_POST
def conversation_details(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = DetailsForm(request.POST)
    if form.is_valid():
        conversation_update(
            tenant=request.tenant, conversation=conversation, actor=request.user,
            priority=form.cleaned_data["priority"], tags=form.cleaned_data["tags"],
        )
    else:
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("workspace:conversation", number=number)
