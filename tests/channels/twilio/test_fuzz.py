"""Whatever Twilio-shaped form arrives, the parser answers a message or MalformedInbound, nothing else."""

from __future__ import annotations

from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_app.adapters.base import MalformedInbound
from channels_app.adapters.twilio_sms.adapter import TwilioSmsAdapter
from channels_app.adapters.twilio_whatsapp.adapter import TwilioWhatsAppAdapter
from channels_app.models import Inbox
from customers.models import Tenant

FIELDS = ["MessageSid", "SmsMessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
          "MediaUrl1", "ProfileName", "OptOutType", "ButtonPayload", "Latitude", "AccountSid"]
values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["SM" + "a" * 32, "+12025550143", "whatsapp:+12025550143", "1", "11", "-1", "https://api.twilio.com/x",
                     "STOP", "whatsapp:", "+", ""]),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))
INBOXES = [
    (adapter, Inbox(tenant=Tenant(slug="fuzz", default_region="US"), channel=adapter.channel, address="+15550100000"))
    for adapter in (TwilioSmsAdapter(), TwilioWhatsAppAdapter())
]


def parse(adapter, inbox, request):
    try:
        message = adapter.parse_inbound(request, inbox)
    except MalformedInbound:
        return None
    assert message.external_id and message.sender_value.startswith("+")
    return message


@settings(max_examples=300, deadline=None)
@given(form=forms, which=st.integers(min_value=0, max_value=1))
def test_random_forms_parse_or_raise_malformed_inbound(form, which):
    adapter, inbox = INBOXES[which]
    parse(adapter, inbox, RequestFactory().post("/hooks/twilio/k/messages/", data=form))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300), which=st.integers(min_value=0, max_value=1))
def test_random_bodies_parse_or_raise_malformed_inbound(raw, which):
    adapter, inbox = INBOXES[which]
    request = RequestFactory().post("/hooks/twilio/k/messages/", data=raw, content_type="application/x-www-form-urlencoded")
    parse(adapter, inbox, request)
