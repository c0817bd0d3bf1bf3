"""The TwiML Omnidesk answers calls with, built by the twilio library (never by hand: it escapes)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from twilio.twiml.voice_response import VoiceResponse

from channels_app.adapters.twilio_voice.services import VoiceConfig
from channels_app.models import Inbox
from routing.models import AgentProfile

# How long the customer's phone rings before the agent hears "did not answer" (Twilio's own default).
CUSTOMER_RING_SECONDS = 30


def hook_url(inbox: Inbox, name: str, **params: str) -> str:
    """A public URL of one of this inbox's voice routes; Twilio signs it with its query, so the query is trusted."""
    path = reverse(f"twilio_voice:{name}", kwargs={"key": inbox.key})
    return f"{settings.PUBLIC_BASE_URL}{path}" + (f"?{urlencode(params)}" if params else "")


def _say(response: VoiceResponse, text: str, config: VoiceConfig) -> None:
    response.say(text, language=config.language)


def voicemail(response: VoiceResponse, inbox: Inbox, config: VoiceConfig, *, prompt: str = "") -> VoiceResponse:
    """Record a message; Twilio posts the recording and its transcription to the recording route."""
    _say(response, prompt or config.voicemail_prompt, config)
    recording_url = hook_url(inbox, "recording")
    response.record(
        action=hook_url(inbox, "voicemail"), max_length=config.voicemail_max_length, play_beep=True,
        recording_status_callback=recording_url, recording_status_callback_event="completed",
        transcribe=True, transcribe_callback=recording_url,
    )
    response.hangup()
    return response


def offer(response: VoiceResponse, inbox: Inbox, config: VoiceConfig, *, agent: AgentProfile, tried: list[int],
          started: int) -> VoiceResponse:
    """Ring one agent for the offer timeout; the dial route decides what next when the leg ends."""
    dial = response.dial(
        action=hook_url(inbox, "dial", agent=str(agent.membership_id),
                        tried=",".join(str(t) for t in [*tried, agent.membership_id]), started=str(started)),
        timeout=config.offer_timeout, answer_on_bridge=True, caller_id=inbox.address or None,
    )
    if agent.client_identity:
        dial.client(agent.client_identity)
    else:
        dial.number(agent.phone_number)
    return response


def thanks(config: VoiceConfig) -> VoiceResponse:
    response = VoiceResponse()
    _say(response, "Thank you. Goodbye.", config)
    response.hangup()
    return response


def hangup() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def bridge(inbox: Inbox, config: VoiceConfig, *, entry_id: int, customer_number: str, record: bool) -> VoiceResponse:
    """The agent answered an outbound call: dial the customer, showing the inbox's number as caller id."""
    response = VoiceResponse()
    _say(response, "Connecting your call.", config)
    recording = {
        "record": "record-from-answer-dual", "recording_status_callback": hook_url(inbox, "recording"),
        "recording_status_callback_event": "completed",
    } if record else {}
    dial = response.dial(
        action=hook_url(inbox, "outbound_dial", entry=str(entry_id)), caller_id=inbox.address,
        timeout=CUSTOMER_RING_SECONDS, answer_on_bridge=True, **recording,
    )
    dial.number(customer_number)
    return response


def not_reached(config: VoiceConfig, status: str) -> VoiceResponse:
    """Said to the agent when the customer's phone was busy or nobody answered."""
    response = VoiceResponse()
    _say(response, "The line is busy." if status == "busy" else "The customer did not answer.", config)
    response.hangup()
    return response
