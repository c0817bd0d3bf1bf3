from __future__ import annotations


def current_tenant(request) -> dict:
    from routing.models import AgentProfile, Presence

    membership = getattr(request, "membership", None)
    presence = ""
    if membership is not None:
        presence = (
            AgentProfile.objects.for_tenant(membership.tenant_id).filter(membership=membership)
            .values_list("presence", flat=True).first()
        ) or Presence.OFFLINE
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "user_memberships": getattr(request, "memberships", []),
        "presence_choices": Presence.choices,
        "current_presence": presence,
    }
