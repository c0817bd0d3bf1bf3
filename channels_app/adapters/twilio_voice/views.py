"""Twilio Voice webhooks: verify, parse, record, answer (TwiML for the call itself, 200 for callbacks).

Every route checks the signature first; nothing is read or stored for a request Twilio did not sign.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from twilio.twiml.voice_response import VoiceResponse

from channels_app.adapters.base import MalformedInbound, SignatureError
from channels_app.adapters.twilio_voice import outbound, services, twiml
from channels_app.adapters.twilio_voice.adapter import TwilioVoiceAdapter
from channels_app.inbound import HOOK_INBOX_CACHE_SECONDS, InboundRejected, inbox_for_hook
from channels_app.models import Channel, Inbox
from conversations.services import ConversationError
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
MAX_TRANSCRIPT = 20_000
ANSWERED_DIAL_STATUSES = {"completed", "answered"}

View = Callable[[HttpRequest, Inbox, TwilioVoiceAdapter], HttpResponse]


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def voice_hook(view: View) -> Callable[[HttpRequest, str], HttpResponse]:
    """POST only, the inbox from the key, the signature checked; storage failures as 503/400."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, key: str) -> HttpResponse:
        adapter = TwilioVoiceAdapter()
        try:
            if request.method != "POST":
                raise InboundRejected(405, "Use POST.")
            try:
                request.POST  # noqa: B018 - parse now, so size limits answer 413 rather than fail later
            except (RequestDataTooBig, TooManyFieldsSent) as exc:
                raise InboundRejected(413, "The request is too large.") from exc
            inbox = inbox_for_hook(key, (Channel.VOICE,), cache_seconds=HOOK_INBOX_CACHE_SECONDS)
            try:
                adapter.verify(request, inbox)
            except SignatureError as exc:
                logger.warning("Rejected Twilio voice webhook for inbox %s: %s", inbox.pk, exc)
                raise InboundRejected(403, str(exc)) from exc
            try:
                return view(request, inbox, adapter)
            except MalformedInbound as exc:
                logger.info("Malformed Twilio voice webhook for inbox %s: %s", inbox.pk, exc)
                raise InboundRejected(exc.status, str(exc)) from exc
            except (InvalidIdentity, ConversationError) as exc:
                raise InboundRejected(400, " ".join(exc.messages)) from exc
            except (OperationalError, InterfaceError) as exc:
                logger.error("Database unavailable handling a Twilio voice webhook: %s", exc)
                raise InboundRejected(503, "Storage is unavailable; retry later.") from exc
            except DataError as exc:
                logger.exception("Unstorable Twilio voice webhook for inbox %s", inbox.pk)
                raise InboundRejected(400, "A value cannot be stored (too long or malformed).") from exc
            except DatabaseError as exc:
                logger.exception("Database error handling a Twilio voice webhook")
                raise InboundRejected(503, "Storage failed; retry later.") from exc
        except InboundRejected as exc:
            return exc.response()

    return wrapper


def _call_sid(request: HttpRequest) -> str:
    sid = request.POST.get("CallSid", "").strip()
    if not CALL_SID.fullmatch(sid):
        raise MalformedInbound("CallSid is missing or is not a Twilio call SID.")
    return sid


def _int_field(request: HttpRequest, name: str) -> int | None:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 7:
        raise MalformedInbound(f"{name} is not a number of seconds.")
    return int(raw)


def _record_call(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter):
    """The call's entry, created from this request (From and To) when it is the first to arrive."""
    call_sid = _call_sid(request)
    entry = services.call_entry(inbox=inbox, call_sid=call_sid)
    if entry is not None:
        return entry, None
    if not request.POST.get("From", "").strip():
        raise MalformedInbound("From is missing.")
    caller = adapter.address(request.POST["From"], inbox, field="From")
    called = request.POST.get("To", "").strip()[:64] or inbox.address
    result = services.call_record_inbound(inbox=inbox, call_sid=call_sid, caller=caller, called=called,
                                          status="ringing")
    return result.entry, result


def _parent_call(request: HttpRequest) -> None:
    if request.POST.get("ParentCallSid"):
        # An agent's leg of a <Dial>: its outcome reaches us through the dial route instead.
        raise MalformedInbound("Callbacks of dialled legs are not accepted here.", status=422)


@voice_hook
def incoming_call(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """A call comes in: record it, then greet and ring the first agent, or send it to voicemail."""
    _parent_call(request)
    entry, _ = _record_call(request, inbox, adapter)
    config = services.voice_config(inbox)
    team = services.voice_team(inbox=inbox, conversation=entry.conversation)
    response = VoiceResponse()
    if not services.voice_is_open(inbox=inbox, team=team):
        return _twiml(twiml.voicemail(response, inbox, config, prompt=f"{config.out_of_hours_greeting} {config.voicemail_prompt}"))
    response.say(config.greeting, language=config.language)
    agents = services.voice_agents(inbox=inbox, team=team)
    if not agents:
        return _twiml(twiml.voicemail(response, inbox, config, prompt=f"{config.nobody_prompt} {config.voicemail_prompt}"))
    return _twiml(twiml.offer(response, inbox, config, agent=agents[0], tried=[], started=int(time.time())))


def _id_list(raw: str) -> list[int]:
    if not raw:
        return []
    parts = raw.split(",")
    if len(parts) > 100 or not all(p.isdigit() and len(p) < 12 for p in parts):
        raise MalformedInbound("tried is not a list of ids.")
    return [int(p) for p in parts]


@voice_hook
def dial_result(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """An agent's leg ended: answered (the call is over), else ring the next agent until the maximum wait,
    then voicemail."""
    entry = services.call_entry(inbox=inbox, call_sid=_call_sid(request))
    if entry is None:
        raise MalformedInbound("Unknown call.", status=404)
    dial_status = request.POST.get("DialCallStatus", "").strip().lower()
    tried = _id_list(request.GET.get("tried", ""))
    agent = request.GET.get("agent", "")
    started = request.GET.get("started", "")
    if not started.isdigit() or (agent and not agent.isdigit()):
        raise MalformedInbound("The dial URL is missing its agent or start time.")
    config = services.voice_config(inbox)
    if dial_status in ANSWERED_DIAL_STATUSES:
        services.call_answered(entry=entry, membership_id=int(agent) if agent else None,
                               talk_seconds=_int_field(request, "DialCallDuration"))
        return _twiml(twiml.hangup())
    response = VoiceResponse()
    waited = time.time() - int(started)
    team = services.voice_team(inbox=inbox, conversation=entry.conversation)
    agents = services.voice_agents(inbox=inbox, team=team, exclude=frozenset(tried))
    if agents and waited + config.offer_timeout <= config.max_wait:
        return _twiml(twiml.offer(response, inbox, config, agent=agents[0], tried=tried, started=int(started)))
    return _twiml(twiml.voicemail(response, inbox, config, prompt=f"{config.nobody_prompt} {config.voicemail_prompt}"))


@voice_hook
def voicemail_done(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """<Record> finished (the caller left a message or hung up): the call needs a call back."""
    entry = services.call_entry(inbox=inbox, call_sid=_call_sid(request))
    if entry is None:
        raise MalformedInbound("Unknown call.", status=404)
    services.call_voicemail_reached(entry=entry)
    return _twiml(twiml.thanks(services.voice_config(inbox)))


@voice_hook
def status_callback(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """Call progress (ringing, in-progress, completed…), in any order; the first to arrive records the call."""
    _parent_call(request)
    status = request.POST.get("CallStatus", "").strip().lower()
    if status not in services.STATUS_RANK:
        raise MalformedInbound("CallStatus is missing or unknown.")
    duration = _int_field(request, "CallDuration")
    entry, _ = _record_call(request, inbox, adapter)
    services.call_update_status(entry=entry, status=status, duration=duration)
    return HttpResponse(status=204)


@voice_hook
def recording_callback(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """A recording is ready (then fetched by a worker), or its transcription arrived."""
    call_sid = _call_sid(request)
    recording_sid = request.POST.get("RecordingSid", "").strip()
    if not RECORDING_SID.fullmatch(recording_sid):
        raise MalformedInbound("RecordingSid is missing or is not a Twilio recording SID.")
    entry = services.call_entry(inbox=inbox, call_sid=call_sid)
    if entry is None:
        raise MalformedInbound("Unknown call.", status=404)
    if "TranscriptionText" in request.POST or "TranscriptionStatus" in request.POST:
        text = request.POST.get("TranscriptionText", "")
        if len(text) > MAX_TRANSCRIPT:
            raise MalformedInbound("TranscriptionText is too long.", status=413)
        if request.POST.get("TranscriptionStatus", "completed").strip().lower() == "completed" and text.strip():
            services.call_transcript_record(entry=entry, text=text.replace("\x00", ""))
        return HttpResponse(status=204)
    url = request.POST.get("RecordingUrl", "").strip()
    if not url.startswith("https://") or len(url) > 1000:
        raise MalformedInbound("RecordingUrl is missing or not an https URL.")
    status = request.POST.get("RecordingStatus", "completed").strip().lower()[:32]
    services.call_recording_record(
        entry=entry, recording_sid=recording_sid, url=url, status=status,
        duration=_int_field(request, "RecordingDuration"),
    )
    return HttpResponse(status=204)


# --- outbound calls (click-to-call): the entry id is in the signed URL, the CallSid in the form ---------


def _outbound_entry(request: HttpRequest, inbox: Inbox):
    call_sid = _call_sid(request)
    raw = request.GET.get("entry", "")
    if not raw.isdigit() or len(raw) > 18:
        raise MalformedInbound("The URL is missing its call entry.")
    entry = outbound.outbound_call_entry(inbox=inbox, entry_id=int(raw))
    if entry is None:
        raise MalformedInbound("Unknown call.", status=404)
    if entry.external_id is None and outbound.call_attach_sid(entry=entry, call_sid=call_sid):
        entry.external_id = call_sid
    elif entry.external_id != call_sid:
        # Twilio's answer to Calls.create gave this entry another CallSid.
        raise MalformedInbound("That call entry belongs to another call.", status=409)
    return entry


@voice_hook
def outbound_answered(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """The agent picked up: bridge them to the customer's number stored on the call (never the request's)."""
    _parent_call(request)
    entry = _outbound_entry(request, inbox)
    services.call_agent_reached(entry=entry)
    config = services.voice_config(inbox)
    return _twiml(twiml.bridge(inbox, config, entry_id=entry.pk, customer_number=entry.data.get("to", ""),
                               record=config.record_calls))


@voice_hook
def outbound_dial_result(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """The customer's leg ended: answered (talk time), else busy, no answer or failed."""
    entry = _outbound_entry(request, inbox)
    dial_status = request.POST.get("DialCallStatus", "").strip().lower()
    if dial_status in ANSWERED_DIAL_STATUSES:
        services.call_answered(entry=entry, membership_id=entry.data.get("agent_membership_id"),
                               talk_seconds=_int_field(request, "DialCallDuration"))
        return _twiml(twiml.hangup())
    if dial_status not in services.FINAL_STATUSES:
        raise MalformedInbound("DialCallStatus is missing or unknown.")
    services.call_update_status(entry=entry, status=dial_status)
    return _twiml(twiml.not_reached(services.voice_config(inbox), dial_status))


@voice_hook
def outbound_status(request: HttpRequest, inbox: Inbox, adapter: TwilioVoiceAdapter) -> HttpResponse:
    """Progress of the agent's leg, the call itself (initiated, ringing, in-progress, completed…), in any order."""
    _parent_call(request)
    status = request.POST.get("CallStatus", "").strip().lower()
    if status not in services.STATUS_RANK:
        raise MalformedInbound("CallStatus is missing or unknown.")
    duration = _int_field(request, "CallDuration")
    entry = _outbound_entry(request, inbox)
    services.call_update_status(entry=entry, status=status, duration=duration)
    return HttpResponse(status=204)
