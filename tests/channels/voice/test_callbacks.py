"""One call entry per CallSid, whatever order Twilio's webhooks and callbacks come in, and how often."""

from __future__ import annotations

import base64

import pytest

from conversations.models import Attachment, Conversation, TimelineEntry

from .conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER,
    call_form,
    call_sid,
    calls,
    hook,
    online_agent,
    post,
    recording_sid,
    the_call,
    twiml,
)

pytestmark = pytest.mark.django_db

AUDIO = b"ID3" + b"\x00" * 200


def recording_form(sid: str, rec: str, **fields) -> dict:
    form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "RecordingSid": rec, "RecordingStatus": "completed",
            "RecordingDuration": "17",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}"}
    form.update(fields)
    return form


def test_the_call_is_one_entry_on_the_callers_customer_and_conversation(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    call = the_call(tenant)
    assert (call.kind, call.channel, call.direction, call.external_id) == ("call", "voice", "inbound", sid)
    assert call.data["from"] == CALLER
    assert call.data["to"] == "+15550100900"
    assert call.data["status"] == "ringing"
    assert call.data["started_at"]
    assert call.customer.identities.get().value == CALLER
    assert call.conversation.first_channel == "voice"


def test_a_redelivered_call_webhook_finds_the_first_entry(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox), call_form(sid))
    assert len(calls(tenant)) == 1
    assert Conversation.objects.filter(tenant=tenant).count() == 1


def test_a_status_arriving_before_the_call_creates_it_and_the_call_joins_it(client, tenant, inbox):
    sid = call_sid()
    assert post(client, hook(inbox, "status/"), call_form(sid, CallStatus="in-progress")).status_code == 204
    post(client, hook(inbox), call_form(sid))
    call = the_call(tenant)
    assert call.data["status"] == "in-progress"


def test_statuses_only_move_forward_and_repeats_change_nothing(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="95"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="in-progress"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="ringing"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="95"))
    call = the_call(tenant)
    assert call.data["status"] == "completed"
    assert call.data["duration"] == 95
    assert call.data["ended_at"]


def test_a_missed_call_flags_the_conversation_for_a_call_back_once(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    conversation = the_call(tenant).conversation
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=None)
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="no-answer"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="no-answer"))
    conversation.refresh_from_db()
    assert conversation.tags == ["call back"]
    assert conversation.waiting_since is not None
    assert conversation.status == "open"
    [event] = TimelineEntry.objects.filter(conversation=conversation, event="call_back_requested")
    assert event.data["reason"] == "missed"


def test_a_caller_who_hangs_up_before_anyone_answers_needs_a_call_back(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="12"))
    assert the_call(tenant).conversation.tags == ["call back"]


def test_an_answered_call_needs_no_call_back(client, tenant, inbox):
    online_agent(tenant, "first@acme.test", phone="+12025550001")
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    post(client, dial.get("action"), call_form(sid, DialCallStatus="completed", DialCallDuration="60"))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed", CallDuration="70"))
    call = the_call(tenant)
    assert call.data["status"] == "completed"
    assert call.conversation.tags == []


def test_a_voicemail_flags_a_call_back_and_says_goodbye(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    root = twiml(post(client, hook(inbox, "voicemail/"), call_form(sid, RecordingDuration="9")))
    assert root.find("Hangup") is not None
    call = the_call(tenant)
    assert call.data["voicemail"] is True
    assert call.conversation.tags == ["call back"]
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="completed"))
    [event] = TimelineEntry.objects.filter(conversation=call.conversation, event="call_back_requested")
    assert event.data["reason"] == "voicemail"


def test_the_recording_is_fetched_with_the_inbox_credentials_and_attached_once(
    client, tenant, inbox, fake_twilio, celery_eager, django_capture_on_commit_callbacks
):
    sid, rec = call_sid(), recording_sid()
    fake_twilio.media[f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}.mp3"] = (AUDIO, "audio/mpeg")
    post(client, hook(inbox), call_form(sid))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, hook(inbox, "recording/"), recording_form(sid, rec)).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        post(client, hook(inbox, "recording/"), recording_form(sid, rec))
    [attachment] = Attachment.objects.filter(tenant=tenant, entry=the_call(tenant))
    assert (attachment.content_type, attachment.size, attachment.filename) == ("audio/mpeg", len(AUDIO), f"{rec}.mp3")
    assert attachment.file.read() == AUDIO
    [fetch] = [r for r in fake_twilio.requests if r["method"] == "GET"]
    assert fetch["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert the_call(tenant).data["recording"]["duration"] == 17


def test_a_recording_that_failed_is_noted_but_not_fetched(
    client, tenant, inbox, fake_twilio, celery_eager, django_capture_on_commit_callbacks
):
    sid, rec = call_sid(), recording_sid()
    post(client, hook(inbox), call_form(sid))
    with django_capture_on_commit_callbacks(execute=True):
        post(client, hook(inbox, "recording/"), recording_form(sid, rec, RecordingStatus="failed"))
    assert the_call(tenant).data["recording"]["status"] == "failed"
    assert fake_twilio.requests == []


def test_the_transcription_lands_on_the_call(client, tenant, inbox):
    sid, rec = call_sid(), recording_sid()
    post(client, hook(inbox), call_form(sid))
    form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "RecordingSid": rec, "TranscriptionStatus": "completed",
            "TranscriptionText": "Hi, it is about my order, please call me back."}
    assert post(client, hook(inbox, "recording/"), form).status_code == 204
    assert post(client, hook(inbox, "recording/"), form).status_code == 204
    assert the_call(tenant).data["transcript"] == "Hi, it is about my order, please call me back."


def test_a_recording_of_an_unknown_call_is_a_404(client, tenant, inbox):
    response = post(client, hook(inbox, "recording/"), recording_form(call_sid(), recording_sid()))
    assert response.status_code == 404
    assert calls(tenant) == []
