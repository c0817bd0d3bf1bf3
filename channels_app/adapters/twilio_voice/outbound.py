"""Click-to-call: Twilio rings the agent first (their phone or browser softphone) and, when they answer,
bridges them to the customer with the voice inbox's number as caller id.

The call is stored before Twilio is asked (one outbound `call` entry, found again by its id in the signed
callback URLs, so a callback racing Calls.create still finds it); if Twilio refuses, the entry says the
call failed and why. The entry then moves through the same status and recording callbacks as inbound calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from django.db import transaction
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException

from channels_app.adapters.base import AdapterError
from channels_app.adapters.twilio_common.client import twilio_client, twilio_credentials
from channels_app.adapters.twilio_common.errors import twilio_error_explanation
from channels_app.adapters.twilio_voice.services import call_mark_failed, voice_config
from channels_app.adapters.twilio_voice.twiml import hook_url
from channels_app.models import Channel, Inbox
from conversations.models import Conversation, Direction, EntryKind, Status, TimelineEntry
from customers.models import Identity, IdentityKind, Membership, Tenant
from omnidesk.lib.events import emit_on_commit
from routing.models import AgentProfile

logger = logging.getLogger(__name__)

RING_PHONE = "phone"
RING_SOFTPHONE = "softphone"

# Twilio's refusals of a call, in words an agent can act on (messaging codes live in twilio_common.errors).
CALL_ERRORS = {
    "13223": "Twilio cannot dial this number (it is not a valid phone number).",
    "13224": "Twilio cannot dial this number (it is not a valid phone number).",
    "21210": "The inbox's number is not a verified caller id of this Twilio account.",
    "21211": "Twilio cannot call that number: it is not a valid phone number.",
    "21212": "The inbox's number is not a valid caller id.",
    "21215": "This Twilio account may not call that country or region (geographic permissions).",
    "21216": "Twilio blocks calls to that number.",
    "21217": "Twilio cannot call that number: it does not look like a valid phone number.",
}


class CallRefused(Exception):
    """The call cannot be placed; nothing was stored. The message says why and what to do."""


class CallFailed(Exception):
    """Twilio did not place the call; the call entry on the timeline says so too."""


@dataclass(frozen=True)
class RingTarget:
    kind: str  # RING_PHONE or RING_SOFTPHONE
    label: str
    address: str  # what Calls.create dials: a number, or client:<identity>


@dataclass(frozen=True)
class CallOptions:
    """What the Call button offers: the customer's numbers, the voice inboxes, and where the agent is rung."""

    numbers: list[Identity]
    inboxes: list[Inbox]
    rings: list[RingTarget]
    default_inbox_id: int | None


def voice_inboxes(*, tenant: Tenant) -> list[Inbox]:
    return list(Inbox.objects.for_tenant(tenant).filter(channel=Channel.VOICE, is_active=True).order_by("name", "pk"))


def ring_targets(*, tenant: Tenant, membership: Membership) -> list[RingTarget]:
    """Where the agent can be rung first, the phone before the softphone (it rings even with the tab closed)."""
    profile = AgentProfile.objects.for_tenant(tenant).filter(membership=membership).first()
    if profile is None:
        return []
    targets = []
    if profile.phone_number.strip():
        number = profile.phone_number.strip()
        targets.append(RingTarget(RING_PHONE, f"My phone ({number})", number))
    if profile.client_identity.strip():
        targets.append(RingTarget(RING_SOFTPHONE, "Browser softphone", f"client:{profile.client_identity.strip()}"))
    return targets


def _last_voice_inbox_id(conversation: Conversation) -> int | None:
    return (
        TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, kind=EntryKind.CALL, inbox__isnull=False)
        .order_by("-created_at").values_list("inbox_id", flat=True).first()
    )


def call_options(*, tenant: Tenant, membership: Membership, conversation: Conversation) -> CallOptions:
    inboxes = voice_inboxes(tenant=tenant)
    last = _last_voice_inbox_id(conversation)
    default = last if any(inbox.pk == last for inbox in inboxes) else (inboxes[0].pk if inboxes else None)
    numbers = list(
        Identity.objects.for_tenant(tenant).filter(customer_id=conversation.customer_id, kind=IdentityKind.PHONE)
        .order_by("created_at", "pk")
    )
    return CallOptions(numbers=numbers, inboxes=inboxes, rings=ring_targets(tenant=tenant, membership=membership),
                       default_inbox_id=default)


def _choose(options: CallOptions, *, conversation: Conversation, number: str, inbox_id: int | None,
            ring: str) -> tuple[str, Inbox, RingTarget]:
    if not options.rings:
        raise CallRefused(
            "Your agent profile has no phone number or Twilio Client identity to ring; ask an admin to set one."
        )
    target = next((t for t in options.rings if t.kind == ring), None) if ring else options.rings[0]
    if target is None:
        raise CallRefused("Choose where you want to be rung: your phone or the browser softphone.")
    if not options.numbers:
        raise CallRefused(f"{conversation.customer} has no phone number; add one to call them.")
    if number:
        chosen = next((i.value for i in options.numbers if i.value == number), None)
        if chosen is None:
            raise CallRefused(f"{number} is not one of {conversation.customer}'s numbers.")
    elif len(options.numbers) == 1:
        chosen = options.numbers[0].value
    else:
        raise CallRefused(f"{conversation.customer} has several numbers; choose the one to call.")
    if not options.inboxes:
        raise CallRefused("This workspace has no active voice inbox to call from; an admin can add one.")
    inbox = next((i for i in options.inboxes if i.pk == (inbox_id or options.default_inbox_id)), None)
    if inbox is None:
        raise CallRefused("Choose one of the workspace's voice inboxes to call from.")
    if not inbox.address.strip():
        raise CallRefused(f"Inbox {inbox.name!r} has no phone number to call from; set its address in admin.")
    try:
        twilio_credentials(inbox)
    except AdapterError as exc:
        raise CallRefused(str(exc)) from exc
    return chosen, inbox, target


def call_place(*, tenant: Tenant, membership: Membership, conversation: Conversation, number: str = "",
               inbox_id: int | None = None, ring: str = "") -> TimelineEntry:
    """Store the outbound call, then ask Twilio to ring the agent. Raises CallRefused (nothing stored) or
    CallFailed (the entry is marked failed with Twilio's reason)."""
    options = call_options(tenant=tenant, membership=membership, conversation=conversation)
    customer_number, inbox, target = _choose(
        options, conversation=conversation, number=number, inbox_id=inbox_id, ring=ring
    )
    entry = _call_record_outbound(conversation=conversation, membership=membership, inbox=inbox,
                                  customer_number=customer_number, target=target)
    params = {
        "to": target.address, "from_": inbox.address,
        "url": hook_url(inbox, "outbound", entry=str(entry.pk)), "method": "POST",
        "status_callback": hook_url(inbox, "outbound_status", entry=str(entry.pk)), "status_callback_method": "POST",
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        "timeout": voice_config(inbox).offer_timeout,
    }
    try:
        call = twilio_client(inbox).calls.create(**params)
    except TwilioRestException as exc:
        reason = CALL_ERRORS.get(str(exc.code or "")) or twilio_error_explanation(exc.code, exc.msg)
        if str(exc.code or "") in CALL_ERRORS:
            reason = f"{reason} (Twilio error {exc.code})"
        logger.warning("Twilio refused outbound call entry %s (HTTP %s, code %s): %s", entry.pk, exc.status,
                       exc.code, exc.msg)
        raise _failed(entry, reason, code=str(exc.code or exc.status)) from exc
    except requests.Timeout as exc:
        logger.warning("Twilio did not answer creating outbound call entry %s: %s", entry.pk, exc)
        raise _failed(entry, "Twilio did not answer in time; your phone may still ring. If it does not, try again.",
                      code="timeout") from exc
    except (TwilioException, requests.RequestException, ValueError) as exc:
        logger.warning("Could not ask Twilio for outbound call entry %s: %s", entry.pk, exc)
        raise _failed(entry, f"Could not reach Twilio: {exc}", code="connect") from exc
    call_attach_sid(entry=entry, call_sid=call.sid)
    entry.external_id = call.sid
    return entry


@transaction.atomic
def _call_record_outbound(*, conversation: Conversation, membership: Membership, inbox: Inbox,
                          customer_number: str, target: RingTarget) -> TimelineEntry:
    conversation = (
        Conversation.objects.for_tenant(conversation.tenant_id).select_for_update(no_key=True, of=("self",))
        .select_related("customer", "tenant").get(pk=conversation.pk)
    )
    if conversation.status == Status.CLOSED:
        raise CallRefused(f"Conversation #{conversation.number} is closed; calls go on a new conversation.")
    at = timezone.now()
    entry = TimelineEntry.objects.create(
        tenant=conversation.tenant, customer=conversation.customer, conversation=conversation, kind=EntryKind.CALL,
        direction=Direction.OUTBOUND, channel=Channel.VOICE, inbox=inbox, author=membership.user,
        body="", created_at=at, updated_at=at,
        data={"from": inbox.address, "to": customer_number, "status": "queued", "direction": "outbound",
              "agent_membership_id": membership.pk, "ring": target.kind, "started_at": at.isoformat()},
    )
    if Channel.VOICE not in conversation.channels:
        conversation.channels = [*conversation.channels, Channel.VOICE]
    conversation.updated_at = at
    conversation.save(update_fields=["channels", "updated_at"])
    emit_on_commit(
        "message.created", tenant_id=conversation.tenant_id, conversation_id=conversation.pk,
        number=conversation.number, entry_id=entry.pk, kind=entry.kind, direction=entry.direction,
        channel=entry.channel, started_waiting=False,
    )
    return entry


def call_attach_sid(*, entry: TimelineEntry, call_sid: str) -> bool:
    """Key the call by its CallSid (once; whoever learns it first: Calls.create's answer or a callback)."""
    return bool(
        TimelineEntry.objects.for_tenant(entry.tenant_id).filter(pk=entry.pk, external_id__isnull=True)
        .update(external_id=call_sid, updated_at=timezone.now())
    )


def _failed(entry: TimelineEntry, reason: str, *, code: str) -> CallFailed:
    call_mark_failed(entry=entry, reason=reason, code=code)
    return CallFailed(reason)


def outbound_call_entry(*, inbox: Inbox, entry_id: int) -> TimelineEntry | None:
    """The inbox's outbound call with this id (from a signed callback URL); another inbox's is never found."""
    return (
        TimelineEntry.objects.for_tenant(inbox.tenant_id).select_related("conversation")
        .filter(inbox=inbox, kind=EntryKind.CALL, direction=Direction.OUTBOUND, pk=entry_id).first()
    )
