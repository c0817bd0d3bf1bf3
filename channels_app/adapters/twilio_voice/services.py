"""Calls on the timeline: one `call` entry per CallSid, created by whichever webhook comes first and moved
forward by the others (Twilio's callbacks arrive in any order, and some more than once)."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from analytics.models import EventName
from analytics.services import analytics_event_record
from channels_app.adapters.base import AdapterError
from channels_app.adapters.twilio_common.media import NotTwilioUrl, twilio_file_fetch
from channels_app.models import Channel, Inbox
from conversations.models import Attachment, Conversation, EntryKind, TimelineEntry
from conversations.services import (
    InboundMessage,
    InboundResult,
    attachment_store,
    conversation_update,
    message_record_inbound,
    note_add,
    timeline_add_event,
)
from customers.models import IdentityKind, Membership
from omnidesk.lib.events import emit_on_commit
from routing.business_hours import is_open
from routing.models import AgentProfile, BusinessCalendar, Presence, Team

logger = logging.getLogger(__name__)

CALL_BACK_TAG = "call back"
# Statuses only move forward; the final ones share a rank, so the first final status reported wins.
STATUS_RANK = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
    "completed": 3, "busy": 3, "no-answer": 3, "failed": 3, "canceled": 3,
}
FINAL_STATUSES = frozenset(status for status, rank in STATUS_RANK.items() if rank == 3)

DEFAULT_GREETING = "Thank you for calling. Please hold while we connect you to the next available agent."
DEFAULT_OUT_OF_HOURS = "Thank you for calling. We are closed right now."
DEFAULT_VOICEMAIL = "Please leave a message after the tone and we will call you back."
DEFAULT_NOBODY = "All of our agents are busy."
DEFAULT_OFFER_TIMEOUT = 20
DEFAULT_MAX_WAIT = 120
DEFAULT_VOICEMAIL_LENGTH = 120


@dataclass(frozen=True)
class VoiceConfig:
    """An inbox's voice settings with defaults; numbers out of range fall back rather than break calls."""

    greeting: str
    out_of_hours_greeting: str
    voicemail_prompt: str
    nobody_prompt: str
    offer_timeout: int
    max_wait: int
    voicemail_max_length: int
    language: str
    # Agents' outbound calls are recorded only when an admin turns this on (callers must be told).
    record_calls: bool = False


def _bounded(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if low <= number <= high else default


def voice_config(inbox: Inbox) -> VoiceConfig:
    def text(name: str, default: str) -> str:
        value = inbox.setting(name)
        return value.strip()[:1000] if isinstance(value, str) and value.strip() else default

    return VoiceConfig(
        greeting=text("greeting", DEFAULT_GREETING),
        out_of_hours_greeting=text("out_of_hours_greeting", DEFAULT_OUT_OF_HOURS),
        voicemail_prompt=text("voicemail_prompt", DEFAULT_VOICEMAIL),
        nobody_prompt=text("nobody_prompt", DEFAULT_NOBODY),
        offer_timeout=_bounded(inbox.setting("offer_timeout"), DEFAULT_OFFER_TIMEOUT, 5, 120),
        max_wait=_bounded(inbox.setting("max_wait"), DEFAULT_MAX_WAIT, 10, 1800),
        voicemail_max_length=_bounded(inbox.setting("voicemail_max_length"), DEFAULT_VOICEMAIL_LENGTH, 10, 600),
        language=text("language", "en-US")[:16],
        record_calls=inbox.setting("record_calls") in (True, "true", "1", "yes", "on"),
    )


# --- who takes the call ---------------------------------------------------------------------------


def _setting_id(inbox: Inbox, name: str) -> int | None:
    value = inbox.setting(name)
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def voice_team(*, inbox: Inbox, conversation: Conversation | None) -> Team | None:
    """The inbox's own team (a number per team), else the team the conversation was routed to, else the
    team the routing rules would give it: the caller is on the line now and cannot wait for the router."""
    from routing.rules import rule_input_for_conversation, rules_for_routing, rules_match

    teams = Team.objects.for_tenant(inbox.tenant_id).select_related("calendar")
    team_id = _setting_id(inbox, "team_id")
    if team_id is not None:
        team = teams.filter(pk=team_id).first()
        if team is not None:
            return team
    if conversation is None:
        return None
    if conversation.team_id is not None:
        return teams.filter(pk=conversation.team_id).first()
    rule = rules_match(rules_for_routing(inbox.tenant), rule_input_for_conversation(conversation)).rule
    return teams.filter(pk=rule.set_team_id).first() if rule is not None and rule.set_team_id else None


def voice_calendar(*, inbox: Inbox, team: Team | None) -> BusinessCalendar | None:
    calendar_id = _setting_id(inbox, "calendar_id")
    if calendar_id is not None:
        calendar = BusinessCalendar.objects.for_tenant(inbox.tenant_id).filter(pk=calendar_id).first()
        if calendar is not None:
            return calendar
    return team.calendar if team is not None else None


def voice_is_open(*, inbox: Inbox, team: Team | None, at: datetime | None = None) -> bool:
    return is_open(voice_calendar(inbox=inbox, team=team), at or timezone.now())


def voice_agents(*, inbox: Inbox, team: Team | None, exclude: frozenset[int] = frozenset(),
                 at: datetime | None = None) -> list[AgentProfile]:
    """Online agents (of the team, if any) who can be rung, inside their own hours, longest idle first."""
    at = at or timezone.now()
    profiles = (
        AgentProfile.objects.for_tenant(inbox.tenant_id).filter(presence=Presence.ONLINE)
        .exclude(phone_number="", client_identity="").exclude(membership_id__in=exclude)
        .select_related("membership__user", "calendar")
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )
    if team is not None:
        profiles = profiles.filter(membership__teams=team)
    return [p for p in profiles[:50] if p.calendar is None or is_open(p.calendar, at)]


# --- the call entry -------------------------------------------------------------------------------


def call_entry(*, inbox: Inbox, call_sid: str) -> TimelineEntry | None:
    """The inbox's call with this CallSid; another inbox's (or tenant's) is never found."""
    return (
        TimelineEntry.objects.for_tenant(inbox.tenant_id).select_related("conversation")
        .filter(inbox=inbox, kind=EntryKind.CALL, external_id=call_sid).first()
    )


def call_record_inbound(*, inbox: Inbox, call_sid: str, caller: str, called: str, status: str) -> InboundResult:
    """The call on the caller's customer and conversation (the continuity rule decides which); a second
    delivery finds the first. `caller` is already normalized (E.164)."""
    at = timezone.now()
    message = InboundMessage(
        channel=Channel.VOICE, sender_kind=IdentityKind.PHONE, sender_value=caller, external_id=call_sid,
        kind=EntryKind.CALL, subject=f"Call from {caller}", received_at=at,
        data={"from": caller, "to": called, "status": status if status in STATUS_RANK else "ringing",
              "direction": "inbound", "started_at": at.isoformat()},
    )
    return message_record_inbound(tenant=inbox.tenant, inbox=inbox, message=message)


def _locked(entry: TimelineEntry) -> TimelineEntry:
    return (
        TimelineEntry.objects.for_tenant(entry.tenant_id).select_for_update(no_key=True, of=("self",))
        .select_related("conversation", "tenant", "customer").get(pk=entry.pk)
    )


def _changed(entry: TimelineEntry) -> None:
    entry.updated_at = timezone.now()
    entry.save(update_fields=["data", "author", "updated_at"])
    if entry.conversation_id is not None:
        emit_on_commit(
            "message.status_changed", tenant_id=entry.tenant_id, conversation_id=entry.conversation_id,
            number=entry.conversation.number, entry_id=entry.pk, delivery_status=entry.data.get("status", ""),
        )


@transaction.atomic
def call_update_status(*, entry: TimelineEntry, status: str, duration: int | None = None,
                       at: datetime | None = None) -> TimelineEntry:
    """Move the call's status forward (never back); a final status without an agent answering is a missed call."""
    at = at or timezone.now()
    entry = _locked(entry)
    data = entry.data
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(data.get("status", ""), -1):
        data["status"] = status
        if status in FINAL_STATUSES:
            data["ended_at"] = at.isoformat()
    if duration is not None and data.get("duration") is None and status in FINAL_STATUSES:
        data["duration"] = duration
    _changed(entry)
    # A customer who did not pick up an agent's call did not call us: nothing to call back.
    if data.get("status") in FINAL_STATUSES and not data.get("answered_at") and data.get("direction") != "outbound":
        _call_back(entry, reason="voicemail" if data.get("voicemail") else "missed", at=at)
    return entry


@transaction.atomic
def call_mark_failed(*, entry: TimelineEntry, reason: str, code: str = "") -> TimelineEntry:
    """Twilio did not place the call: the entry ends as failed, with the reason the agent was shown."""
    entry = _locked(entry)
    entry.data["status"] = "failed"
    entry.data["ended_at"] = timezone.now().isoformat()
    entry.error_code = code[:32]
    entry.failure_reason = reason[:500]
    entry.save(update_fields=["error_code", "failure_reason"])
    _changed(entry)
    return entry


@transaction.atomic
def call_agent_reached(*, entry: TimelineEntry) -> TimelineEntry:
    """The agent answered their leg of an outbound call; the customer is being rung now."""
    entry = _locked(entry)
    if not entry.data.get("agent_answered_at"):
        entry.data["agent_answered_at"] = timezone.now().isoformat()
        if STATUS_RANK.get(entry.data.get("status", ""), -1) < STATUS_RANK["ringing"]:
            entry.data["status"] = "ringing"
        _changed(entry)
    return entry


@transaction.atomic
def call_answered(*, entry: TimelineEntry, membership_id: int | None, talk_seconds: int | None,
                  at: datetime | None = None) -> TimelineEntry:
    """The call was taken (the Dial leg answered): who, when, and its talk time, reported once to analytics."""
    at = at or timezone.now()
    entry = _locked(entry)
    if not entry.data.get("answered_at"):
        answered = at - timedelta(seconds=talk_seconds or 0)
        entry.data["answered_at"] = answered.isoformat()
        membership = (
            Membership.objects.for_tenant(entry.tenant_id).filter(pk=membership_id).select_related("user").first()
            if membership_id is not None else None
        )
        if membership is not None:
            entry.author = membership.user
            entry.data["agent_membership_id"] = membership.pk
        if STATUS_RANK.get(entry.data.get("status", ""), -1) < STATUS_RANK["in-progress"]:
            entry.data["status"] = "in-progress"
        _changed(entry)
    if talk_seconds and not entry.data.get("talk_seconds"):
        entry.data["talk_seconds"] = talk_seconds
        _changed(entry)
    _call_handled(entry, at=at)
    return entry


def _call_handled(entry: TimelineEntry, *, at: datetime) -> None:
    """One CALL_HANDLED analytics event per call with talk time (the flag, under the entry's lock, makes a
    repeated callback a no-op)."""
    if not entry.data.get("talk_seconds") or entry.data.get("handled_recorded") or entry.conversation is None:
        return
    entry.data["handled_recorded"] = True
    entry.save(update_fields=["data"])
    analytics_event_record(
        conversation=entry.conversation, name=EventName.CALL_HANDLED, channel=Channel.VOICE,
        agent_id=entry.author_id, inbox_id=entry.inbox_id, value_seconds=float(entry.data["talk_seconds"]),
        occurred_at=at, data={"call_entry_id": entry.pk, "direction": entry.direction},
    )


@transaction.atomic
def call_voicemail_reached(*, entry: TimelineEntry) -> TimelineEntry:
    """The caller was sent to voicemail: nobody took the call, so it needs a call back."""
    entry = _locked(entry)
    if not entry.data.get("voicemail"):
        entry.data["voicemail"] = True
        _changed(entry)
    _call_back(entry, reason="voicemail", at=timezone.now())
    return entry


def _call_back(entry: TimelineEntry, *, reason: str, at: datetime) -> None:
    """Flag the conversation once per call: the "call back" tag, an event, and the customer waiting (so
    routing and the longest-waiting views put it in front of an agent). The caller holds the entry's lock."""
    if entry.data.get("call_back") or entry.conversation_id is None:
        return
    entry.data["call_back"] = reason
    entry.save(update_fields=["data"])
    current = Conversation.objects.for_tenant(entry.tenant_id).select_for_update(no_key=True).get(pk=entry.conversation_id)
    conversation = conversation_update(tenant=entry.tenant, conversation=current, tags=[*current.tags, CALL_BACK_TAG])
    timeline_add_event(
        tenant=entry.tenant, customer=conversation.customer, conversation=conversation, event="call_back_requested",
        data={"reason": reason, "call_entry_id": entry.pk, "from": entry.data.get("from", "")}, at=at,
    )
    Conversation.objects.for_tenant(entry.tenant_id).filter(pk=conversation.pk, waiting_since__isnull=True).update(
        waiting_since=at
    )


# --- recordings and transcripts -------------------------------------------------------------------


@transaction.atomic
def call_recording_record(*, entry: TimelineEntry, recording_sid: str, url: str, status: str,
                          duration: int | None) -> bool:
    """Note the recording on the call; True when it is new and completed (then it is fetched after commit)."""
    entry = _locked(entry)
    recording = entry.data.get("recording") or {}
    if recording.get("sid") == recording_sid and recording.get("status") == "completed":
        return False
    entry.data["recording"] = {"sid": recording_sid, "url": url, "status": status, "duration": duration}
    _changed(entry)
    if status != "completed":
        return False
    tenant_id, entry_id = entry.tenant_id, entry.pk
    transaction.on_commit(lambda: _enqueue_recording(tenant_id, entry_id))
    return True


def _enqueue_recording(tenant_id: int, entry_id: int) -> None:
    from channels_app.adapters.twilio_voice.tasks import fetch_call_recording

    try:
        fetch_call_recording.delay(tenant_id, entry_id)
    except BrokerError:
        # The recording's URL is stored on the call; only the copy is missing.
        logger.error("Could not enqueue the recording fetch of call entry %s: broker unavailable", entry_id)


def call_recording_fetch(*, tenant_id: int, entry_id: int) -> Attachment | None:
    """Store the call's recording as an audio attachment. Safe to run twice: a stored one is not fetched again."""
    entry = (
        TimelineEntry.objects.for_tenant(tenant_id).select_related("tenant", "inbox", "conversation")
        .filter(pk=entry_id, kind=EntryKind.CALL).first()
    )
    recording = (entry.data.get("recording") or {}) if entry is not None else {}
    if entry is None or entry.inbox is None or not recording.get("url"):
        logger.warning("No recording to fetch on call entry %s of tenant %s", entry_id, tenant_id)
        return None
    # Twilio serves a recording as WAV at its URL, and as MP3 (a tenth of the size) with the extension.
    url = f"{recording['url'].removesuffix('.json')}.mp3"
    existing = Attachment.objects.for_tenant(tenant_id).filter(entry=entry, source_url=url).first()
    if existing is not None:
        return existing
    try:
        fetched = twilio_file_fetch(url=url, inbox=entry.inbox)
    except NotTwilioUrl:
        logger.warning("Refusing to fetch a recording from %s: not a Twilio URL", url)
        return None
    except AdapterError as exc:
        logger.warning("Recording of call entry %s not stored: %s", entry.pk, exc)
        if entry.conversation is not None:
            note_add(tenant=entry.tenant, conversation=entry.conversation, author=None,
                     body=f"The call recording could not be fetched from Twilio ({exc}).")
        return None
    if fetched.content is None:
        logger.warning("Recording of call entry %s is over the size limit; not stored", entry.pk)
        return None
    content_type = fetched.content_type or "audio/mpeg"
    extension = mimetypes.guess_extension(content_type) or ".mp3"
    return attachment_store(
        tenant=entry.tenant, entry=entry, filename=f"{recording.get('sid') or 'recording'}{extension}",
        content=fetched.content, content_type=content_type, source_url=url,
    )


@transaction.atomic
def call_transcript_record(*, entry: TimelineEntry, text: str) -> TimelineEntry:
    entry = _locked(entry)
    if entry.data.get("transcript") != text:
        entry.data["transcript"] = text
        _changed(entry)
    return entry
