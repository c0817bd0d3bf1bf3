"""Analytics pages: the live overview and its live region (`/analytics/`)."""

from __future__ import annotations

from functools import wraps

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from analytics.live import Visibility, agent_board, live_tiles
from customers.models import Membership, Role
from omnidesk.lib.access import member_required


def not_for_workspace_refresh(view):
    """The workspace script on every page refetches the page on tenant-wide news to swap its live regions;
    analytics pages keep their own (analytics.js), so that refetch gets an empty answer instead of a render."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.headers.get("X-Requested-With") == "live":
            return HttpResponse(status=204)
        return view(request, *args, **kwargs)

    return wrapper


def _visibility(membership: Membership) -> Visibility:
    """Agents: their own work; supervisors: their teams' people and conversations; admins: everything."""
    if membership.has_role(Role.ADMIN):
        return Visibility()
    if membership.has_role(Role.SUPERVISOR):
        team_ids = frozenset(membership.teams.values_list("pk", flat=True))
        agent_ids = frozenset(
            Membership.objects.for_tenant(membership.tenant_id).filter(teams__in=team_ids)
            .values_list("user_id", flat=True)
        ) | {membership.user_id}
        return Visibility(agent_ids=agent_ids, team_ids=team_ids)
    return Visibility(agent_ids=frozenset({membership.user_id}), team_ids=frozenset())


def _live_context(request) -> dict:
    visibility = _visibility(request.membership)
    now = timezone.now()
    return {
        "tiles": live_tiles(tenant=request.tenant, visibility=visibility, now=now),
        "board": agent_board(tenant=request.tenant, visibility=visibility),
        "now": now,
        "whole_tenant": visibility.unrestricted,
    }


@member_required()
@not_for_workspace_refresh
def overview(request):
    return render(request, "analytics/overview.html", _live_context(request))


@member_required()
def overview_live(request):
    """The tiles and the agent board alone: what the page swaps in when the websocket says something changed."""
    return render(request, "analytics/_live.html", _live_context(request))
