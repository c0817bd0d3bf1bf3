"""Bad input from a signed request is a 4xx with a reason, never a 500, and stores nothing."""

from __future__ import annotations

import pytest

from channels_app.adapters.base import SendRefused, get_adapter
from conversations.models import TimelineEntry

from .conftest import call_form, call_sid, hook, post, recording_sid

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("route", "fields", "status"),
    [
        ("", {"CallSid": "CA123"}, 400),
        ("", {"CallSid": ""}, 400),
        ("", {"From": ""}, 400),
        ("", {"From": "not a number"}, 400),
        ("", {"From": "+1" + "9" * 40}, 400),
        ("", {"ParentCallSid": "CA" + "f" * 32}, 422),
        ("status/", {"CallStatus": "exploded"}, 400),
        ("status/", {"CallStatus": ""}, 400),
        ("status/", {"CallStatus": "completed", "CallDuration": "-4"}, 400),
        ("status/", {"CallStatus": "completed", "CallDuration": "9" * 30}, 400),
        ("status/", {"CallStatus": "completed", "From": "\x00"}, 400),
        ("recording/", {"RecordingSid": "nope"}, 400),
        ("voicemail/", {}, 404),
        ("dial/", {"DialCallStatus": "no-answer"}, 404),
    ],
)
def test_bad_input_is_a_4xx(client, tenant, inbox, route, fields, status):
    response = post(client, hook(inbox, route), call_form(call_sid(), **fields))
    assert response.status_code == status, response.content
    assert "detail" in response.json()
    assert not TimelineEntry.objects.filter(kind="call").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"RecordingUrl": "http://api.twilio.com/x"},
        {"RecordingUrl": ""},
        {"RecordingDuration": "ten"},
        {"TranscriptionText": "x" * 30_000},
    ],
)
def test_bad_recording_callbacks_are_a_4xx(client, tenant, inbox, fields):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    form = {"CallSid": sid, "AccountSid": call_form(sid)["AccountSid"], "RecordingSid": recording_sid(),
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Recordings/RE1", **fields}
    response = post(client, hook(inbox, "recording/"), form)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("query", ["?tried=x&started=1", "?agent=1&started=", "?agent=a&started=1", "?tried=1,,2&started=1"])
def test_a_tampered_dial_url_is_a_400(client, tenant, inbox, query):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    assert post(client, hook(inbox, "dial/") + query, call_form(sid, DialCallStatus="no-answer")).status_code == 400


def test_get_is_not_allowed_and_unknown_keys_are_404(client, inbox):
    assert client.get(hook(inbox)).status_code == 405
    assert post(client, "/hooks/twilio/no-such-key/voice/", call_form(call_sid())).status_code == 404


def test_the_composer_cannot_send_text_on_voice(tenant):
    with pytest.raises(SendRefused):
        get_adapter("voice").check_can_send(conversation=None, inbox=None, recipient=None, body="hi", data={})
