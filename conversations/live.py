"""Live updates: every domain event goes, after commit, to the websocket groups of the people allowed to see it.

Events carry ids, never content: a client that hears about a conversation refetches it through the
permission-checked views. Groups are per tenant: supervisors and admins see everything, agents see their
own conversations, their teams' and the unassigned ones (as `conversations.selectors.conversation_list`).
"""

from __future__ import annotations

import logging
import uuid

from channels.layers import get_channel_layer

from conversations.models import Conversation
from customers.models import Membership, Role
from omnidesk.lib.events import DomainEvent, subscribe
from omnidesk.lib.layer_send import group_send_all

logger = logging.getLogger(__name__)


def group_everything(tenant_id: int) -> str:
    return f"t{tenant_id}.all"


def group_unassigned(tenant_id: int) -> str:
    return f"t{tenant_id}.agents"


def group_user(tenant_id: int, user_id: int) -> str:
    return f"t{tenant_id}.u{user_id}"


def group_team(tenant_id: int, team_id: int) -> str:
    return f"t{tenant_id}.team{team_id}"


def groups_of_member(membership: Membership) -> list[str]:
    """The groups a member's websocket joins."""
    tenant_id = membership.tenant_id
    if membership.has_role(Role.SUPERVISOR):
        return [group_everything(tenant_id), group_user(tenant_id, membership.user_id)]
    team_ids = membership.teams.values_list("pk", flat=True)
    return [
        group_unassigned(tenant_id), group_user(tenant_id, membership.user_id),
        *(group_team(tenant_id, team_id) for team_id in team_ids),
    ]


def audience_of(event: DomainEvent) -> list[str]:
    tenant_id = event.tenant_id
    conversation_id = event.payload.get("conversation_id")
    if conversation_id is None:
        # Tenant-wide news (presence, customers): every member.
        return [group_everything(tenant_id), group_unassigned(tenant_id)]
    if event.owner is not None:
        row = {"assignee_id": event.owner[0], "team_id": event.owner[1]}
    else:
        row = (
            Conversation.objects.for_tenant(tenant_id).filter(pk=conversation_id)
            .values("assignee_id", "team_id").first()
        )
    if row is None:
        return []
    groups = [group_everything(tenant_id)]
    if row["assignee_id"] is None:
        groups.append(group_unassigned(tenant_id))
    else:
        groups.append(group_user(tenant_id, row["assignee_id"]))
    if row["team_id"] is not None:
        groups.append(group_team(tenant_id, row["team_id"]))
    # People an SLA warning is meant for (the assignee and the team's supervisors).
    groups.extend(group_user(tenant_id, user_id) for user_id in event.payload.get("notify_user_ids") or ())
    return list(dict.fromkeys(groups))


@subscribe("*")
def publish_to_workspaces(event: DomainEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # One delivery id for all groups: a member in several of them (unassigned and a team) hears it once.
    message = {"type": "domain.event", "event": event.as_dict(), "delivery_id": uuid.uuid4().hex}
    group_send_all(layer, audience_of(event), message)


# Web-chat visitors hear presence changes too (their handler subscribes on import).
from channels_app.adapters.web_chat import live as _web_chat_live  # noqa: E402,F401
