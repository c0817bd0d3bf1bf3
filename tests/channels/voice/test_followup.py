"""After a call, one click opens the composer on SMS to the caller with a draft; sending it goes out through the
usual reply path from the SMS inbox on the voice inbox's number."""

from __future__ import annotations

import pytest
from django.utils import timezone

from channels_app.models import Channel
from channels_app.services import message_deliver
from conversations.models import EntryKind, TimelineEntry
from customers.models import Identity

from .conftest import (
    AGENT_PHONE,
    CALLER,
    VOICE_NUMBER,
    call_form,
    call_sid,
    customer_texts,
    hook,
    online_agent,
    post,
    the_call,
    twilio_inbox,
    twiml,
    voice_inbox,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "conversation-pane"}


def followup_url(entry) -> str:
    return f"/app/voice/calls/{entry.pk}/follow-up/"


@pytest.fixture
def sms_lines(tenant):
    """An older SMS inbox on another number (what a plain reply would pick) and the one on the voice number."""
    other = twilio_inbox(tenant, channel=Channel.SMS, address="+15550100000")
    same = twilio_inbox(tenant, channel=Channel.SMS, address=VOICE_NUMBER)
    return other, same


@pytest.fixture
def missed_call(client, tenant, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox, "status/"), call_form(sid, CallStatus="no-answer"))
    return the_call(tenant)


def test_the_call_entry_has_a_follow_up_button(client, tenant, agent, missed_call):
    client.force_login(agent)
    page = client.get(f"/app/conversations/{missed_call.conversation.number}/").content.decode()
    assert f'hx-get="{followup_url(missed_call)}"' in page
    assert "Follow up by SMS" in page


def test_the_button_opens_the_composer_on_sms_with_a_missed_call_draft(client, tenant, agent, sms_lines,
                                                                       missed_call):
    client.force_login(agent)
    response = client.get(followup_url(missed_call), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="sms" checked' in html
    assert "sorry we missed your call" in html
    assert f'action="{followup_url(missed_call)}"' in html
    assert f"Follow-up to the call with {CALLER}, from {VOICE_NUMBER}." in html


def test_the_follow_up_reaches_twilio_from_the_voice_number(client, tenant, agent, sms_lines, missed_call,
                                                            fake_twilio):
    client.force_login(agent)
    response = client.post(followup_url(missed_call), {"channel": "sms", "body": "Sorry we missed you! Call back?"})
    assert response["Location"] == f"/app/conversations/{missed_call.conversation.number}/"
    [reply] = TimelineEntry.objects.filter(tenant=tenant, kind=EntryKind.MESSAGE, direction="outbound")
    assert (reply.inbox, reply.channel, reply.data["to"], reply.author) == (sms_lines[1], "sms", CALLER, agent)
    message_deliver(entry_id=reply.pk)
    [create] = fake_twilio.creates()
    assert (create["form"]["To"], create["form"]["From"], create["form"]["Body"]) == (
        CALLER, VOICE_NUMBER, "Sorry we missed you! Call back?",
    )


def test_without_an_sms_inbox_on_that_number_the_tenants_sms_inbox_sends_it(client, tenant, agent, missed_call,
                                                                            fake_twilio):
    line = twilio_inbox(tenant, channel=Channel.SMS, address="+15550100000")
    client.force_login(agent)
    client.post(followup_url(missed_call), {"channel": "sms", "body": "Hello from support"})
    [reply] = TimelineEntry.objects.filter(tenant=tenant, kind=EntryKind.MESSAGE, direction="outbound")
    assert reply.inbox == line


def test_a_refusal_keeps_the_draft_in_the_composer_with_the_reason(client, tenant, agent, sms_lines, missed_call):
    Identity.objects.filter(tenant=tenant, value=CALLER).update(opted_out_at=timezone.now())
    client.force_login(agent)
    response = client.post(followup_url(missed_call), {"channel": "sms", "body": "My edited draft"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("[data-composer]", "outerHTML")
    assert "My edited draft" in html
    assert "STOP" in html or "opted out" in html
    assert not TimelineEntry.objects.filter(tenant=tenant, kind=EntryKind.MESSAGE, direction="outbound").exists()


def test_an_empty_follow_up_is_refused_in_place(client, tenant, agent, sms_lines, missed_call):
    client.force_login(agent)
    response = client.post(followup_url(missed_call), {"channel": "sms", "body": ""}, **HTMX)
    assert response.status_code == 200
    assert "body: This field is required." in response.content.decode()


def test_a_voicemail_gets_a_voicemail_draft(client, tenant, agent, inbox):
    sid = call_sid()
    post(client, hook(inbox), call_form(sid))
    post(client, hook(inbox, "voicemail/"), call_form(sid))
    client.force_login(agent)
    assert "thanks for your voicemail" in client.get(followup_url(the_call(tenant)), **HTMX).content.decode()


def test_an_answered_call_gets_a_thank_you_draft(client, tenant, agent, inbox):
    online_agent(tenant, "first@acme.test", phone="+12025550001")
    sid = call_sid()
    dial = twiml(post(client, hook(inbox), call_form(sid))).find("Dial")
    post(client, dial.get("action"), call_form(sid, DialCallStatus="completed", DialCallDuration="60"))
    client.force_login(agent)
    assert "thanks for your call" in client.get(followup_url(the_call(tenant)), **HTMX).content.decode()


def test_an_unanswered_outbound_call_gets_a_we_tried_draft_to_the_number_called(client, tenant, inbox, sms_lines,
                                                                               fake_twilio):
    caller = online_agent(tenant, "caller@acme.test", phone=AGENT_PHONE).membership.user
    conversation = customer_texts(tenant)
    client.force_login(caller)
    client.post(f"/app/voice/conversations/{conversation.number}/call/")
    entry = conversation.entries.get(kind="call")
    html = client.get(followup_url(entry), **HTMX).content.decode()
    assert "we just tried to call you" in html
    assert f"Follow-up to the call with {CALLER}, from {VOICE_NUMBER}." in html


def test_the_composer_says_where_sms_replies_go_when_the_customer_texts_from_another_number(
    client, tenant, agent, sms_lines, missed_call,
):
    from tests.channels.twilio.conftest import customer_writes

    other = "+12025550177"
    customer = missed_call.customer
    Identity.objects.create(tenant=tenant, customer=customer, kind="phone", value=other)
    customer_writes(client, sms_lines[0], From=other)
    client.force_login(agent)
    html = client.get(followup_url(missed_call), **HTMX).content.decode()
    assert f"SMS replies to this customer go to {other}" in html


def test_without_htmx_the_link_opens_the_conversation(client, tenant, agent, missed_call):
    client.force_login(agent)
    response = client.get(followup_url(missed_call))
    assert response["Location"] == f"/app/conversations/{missed_call.conversation.number}/"


def test_another_tenants_call_is_a_404(client, outsider, sms_lines, missed_call):
    client.force_login(outsider)
    assert client.get(followup_url(missed_call), **HTMX).status_code == 404
    assert client.post(followup_url(missed_call), {"channel": "sms", "body": "Hi"}).status_code == 404


def test_a_call_on_another_agents_conversation_is_a_404(client, tenant, agent, teammate, missed_call):
    from conversations.services import conversation_assign

    conversation_assign(tenant=tenant, conversation=missed_call.conversation, assignee=teammate, team=None)
    client.force_login(agent)
    assert client.get(followup_url(missed_call), **HTMX).status_code == 404


def test_a_timeline_entry_that_is_not_a_call_is_a_404(client, tenant, agent, sms_lines, fake_twilio):
    from tests.channels.twilio.conftest import customer_writes

    message = customer_writes(client, sms_lines[0])
    client.force_login(agent)
    assert client.get(followup_url(message), **HTMX).status_code == 404


def test_another_voice_inbox_of_the_tenant_on_another_number_is_not_used(tenant, missed_call, sms_lines):
    from channels_app.adapters.twilio_voice.followup import followup_inbox

    voice_inbox(tenant, address="+15550100901")
    assert followup_inbox(tenant=tenant, entry=missed_call) == sms_lines[1]
