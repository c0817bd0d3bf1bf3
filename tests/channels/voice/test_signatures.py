"""Only Twilio, signing with this inbox's token, reaches a call; another tenant's inbox never touches it."""

from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.models import TimelineEntry
from customers.models import Customer
from tests.factories import InboxFactory

from .conftest import (
    ACCOUNT_SID,
    call_form,
    call_sid,
    calls,
    hook,
    post,
    recording_sid,
    sign,
    the_call,
    voice_inbox,
)

pytestmark = pytest.mark.django_db

ROUTES = ["", "status/", "recording/", "voicemail/", "dial/?agent=1&tried=1&started=1"]


def test_a_signed_call_is_answered(client, tenant, inbox):
    assert post(client, hook(inbox), call_form(call_sid())).status_code == 200
    assert len(calls(tenant)) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_a_missing_signature_is_refused_and_nothing_is_stored(client, tenant, inbox, route):
    response = post(client, hook(inbox, route), call_form(call_sid(), CallStatus="completed"), signed=False)
    assert response.status_code == 403
    assert TimelineEntry.objects.count() == 0
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("route", ROUTES)
def test_a_wrong_signature_is_refused_and_nothing_is_stored(client, tenant, inbox, route):
    response = post(client, hook(inbox, route), call_form(call_sid(), CallStatus="completed"), token="not-the-token")
    assert response.status_code == 403
    assert TimelineEntry.objects.count() == 0


def test_a_signature_over_other_fields_is_refused(client, tenant, inbox):
    form = call_form(call_sid())
    response = client.post(hook(inbox), data={**form, "From": "+12025550999"},
                           HTTP_X_TWILIO_SIGNATURE=sign("http://testserver" + hook(inbox), form))
    assert response.status_code == 403
    assert TimelineEntry.objects.count() == 0


def test_another_twilio_account_is_refused(client, tenant, inbox):
    response = post(client, hook(inbox), call_form(call_sid(), AccountSid="AC" + "b" * 32))
    assert response.status_code == 403


def test_an_sms_inbox_key_does_not_take_calls(client, tenant):
    sms = InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS")
    assert post(client, hook(sms), call_form(call_sid())).status_code == 404


def test_another_tenants_inbox_cannot_touch_this_call(client, tenant, other_tenant, inbox):
    theirs = voice_inbox(other_tenant, token="globex-token", address="+442079460000")
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    rec = recording_sid()
    recording = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "RecordingSid": rec, "RecordingStatus": "completed",
                 "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}"}
    # Signed with the other tenant's own token: a valid request for their inbox, which knows no such call.
    assert post(client, hook(theirs, "recording/"), recording, token="globex-token").status_code == 404
    assert post(client, hook(theirs, "voicemail/"), call_form(sid), token="globex-token").status_code == 404
    post(client, hook(theirs, "status/"), call_form(sid, CallStatus="no-answer"), token="globex-token")
    # Signed with this tenant's token but sent to their key: refused.
    assert post(client, hook(theirs, "status/"), call_form(sid, CallStatus="busy")).status_code == 403
    call = the_call(tenant)
    assert call.data["status"] == "ringing"
    assert "recording" not in call.data
    assert call.conversation.tags == []
    assert not TimelineEntry.objects.filter(tenant=other_tenant, conversation=call.conversation).exists()
    assert not TimelineEntry.objects.filter(tenant=tenant).exclude(conversation=call.conversation).exists()
