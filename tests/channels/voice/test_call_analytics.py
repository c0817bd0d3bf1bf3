"""A call with talk time is one CALL_HANDLED analytics event: talk seconds, the answering agent, voice, the inbox,
however often Twilio repeats its callbacks."""

from __future__ import annotations

import pytest

from analytics.models import AnalyticsEvent, EventName

from .conftest import (
    AGENT_PHONE,
    AUTH_TOKEN,
    call_form,
    call_sid,
    customer_texts,
    hook,
    leg,
    online_agent,
    post,
    the_call,
    twiml,
)

pytestmark = pytest.mark.django_db


def handled(tenant) -> list[AnalyticsEvent]:
    return list(AnalyticsEvent.objects.filter(tenant=tenant, name=EventName.CALL_HANDLED))


def test_an_answered_inbound_call_is_handled_once_with_its_talk_time(client, tenant, inbox):
    profile = online_agent(tenant, "first@acme.test", phone="+12025550001")
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    for _ in range(2):  # Twilio retries a callback it did not see answered
        post(client, dial.get("action"), call_form(sid, DialCallStatus="completed", DialCallDuration="42"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="50"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="50"))
    [event] = handled(tenant)
    call = the_call(tenant)
    assert (event.value_seconds, event.agent_id_snapshot, event.channel, event.inbox_id_snapshot) == (
        42.0, profile.membership.user_id, "voice", inbox.pk,
    )
    assert (event.conversation_id, event.data["call_entry_id"]) == (call.conversation_id, call.pk)


def test_a_missed_call_is_not_a_handled_one(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="no-answer"))
    assert handled(tenant) == []


def test_an_answered_outbound_call_is_handled_once_for_the_agent_who_placed_it(client, tenant, inbox, fake_twilio):
    caller = online_agent(tenant, "caller@acme.test", phone=AGENT_PHONE).membership.user
    conversation = customer_texts(tenant)
    client.force_login(caller)
    client.post(f"/app/voice/conversations/{conversation.number}/call/")
    [create] = fake_twilio.calls()
    entry = conversation.entries.get(kind="call")
    dial = f"/hooks/twilio/{inbox.key}/voice/outbound/dial/?entry={entry.pk}"
    for _ in range(3):
        post(client, dial, leg(entry, DialCallStatus="completed", DialCallDuration="73"), token=AUTH_TOKEN)
    [event] = handled(tenant)
    assert (event.value_seconds, event.agent_id_snapshot, event.channel, event.inbox_id_snapshot) == (
        73.0, caller.pk, "voice", inbox.pk,
    )
    assert event.data["direction"] == "outbound"
