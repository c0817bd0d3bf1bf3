from __future__ import annotations

from omnidesk.lib.events import EVENT_SCHEMAS
from routing.models import Presence
from routing.services import agent_capacity_changed, agent_set_presence
from tests.routing.engine.conftest import make_agent


def test_agent_events_are_emitted_once_per_change_with_their_schema_keys(
    tenant, celery_eager, django_capture_on_commit_callbacks, captured_events
):
    dana = make_agent(tenant, None, "Dana", presence=Presence.OFFLINE)

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_presence(tenant=tenant, membership=dana.membership, presence=Presence.ONLINE)
        agent_set_presence(tenant=tenant, membership=dana.membership, presence=Presence.ONLINE)
        agent_capacity_changed(tenant=tenant, profile=dana)

    assert [(e.name, e.payload) for e in captured_events] == [
        ("agent.presence_changed", {"membership_id": dana.membership_id, "presence": "online"}),
        ("agent.capacity_changed", {"membership_id": dana.membership_id}),
    ]
    assert all(EVENT_SCHEMAS[e.name] == e.payload.keys() for e in captured_events)
