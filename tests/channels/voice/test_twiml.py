"""What a caller hears and who is rung: greeting, agents one at a time, voicemail, out of hours."""

from __future__ import annotations

import re
import time

import pytest

from routing.models import BusinessCalendar, Presence
from tests.factories import TeamFactory

from .conftest import call_form, call_sid, hook, online_agent, post, the_call, twiml, voice_inbox

pytestmark = pytest.mark.django_db


def test_in_hours_it_greets_and_rings_an_online_agent_of_the_team(client, tenant):
    team = TeamFactory(tenant=tenant, name="Phones")
    online = online_agent(tenant, "online@acme.test", team=team, phone="+12025550001")
    online_agent(tenant, "offline@acme.test", team=team, phone="+12025550002", presence=Presence.OFFLINE)
    online_agent(tenant, "elsewhere@acme.test", team=TeamFactory(tenant=tenant, name="Mail"), phone="+12025550003")
    inbox = voice_inbox(tenant, team_id=team.pk, greeting="Welcome to Acme.", offer_timeout=15)
    root = twiml(post(client, hook(inbox), call_form(call_sid())))
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root.find("Say").text == "Welcome to Acme."
    dial = root.find("Dial")
    assert dial.get("timeout") == "15"
    assert [n.text for n in dial.findall("Number")] == ["+12025550001"]
    assert "/voice/dial/" in dial.get("action")
    assert f"agent={online.membership_id}" in dial.get("action")


def test_an_agent_with_a_softphone_is_rung_as_a_twilio_client(client, tenant, inbox):
    online_agent(tenant, "soft@acme.test", client_identity="agent-soft")
    dial = twiml(post(client, hook(inbox), call_form(call_sid()))).find("Dial")
    assert [c.text for c in dial.findall("Client")] == ["agent-soft"]
    assert dial.findall("Number") == []


def test_with_nobody_online_it_goes_to_voicemail_with_a_recording_callback(client, tenant, inbox):
    online_agent(tenant, "away@acme.test", phone="+12025550001", presence=Presence.AWAY)
    root = twiml(post(client, hook(inbox), call_form(call_sid())))
    assert root.find("Dial") is None
    record = root.find("Record")
    assert record.get("recordingStatusCallback").endswith(hook(inbox, "recording/"))
    assert record.get("transcribeCallback").endswith(hook(inbox, "recording/"))
    assert record.get("action").endswith(hook(inbox, "voicemail/"))
    assert "leave a message" in " ".join(s.text for s in root.findall("Say"))


def test_out_of_hours_it_plays_the_message_and_records_without_ringing_anyone(client, tenant):
    closed = BusinessCalendar.objects.create(tenant=tenant, name="Never open")
    online_agent(tenant, "online@acme.test", phone="+12025550001")
    inbox = voice_inbox(tenant, calendar_id=closed.pk, out_of_hours_greeting="Acme is closed; we open at nine.")
    root = twiml(post(client, hook(inbox), call_form(call_sid())))
    assert root.find("Dial") is None
    assert root.find("Record") is not None
    assert root.find("Say").text.startswith("Acme is closed; we open at nine.")


def test_the_team_calendar_decides_when_the_inbox_has_none(client, tenant):
    team = TeamFactory(tenant=tenant, name="Phones", calendar=BusinessCalendar.objects.create(tenant=tenant, name="Shut"))
    online_agent(tenant, "online@acme.test", team=team, phone="+12025550001")
    inbox = voice_inbox(tenant, team_id=team.pk)
    root = twiml(post(client, hook(inbox), call_form(call_sid())))
    assert root.find("Dial") is None
    assert "closed" in root.find("Say").text


def test_when_an_agent_does_not_answer_the_next_one_is_rung_then_voicemail(client, tenant, inbox):
    first = online_agent(tenant, "first@acme.test", phone="+12025550001")
    second = online_agent(tenant, "second@acme.test", phone="+12025550002")
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    assert dial.find("Number").text == "+12025550001"
    following = twiml(post(client, dial.get("action"), call_form(sid, DialCallStatus="no-answer"))).find("Dial")
    assert following.find("Number").text == "+12025550002"
    assert f"tried={first.membership_id}%2C{second.membership_id}" in following.get("action")
    last = twiml(post(client, following.get("action"), call_form(sid, DialCallStatus="busy")))
    assert last.find("Dial") is None
    assert last.find("Record") is not None


def test_after_the_maximum_wait_it_goes_to_voicemail_though_agents_remain(client, tenant):
    online_agent(tenant, "first@acme.test", phone="+12025550001")
    online_agent(tenant, "second@acme.test", phone="+12025550002")
    inbox = voice_inbox(tenant, max_wait=30, offer_timeout=20)
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    action = re.sub(r"started=\d+", f"started={int(time.time()) - 25}", dial.get("action"))
    root = twiml(post(client, action, call_form(sid, DialCallStatus="no-answer")))
    assert root.find("Dial") is None
    assert root.find("Record") is not None


def test_an_answered_leg_hangs_up_and_records_who_answered(client, tenant, inbox):
    agent = online_agent(tenant, "first@acme.test", phone="+12025550001")
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    root = twiml(post(client, dial.get("action"), call_form(sid, DialCallStatus="completed", DialCallDuration="42")))
    assert [child.tag for child in root] == ["Hangup"]
    call = the_call(tenant)
    assert call.author == agent.membership.user
    assert call.data["answered_at"]
    assert call.data["status"] == "in-progress"


def test_greeting_texts_have_defaults(client, tenant, inbox):
    online_agent(tenant, "first@acme.test", phone="+12025550001")
    root = twiml(post(client, hook(inbox), call_form(call_sid())))
    assert "Thank you for calling" in root.find("Say").text


def test_without_a_team_on_the_inbox_the_routing_rules_pick_the_team(client, tenant, inbox):
    from routing.models import RoutingRule
    from routing.rules import rules_cache_clear

    phones = TeamFactory(tenant=tenant, name="Phones")
    RoutingRule.objects.create(tenant=tenant, name="Calls to phones", channels=["voice"], set_team=phones)
    rules_cache_clear()
    online_agent(tenant, "mail@acme.test", team=TeamFactory(tenant=tenant, name="Mail"), phone="+12025550003")
    online_agent(tenant, "phones@acme.test", team=phones, phone="+12025550001")
    dial = twiml(post(client, hook(inbox), call_form(call_sid()))).find("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+12025550001"]
