"""Signed Twilio Voice webhooks against a voice inbox, agents to ring, and the TwiML answers read back."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from channels_app.models import Channel
from conversations.models import EntryKind, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.models import IdentityKind, Role
from routing.models import AgentProfile, Presence
from tests.channels.twilio.conftest import (  # noqa: F401 - fixtures shared with the messaging tests
    ACCOUNT_SID,
    AUTH_TOKEN,
    fake_twilio,
    inbox_cache_cleared,
    sign,
    twilio_inbox,
)
from tests.conftest import seated_user

BASE = "http://testserver"
VOICE_NUMBER = "+15550100900"
CALLER = "+12025550143"
AGENT_PHONE = "+12025550999"


def call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def recording_sid() -> str:
    return "RE" + uuid.uuid4().hex


def voice_inbox(tenant, token: str = AUTH_TOKEN, address: str = VOICE_NUMBER, **settings):
    inbox = twilio_inbox(tenant, channel=Channel.VOICE, address=address, token=token)
    inbox.settings = {**inbox.settings, **settings}
    inbox.save()
    return inbox


def call_form(sid: str, **fields) -> dict:
    form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": VOICE_NUMBER,
            "CallStatus": "ringing", "Direction": "inbound"}
    form.update(fields)
    return form


def post(client, url_or_path: str, form: dict, *, token: str = AUTH_TOKEN, signed: bool = True):
    path = url_or_path.removeprefix(BASE)
    headers = {"HTTP_X_TWILIO_SIGNATURE": sign(BASE + path, form, token)} if signed else {}
    return client.post(path, data=form, **headers)


def hook(inbox, route: str = "") -> str:
    return f"/hooks/twilio/{inbox.key}/voice/{route}"


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)


def calls(tenant) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.filter(tenant=tenant, kind=EntryKind.CALL))


def the_call(tenant) -> TimelineEntry:
    [entry] = calls(tenant)
    return entry


def online_agent(tenant, email: str, *, team=None, presence: str = Presence.ONLINE, phone: str = "",
                 client_identity: str = ""):
    user = seated_user(tenant, Role.AGENT, email)
    profile = AgentProfile.objects.create(
        tenant=tenant, membership=user.membership, presence=presence, phone_number=phone,
        client_identity=client_identity,
    )
    if team is not None:
        team.members.add(user.membership)
    return profile


def customer_texts(tenant, sender: str = CALLER, kind: str = IdentityKind.PHONE, channel: str = Channel.SMS):
    """A customer writes in (no inbox needed); their conversation."""
    return message_record_inbound(tenant=tenant, inbox=None, message=InboundMessage(
        channel=channel, sender_kind=kind, sender_value=sender, body="Can someone call me?",
    )).conversation


def leg(entry, **fields) -> dict:
    """A callback of an outbound call's own (agent) leg."""
    form = {"CallSid": entry.external_id, "AccountSid": ACCOUNT_SID, "From": VOICE_NUMBER, "To": AGENT_PHONE,
            "Direction": "outbound-api", "CallStatus": "in-progress"}
    form.update(fields)
    return form


@pytest.fixture
def inbox(tenant):
    return voice_inbox(tenant)
