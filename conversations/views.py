from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from channels_app.models import Channel
from channels_app.services import reply_send
from conversations.attachments import LinkInvalid, attachment_from_link, attachment_get, is_inline
from conversations.forms import AssignForm, DetailsForm, MergeForm, NoteForm, ReplyForm, StatusForm
from conversations.models import Attachment, Conversation, Priority
from conversations.personal import conversation_mark_read, saved_filter_delete, saved_filter_save
from conversations.selectors import (
    LIST_SORTS,
    VIEW_COUNT_CAP,
    ListFilters,
    canned_responses_for,
    conversation_get,
    conversation_reply_channels,
    conversation_search_page,
    conversation_timeline_recent,
    customer_other_conversations,
    list_filter_choices,
    workspace_page,
    workspace_view_counts,
    workspace_view_names,
)
from conversations.services import (
    conversation_assign,
    conversation_merge,
    conversation_merge_refusal,
    conversation_set_status,
    conversation_update,
    message_cancel_scheduled,
    note_add,
)
from customers.models import Membership
from customers.selectors import customer_possible_duplicates
from omnidesk.lib.access import member_required
from routing.models import Team
from routing.selectors import teammates_presence


def _conversation_or_404(request, number: int) -> Conversation:
    try:
        return conversation_get(tenant=request.tenant, membership=request.membership, number=number)
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc


def _list_context(request) -> dict:
    """The left-hand views and the conversation list, from the query string (shared by every workspace page)."""
    counts = workspace_view_counts(tenant=request.tenant, membership=request.membership)
    filters = ListFilters.parse(request.GET, views=[name for name, _, _ in counts])
    query = request.GET.get("q", "").replace("\x00", "").strip()  # Postgres text cannot hold NUL
    cursor = request.GET.get("after", "")
    if query:
        page = conversation_search_page(tenant=request.tenant, membership=request.membership, query=query, cursor=cursor)
        page_query = urlencode({"q": query})
    else:
        page = workspace_page(tenant=request.tenant, membership=request.membership, filters=filters, cursor=cursor)
        page_query = filters.query_string()
    return {
        "conversations": page.conversations, "views": counts, "view": "" if query else filters.view,
        "channel": filters.channel, "priority": filters.priority, "inbox": filters.inbox, "team": filters.team,
        "tag": filters.tag, "sort": filters.sort, "query": query,
        "channels": Channel.choices, "priorities": Priority.choices, "sorts": LIST_SORTS,
        "view_count_cap": VIEW_COUNT_CAP,
        # filter_inboxes, filter_teams: (id, name) of the tenant's; saved_filters: (id, name, query) of the member's.
        **list_filter_choices(tenant=request.tenant, membership=request.membership),
        # The list without its page position: view links, "save this filter", the next page.
        "filters_query": page_query,
        "next_page_url": f"?{page_query}&after={page.next_cursor}" if page.next_cursor else "",
        "is_later_page": bool(cursor),
        "teammates": teammates_presence(tenant=request.tenant, membership=request.membership),
        # Links from the list keep the list as it is (view, filters, search) when a conversation opens.
        "list_query": request.GET.urlencode(),
    }


def _back_to_conversation(request, number: int):
    """After an action, back to the conversation with the list as the agent had it (view, filters, search)."""
    url = reverse("workspace:conversation", kwargs={"number": number})
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.path == url and referer.query and url_has_allowed_host_and_scheme(
        request.headers.get("Referer", ""), allowed_hosts={request.get_host()}
    ):
        url = f"{url}?{referer.query}"
    return redirect(url)


def _wants_pane(request) -> bool:
    """htmx asks for the conversation pane alone when the agent opens a conversation or acts in it."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "conversation-pane"


@member_required()
def workspace_home(request):
    return render(request, "conversations/workspace.html", _list_context(request))


@member_required()
@require_POST
def saved_filter_create(request):
    """Save the list's current view, filters and sort (posted with the name) as one of the member's own."""
    filters = ListFilters.parse(request.POST, views=workspace_view_names(membership=request.membership))
    try:
        saved_filter_save(
            tenant=request.tenant, user=request.user, name=request.POST.get("name", ""), query=filters.query_string()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(f"{reverse('workspace:home')}?{filters.query_string()}")


@member_required()
@require_POST
def saved_filter_delete_view(request, saved_filter_id: int):
    if not saved_filter_delete(tenant=request.tenant, user=request.user, saved_filter_id=saved_filter_id):
        raise Http404("No such saved filter.")
    return redirect("workspace:home")


@member_required()
def conversation_detail(request, number: int):
    conversation = _conversation_or_404(request, number)
    conversation_mark_read(tenant=request.tenant, user=request.user, conversation=conversation)
    return _conversation_page(request, conversation)


def _conversation_page(request, conversation: Conversation, **extra):
    """The conversation in the pane (htmx) or the whole workspace page around it."""
    context = {**_conversation_context(request, conversation), **extra}
    if _wants_pane(request):
        return render(request, "conversations/_conversation.html", context)
    return render(request, "conversations/workspace.html", {**_list_context(request), **context})


def _refused(request, conversation: Conversation, reason: str, *, composer: str, form) -> HttpResponse:
    """A reply or note that did not go: the reason, and the agent's text kept in the composer to fix and resend.
    Answered in place (not redirected) so the draft survives; the address bar stays on the conversation."""
    messages.error(request, reason)
    draft = {"composer": composer, "body": form.data.get("body", ""), "channel": form.data.get("channel", "")}
    if request.FILES:
        messages.info(request, "Attach the files again: a browser cannot keep them across a refusal.")
    response = _conversation_page(request, conversation, draft=draft)
    response["HX-Push-Url"] = _back_to_conversation(request, conversation.number)["Location"]
    return response


def _conversation_context(request, conversation: Conversation) -> dict:
    timeline, earlier = conversation_timeline_recent(conversation=conversation, everything=request.GET.get("all") == "1")
    customer = conversation.customer
    # Reply channels, the panel and the duplicate check all read the customer's identities: fetch them once.
    prefetch_related_objects([customer], "identities")
    members = _tenant_members(request)
    # The agent's own row among them, with its user: naming the agent in canned responses reads nothing more.
    me = next((member for member in members if member.pk == request.membership.pk), request.membership)
    others = customer_other_conversations(tenant=request.tenant, membership=request.membership, conversation=conversation)
    return {
        "conversation": conversation,
        "timeline": timeline,
        "earlier_count": earlier,
        "people": {member.user_id: member.name for member in members},
        "status_form": StatusForm(initial={"status": conversation.status}),
        "note_form": NoteForm(),
        "reply_form": ReplyForm(
            channels=conversation_reply_channels(conversation=conversation), time_zone=request.tenant.time_zone
        ),
        "assign_form": _assign_form(request, members=members, initial={
            "assignee": conversation.assignee_id or "", "team": conversation.team_id or "",
        }),
        "canned": canned_responses_for(
            tenant=request.tenant, conversation=conversation, agent_membership=me
        ),
        "details_form": DetailsForm(initial={"priority": conversation.priority, "tags": ", ".join(conversation.tags)}),
        "identities": customer.identities.all(),
        "other_conversations": others,
        # The ones that may be merged into this one (active or recently resolved), from the same rows.
        "merge_candidates": [
            other for other in others
            if not conversation_merge_refusal(tenant=request.tenant, survivor=conversation, merged=other)
        ],
        "duplicates": list(customer_possible_duplicates(tenant=request.tenant, customer=customer)[:5]),
    }


@member_required()
@require_POST
def conversation_status(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _back_to_conversation(request, number)
    try:
        conversation_set_status(
            tenant=request.tenant, conversation=conversation, status=form.cleaned_data["status"],
            snoozed_until=form.cleaned_data["snoozed_until"], actor=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _back_to_conversation(request, number)


@member_required()
@require_POST
def conversation_add_note(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = NoteForm(request.POST, request.FILES)
    if form.is_valid():
        note_add(
            tenant=request.tenant, conversation=conversation, author=request.user, body=form.cleaned_data["body"],
            files=form.cleaned_data["attachments"],
        )
    elif "body" in form.errors:
        return _refused(request, conversation, "A note needs some text.", composer="note", form=form)
    else:
        return _refused(request, conversation, _form_errors(form), composer="note", form=form)
    return _back_to_conversation(request, number)


@member_required()
@require_POST
def conversation_reply(request, number: int):
    conversation = _conversation_or_404(request, number)
    form = ReplyForm(
        request.POST, request.FILES, channels=conversation_reply_channels(conversation=conversation),
        time_zone=request.tenant.time_zone,
    )
    if not form.is_valid():
        return _refused(request, conversation, _form_errors(form), composer="reply", form=form)
    send_at = form.cleaned_data["send_at"]
    try:
        reply_send(
            tenant=request.tenant, conversation=conversation, author=request.user,
            channel=form.cleaned_data["channel"], body=form.cleaned_data["body"],
            files=form.cleaned_data["attachments"], send_at=send_at,
        )
    except ValidationError as exc:
        return _refused(request, conversation, " ".join(exc.messages), composer="reply", form=form)
    else:
        if send_at is not None:
            messages.success(request, f"Scheduled for {send_at:%Y-%m-%d %H:%M} ({form.time_zone.key}).")
    return _back_to_conversation(request, number)


def _tenant_members(request) -> list[Membership]:
    return list(Membership.objects.for_tenant(request.tenant).select_related("user").order_by("display_name", "user__email"))


def _assign_form(request, data=None, initial=None, members=None) -> AssignForm:
    members = _tenant_members(request) if members is None else members
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
        messages.error(request, _form_errors(form))
        return _back_to_conversation(request, number)
    assignee = (
        Membership.objects.for_tenant(request.tenant).select_related("user").get(user_id=form.cleaned_data["assignee"]).user
        if form.cleaned_data["assignee"] else None
    )
    team = Team.objects.for_tenant(request.tenant).get(pk=form.cleaned_data["team"]) if form.cleaned_data["team"] else None
    try:
        conversation_assign(tenant=request.tenant, conversation=conversation, assignee=assignee, team=team, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _back_to_conversation(request, number)


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
        messages.error(request, _form_errors(form))
    return _back_to_conversation(request, number)


def _form_errors(form) -> str:
    """One line for the message area: each field's label and what is wrong with it."""
    return "; ".join(
        f"{form[name].label}: {' '.join(errors)}" if name in form.fields else " ".join(errors)
        for name, errors in form.errors.items()
    )


@member_required()
@require_POST
def conversation_cancel_scheduled(request, number: int, entry_id: int):
    conversation = _conversation_or_404(request, number)
    try:
        message_cancel_scheduled(tenant=request.tenant, conversation=conversation, entry_id=entry_id, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The scheduled reply is cancelled; it will not be sent.")
    return _back_to_conversation(request, number)


@member_required()
@require_POST
def conversation_merge_view(request, number: int):
    """Merge another conversation of the same customer (by its number) into this one."""
    survivor = _conversation_or_404(request, number)
    form = MergeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _back_to_conversation(request, number)
    other_number = form.cleaned_data["other"]
    try:
        merged = conversation_get(tenant=request.tenant, membership=request.membership, number=other_number)
    except Conversation.DoesNotExist:
        # The same answer for another tenant's, another team's and a missing number.
        messages.error(request, f"There is no conversation #{other_number} you can open in this workspace.")
        return _back_to_conversation(request, number)
    try:
        conversation_merge(tenant=request.tenant, survivor=survivor, merged=merged, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"#{other_number} is merged into #{number}.")
    return _back_to_conversation(request, number)


def _file_response(attachment: Attachment) -> FileResponse:
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The file is gone from storage.") from exc
    response = FileResponse(
        handle, as_attachment=not is_inline(attachment.content_type), filename=attachment.filename,
        content_type=attachment.content_type or "application/octet-stream",
    )
    # Uploaded content never runs as a page of ours, whatever its type claims.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@member_required()
def attachment_download(request, attachment_id: int):
    try:
        attachment = attachment_get(tenant=request.tenant, membership=request.membership, attachment_id=attachment_id)
    except Attachment.DoesNotExist as exc:
        raise Http404("No such file.") from exc
    return _file_response(attachment)


def attachment_public(request, token: str, filename: str):
    """A signed, expiring link to one file, for providers fetching a reply's media (no session)."""
    try:
        attachment = attachment_from_link(token)
    except LinkInvalid as exc:
        raise Http404(str(exc)) from exc
    return _file_response(attachment)
