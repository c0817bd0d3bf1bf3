"""Click-to-call: Twilio rings the agent first, then bridges them to the customer with the inbox's number as
caller id; the call is one outbound `call` entry moved by signed callbacks; every refusal is a clear message."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from channels_app.models import Channel
from conversations.models import EntryKind, TimelineEntry
from conversations.services import conversation_assign
from customers.models import Identity, IdentityKind
from tests.factories import InboxFactory

from .conftest import (
    ACCOUNT_SID,
    AGENT_PHONE,
    BASE,
    CALLER,
    VOICE_NUMBER,
    customer_texts,
    leg,
    online_agent,
    post,
    sign,
    twiml,
    voice_inbox,
)

pytestmark = pytest.mark.django_db

def call_url(conversation) -> str:
    return f"/app/voice/conversations/{conversation.number}/call/"


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def outbound_calls(tenant) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.filter(tenant=tenant, kind=EntryKind.CALL, direction="outbound"))


def hook_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def caller(tenant):
    return online_agent(tenant, "caller@acme.test", phone=AGENT_PHONE).membership.user


@pytest.fixture
def conversation(tenant):
    return customer_texts(tenant)


@pytest.fixture
def placed(client, tenant, inbox, caller, conversation, fake_twilio):
    """The agent clicked Call; Twilio accepted. Returns (entry, the Calls.create request)."""
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert response.status_code == 302, response.content
    [entry] = outbound_calls(tenant)
    [create] = fake_twilio.calls()
    return entry, create


def test_twilio_is_asked_to_ring_the_agent_from_the_inbox_number(client, tenant, inbox, caller, placed):
    entry, create = placed
    assert create["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert (create["form"]["To"], create["form"]["From"]) == (AGENT_PHONE, VOICE_NUMBER)
    assert create["form"]["Url"] == f"{BASE}/hooks/twilio/{inbox.key}/voice/outbound/?entry={entry.pk}"
    assert create["form"]["StatusCallback"] == f"{BASE}/hooks/twilio/{inbox.key}/voice/outbound/status/?entry={entry.pk}"
    assert create["form"]["Method"] == "POST"
    assert entry.external_id.startswith("CA")
    assert (entry.channel, entry.inbox, entry.author, entry.data["to"], entry.data["status"]) == (
        Channel.VOICE, inbox, caller, CALLER, "queued",
    )


def test_the_agent_is_told_their_phone_rings(client, tenant, inbox, caller, conversation, fake_twilio):
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert response["Location"] == f"/app/conversations/{conversation.number}/"
    assert said(response) == [f"Calling your phone now; answer it to be connected to {CALLER}."]


def test_the_bridge_dials_the_customer_with_the_inbox_number_as_caller_id(client, inbox, placed):
    entry, create = placed
    root = twiml(post(client, hook_path(create["form"]["Url"]), leg(entry)))
    [dial] = root.findall("Dial")
    assert dial.get("callerId") == VOICE_NUMBER
    assert [n.text for n in dial.findall("Number")] == [CALLER]
    assert dial.get("action") == f"{BASE}/hooks/twilio/{inbox.key}/voice/outbound/dial/?entry={entry.pk}"
    assert dial.get("record") is None
    entry.refresh_from_db()
    assert entry.data["status"] == "ringing"
    assert entry.data["agent_answered_at"]


def test_the_bridge_refuses_unsigned_or_wrongly_signed_requests(client, tenant, placed):
    entry, create = placed
    path = hook_path(create["form"]["Url"])
    assert post(client, path, leg(entry), signed=False).status_code == 403
    assert post(client, path, leg(entry), token="another-accounts-token").status_code == 403
    entry.refresh_from_db()
    assert "agent_answered_at" not in entry.data


def test_the_bridge_refuses_another_calls_sid_for_the_entry(client, placed):
    entry, create = placed
    form = leg(entry, CallSid="CA" + "f" * 32)
    assert post(client, hook_path(create["form"]["Url"]), form).status_code == 409


def test_another_inboxs_signed_url_does_not_find_the_call(client, tenant, placed):
    entry, _ = placed
    other = voice_inbox(tenant, address="+15550100901")
    response = post(client, f"/hooks/twilio/{other.key}/voice/outbound/?entry={entry.pk}", leg(entry))
    assert response.status_code == 404


def test_recording_is_asked_for_when_the_inbox_records_calls(client, tenant, inbox, placed):
    entry, create = placed
    inbox.settings["record_calls"] = True
    inbox.save()
    [dial] = twiml(post(client, hook_path(create["form"]["Url"]), leg(entry))).findall("Dial")
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("recordingStatusCallback") == f"{BASE}/hooks/twilio/{inbox.key}/voice/recording/"


def test_the_call_moves_through_its_callbacks_like_an_inbound_one(client, tenant, inbox, caller, placed):
    entry, create = placed
    status = hook_path(create["form"]["StatusCallback"])
    for step, shown in (("initiated", "queued"), ("ringing", "ringing"), ("in-progress", "in-progress")):
        assert post(client, status, leg(entry, CallStatus=step)).status_code == 204
        entry.refresh_from_db()
        assert entry.data["status"] == shown
    post(client, hook_path(create["form"]["Url"]), leg(entry))
    dial = f"/hooks/twilio/{inbox.key}/voice/outbound/dial/?entry={entry.pk}"
    assert twiml(post(client, dial, leg(entry, DialCallStatus="completed", DialCallDuration="42"))).find("Hangup") is not None
    post(client, status, leg(entry, CallStatus="completed", CallDuration="55"))
    post(client, status, leg(entry, CallStatus="ringing"))  # late and out of order: ignored
    entry.refresh_from_db()
    assert (entry.data["status"], entry.data["duration"], entry.data["talk_seconds"]) == ("completed", 55, 42)
    assert entry.data["answered_at"] and entry.author == caller
    assert len(outbound_calls(tenant)) == 1


def test_a_customer_who_does_not_pick_up_is_not_a_missed_call_to_call_back(client, tenant, inbox, placed):
    entry, create = placed
    dial = f"/hooks/twilio/{inbox.key}/voice/outbound/dial/?entry={entry.pk}"
    root = twiml(post(client, dial, leg(entry, DialCallStatus="no-answer")))
    assert "did not answer" in root.find("Say").text
    post(client, hook_path(create["form"]["StatusCallback"]), leg(entry, CallStatus="completed", CallDuration="31"))
    entry.refresh_from_db()
    assert entry.data["status"] == "no-answer"
    assert "call_back" not in entry.data
    assert "call back" not in entry.conversation.tags


def test_a_status_callback_racing_calls_create_keys_the_entry_by_its_sid(client, tenant, inbox, placed):
    entry, create = placed
    TimelineEntry.objects.filter(pk=entry.pk).update(external_id=None)
    sid = "CA" + "e" * 32
    response = post(client, hook_path(create["form"]["StatusCallback"]), leg(entry, CallSid=sid, CallStatus="ringing"))
    assert response.status_code == 204
    entry.refresh_from_db()
    assert (entry.external_id, entry.data["status"]) == (sid, "ringing")


def test_a_recording_of_an_outbound_call_lands_on_its_entry(client, tenant, inbox, placed):
    entry, _ = placed
    rec = "RE" + "a" * 32
    form = {"CallSid": entry.external_id, "AccountSid": ACCOUNT_SID, "RecordingSid": rec, "RecordingStatus": "in-progress",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}"}
    assert post(client, f"/hooks/twilio/{inbox.key}/voice/recording/", form).status_code == 204
    entry.refresh_from_db()
    assert entry.data["recording"]["sid"] == rec


def test_the_softphone_is_rung_when_the_agent_chooses_it(client, tenant, inbox, conversation, fake_twilio):
    user = online_agent(tenant, "both@acme.test", phone=AGENT_PHONE, client_identity="agent-both").membership.user
    client.force_login(user)
    form = client.get(call_url(conversation)).content.decode()
    assert 'name="ring"' in form and "Browser softphone" in form
    response = client.post(call_url(conversation), {"ring": "softphone"})
    assert said(response) == [f"Calling your browser softphone now; answer it to be connected to {CALLER}."]
    assert fake_twilio.calls()[0]["form"]["To"] == "client:agent-both"


def test_the_agent_chooses_among_the_customers_numbers_and_the_voice_inboxes(client, tenant, inbox, caller,
                                                                            conversation, fake_twilio):
    Identity.objects.create(tenant=tenant, customer=conversation.customer, kind=IdentityKind.PHONE, value="+12025550177")
    second = voice_inbox(tenant, address="+15550100901")
    client.force_login(caller)
    form = client.get(call_url(conversation)).content.decode()
    assert 'name="number"' in form and "+12025550177" in form and CALLER in form
    assert 'name="inbox"' in form and "+15550100901" in form
    client.post(call_url(conversation), {"number": "+12025550177", "inbox": str(second.pk)})
    [entry] = outbound_calls(tenant)
    assert (entry.data["to"], entry.inbox) == ("+12025550177", second)
    assert fake_twilio.calls()[0]["form"]["From"] == "+15550100901"


def test_without_a_choice_among_several_numbers_nothing_is_placed(client, tenant, inbox, caller, conversation,
                                                                 fake_twilio):
    Identity.objects.create(tenant=tenant, customer=conversation.customer, kind=IdentityKind.PHONE, value="+12025550177")
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert said(response) == [f"The call was not placed: {conversation.customer} has several numbers; choose the one to call."]
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_a_number_that_is_not_the_customers_is_refused(client, tenant, inbox, caller, conversation, fake_twilio):
    client.force_login(caller)
    response = client.post(call_url(conversation), {"number": "+19005550100"})
    assert said(response) == [f"The call was not placed: +19005550100 is not one of {conversation.customer}'s numbers."]
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_an_agent_with_no_phone_or_softphone_is_told_what_to_set(client, tenant, inbox, agent, conversation,
                                                                fake_twilio):
    client.force_login(agent)
    response = client.post(call_url(conversation))
    assert said(response) == ["The call was not placed: Your agent profile has no phone number or Twilio Client "
                              "identity to ring; ask an admin to set one."]
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_a_customer_without_a_phone_number_cannot_be_called(client, tenant, inbox, caller, fake_twilio):
    conversation = customer_texts(tenant, sender="maria@example.org", kind=IdentityKind.EMAIL, channel=Channel.EMAIL)
    client.force_login(caller)
    assert "has no phone number" in client.get(call_url(conversation)).content.decode()
    response = client.post(call_url(conversation))
    assert said(response) == [f"The call was not placed: {conversation.customer} has no phone number; add one to call them."]
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_a_workspace_without_a_voice_inbox_is_told_so(client, tenant, caller, conversation, fake_twilio):
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert said(response) == ["The call was not placed: This workspace has no active voice inbox to call from; "
                              "an admin can add one."]
    assert fake_twilio.calls() == []


def test_an_inbox_without_twilio_credentials_is_named(client, tenant, caller, conversation, fake_twilio):
    InboxFactory(tenant=tenant, channel=Channel.VOICE, name="Support line", address=VOICE_NUMBER, settings={})
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert said(response) == ["The call was not placed: Inbox 'Support line' has no Twilio account SID or auth token; "
                              "set them in admin."]
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_twilio_refusing_the_number_fails_the_call_with_the_reason(client, tenant, inbox, caller, conversation,
                                                                  fake_twilio, caplog):
    fake_twilio.answer(("error", 400, 21215, "Account not authorized to call +12025550999."))
    client.force_login(caller)
    with caplog.at_level(logging.WARNING, logger="channels_app.adapters.twilio_voice.outbound"):
        response = client.post(call_url(conversation))
    reason = "This Twilio account may not call that country or region (geographic permissions). (Twilio error 21215)"
    assert said(response) == [f"The call was not placed: {reason}"]
    [entry] = outbound_calls(tenant)
    assert (entry.data["status"], entry.failure_reason, entry.error_code, entry.external_id) == (
        "failed", reason, "21215", None,
    )
    assert "Twilio refused outbound call entry" in caplog.text
    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()
    assert reason in page


def test_twilio_not_answering_in_time_fails_the_call_honestly(client, tenant, inbox, caller, conversation,
                                                             fake_twilio):
    fake_twilio.answer(("hang", 1.5))
    client.force_login(caller)
    response = client.post(call_url(conversation))
    assert said(response) == ["The call was not placed: Twilio did not answer in time; your phone may still ring. "
                              "If it does not, try again."]
    [entry] = outbound_calls(tenant)
    assert entry.data["status"] == "failed"


def test_an_agent_of_another_tenant_cannot_call_the_customer(client, tenant, inbox, outsider, conversation,
                                                            fake_twilio):
    client.force_login(outsider)
    assert client.get(call_url(conversation)).status_code == 404
    assert client.post(call_url(conversation)).status_code == 404
    assert (outbound_calls(tenant), fake_twilio.calls()) == ([], [])


def test_an_agent_who_cannot_see_the_conversation_cannot_call_from_it(client, tenant, inbox, caller, teammate,
                                                                     conversation, fake_twilio):
    conversation_assign(tenant=tenant, conversation=conversation, assignee=teammate, team=None)
    client.force_login(caller)
    assert client.post(call_url(conversation)).status_code == 404
    assert fake_twilio.calls() == []


def test_placing_a_call_needs_the_csrf_token(tenant, inbox, caller, conversation, fake_twilio):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(caller)
    assert csrf_client.post(call_url(conversation)).status_code == 403
    assert fake_twilio.calls() == []


def test_the_conversation_page_offers_the_call_button(client, tenant, inbox, caller, conversation):
    client.force_login(caller)
    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()
    assert f'hx-get="{call_url(conversation)}"' in page
    form = client.get(call_url(conversation)).content.decode()
    assert "data-call-button" in form and CALLER in form


def test_the_status_url_query_is_part_of_what_twilio_signs(client, placed):
    entry, create = placed
    query = parse_qs(urlsplit(create["form"]["StatusCallback"]).query)
    assert query == {"entry": [str(entry.pk)]}
    other_entry = f"{urlsplit(create['form']['StatusCallback']).path}?entry={entry.pk + 1}"
    form = leg(entry, CallStatus="ringing")
    signature = sign(BASE + hook_path(create["form"]["StatusCallback"]), form)
    assert client.post(other_entry, data=form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403
