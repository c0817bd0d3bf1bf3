"""Satisfaction surveys (CSAT): one per resolved conversation, on the channel the customer last wrote on.

Sending: resolving a conversation hands `csat_survey_send` to Celery after commit. It sends at most once per
conversation (a row lock plus a unique constraint), when the inbox the customer last wrote to has surveys on
and its channel can carry one: SMS and WhatsApp (reply with a digit), e-mail (five one-click links) and web
chat (an inline rating in the widget). Calls do not count as "written": a customer who called after texting
is surveyed by SMS; an API-channel conversation gets none (the integrator owns that screen). The survey is an
outbound timeline message delivered by the ordinary queue (`deliver_message`: retries, delivery status);
the channel's own checks (opt-out, WhatsApp's 24-hour window) run first, and a refusal is kept on the
survey and the timeline instead of being retried.

Answers: a one-click link, the survey page's form, the widget's JSON POST, or an SMS/WhatsApp reply that is
just a digit 1-5 (optionally followed by a comment). Answers are accepted for ANSWER_WINDOW after sending, and
the latest answer counts (mail scanners that prefetch a link record a score the customer can still change).
Analytics: one `csat_sent` event per survey handed to the channel, and one `csat_answer` event per answered
survey whose `data.score` is revised in place when the answer changes (`analytics_event_revise`, which moves
the rollups too; `data.changes` counts the changes), so the mean of csat_answer scores and answers / csat_sent
stay right without filtering.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from analytics.services import analytics_event_record, analytics_event_revise
from channels_app.models import Channel, Inbox
from conversations.models import (
    ACTIVE_STATUSES,
    Conversation,
    CsatSurvey,
    DeliveryStatus,
    Direction,
    EntryKind,
    Status,
    TimelineEntry,
)

if TYPE_CHECKING:
    from conversations.services import InboundMessage, InboundResult
    from customers.models import Customer, Tenant

logger = logging.getLogger(__name__)

# Channels that can carry a survey, and where surveys are on unless an inbox turns them off.
SURVEY_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL, Channel.CHAT)
# How long after sending an answer (or a change of answer) is accepted; also the SMS reply window.
ANSWER_WINDOW = timedelta(days=7)
MAX_COMMENT_LENGTH = 2000
SCORES = (1, 2, 3, 4, 5)
SCORE_LABELS = {1: "Poor", 2: "Fair", 3: "Okay", 4: "Good", 5: "Great"}

TEXT_SURVEY = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
CHAT_SURVEY = "How did we do? Rate this conversation from 1 (poor) to 5 (great)."

# "5", " 4 ", "5!", "5/5", "4 great job", "3 - slow but fine": a digit 1-5 first, not part of a bigger
# number or a decimal ("10", "4.5", "2nd"), then an optional comment.
_TEXT_ANSWER = re.compile(r"^\s*([1-5])(?:\s*/\s*5)?(?![\w.,/])[\s!.:,\-–—)]*(.*?)\s*$", re.DOTALL)


class CsatError(Exception):
    """An answer that cannot be taken (bad score, closed survey); the message says why."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TextAnswer:
    score: int
    comment: str


def csat_parse_text_answer(body: str) -> TextAnswer | None:
    """The score (and comment) of an SMS/WhatsApp reply that answers a survey, or None for an ordinary message.

    A question ("5 but where is my refund?") is not an answer: it needs an agent, so it follows the
    continuity rule and reopens the conversation.
    """
    match = _TEXT_ANSWER.match(body or "")
    if match is None:
        return None
    comment = match.group(2).strip()
    if "?" in comment or len(comment) > MAX_COMMENT_LENGTH:
        return None
    return TextAnswer(score=int(match.group(1)), comment=comment)


# --- Settings ------------------------------------------------------------------------------------


def csat_enabled(inbox: Inbox) -> bool:
    """Inbox.settings["csat"] = {"enabled": bool}; on by default where the channel can carry a survey."""
    if inbox.channel not in SURVEY_CHANNELS:
        return False
    value = (inbox.settings or {}).get("csat")
    if isinstance(value, dict):
        value = value.get("enabled")
    return True if value is None else bool(value)


def csat_set_enabled(inbox: Inbox, enabled: bool) -> None:
    """Set the inbox's survey switch (the caller saves); other keys of settings["csat"] are kept."""
    current = (inbox.settings or {}).get("csat")
    inbox.settings = {**(inbox.settings or {}), "csat": {**(current if isinstance(current, dict) else {}),
                                                         "enabled": bool(enabled)}}


def _send_delay_seconds() -> int:
    # A few minutes lets an agent take back an accidental resolve before the customer is asked.
    return int(getattr(settings, "CSAT_SEND_DELAY_SECONDS", 0))


def survey_url(token: str, score: int | None = None) -> str:
    base = f"{settings.PUBLIC_BASE_URL}/csat/{token}/"
    return f"{base}{score}/" if score is not None else base


# --- Sending -------------------------------------------------------------------------------------


def csat_schedule_on_resolve(conversation: Conversation) -> None:
    """Called by the status change to resolved: hand the survey to Celery once the resolve is committed.

    robust: a broker outage must not fail the resolve; the survey is then not sent.
    """
    from conversations.tasks import send_csat_survey

    tenant_id, conversation_id, delay = conversation.tenant_id, conversation.pk, _send_delay_seconds()
    transaction.on_commit(
        lambda: send_csat_survey.apply_async((tenant_id, conversation_id), countdown=delay), robust=True
    )


def _last_written_inbound(tenant_id: int, conversation: Conversation) -> TimelineEntry | None:
    """The customer's last written message in the conversation (calls are not written: voice carries no survey)."""
    return (
        TimelineEntry.objects.for_tenant(tenant_id)
        .filter(conversation=conversation, kind=EntryKind.MESSAGE, direction=Direction.INBOUND)
        .select_related("inbox").order_by("-created_at", "-id").first()
    )


def _survey_body(survey: CsatSurvey, conversation: Conversation) -> str:
    if survey.channel in (Channel.SMS, Channel.WHATSAPP):
        return TEXT_SURVEY
    if survey.channel == Channel.CHAT:
        return CHAT_SURVEY
    about = f"#{conversation.number}" + (f" ({conversation.subject})" if conversation.subject else "")
    links = "\n".join(f"  {score} – {SCORE_LABELS[score]}: {survey_url(survey.token, score)}" for score in reversed(SCORES))
    return (
        f"Your request {about} has been resolved. How did we do?\n\n"
        f"One click on a rating tells us (you can add a comment on the next page):\n\n{links}\n\n"
        "Thank you for helping us get better."
    )


def csat_survey_send(*, tenant_id: int, conversation_id: int) -> CsatSurvey | None:
    """Send the survey of a resolved conversation, at most once ever; safe to run again (and concurrently).

    Returns the survey (sent, or kept with the channel's refusal), or None when none is due: the
    conversation is no longer resolved, already has a survey, or its customer's last channel cannot carry one.
    """
    from channels_app.adapters.base import SendRefused, adapter_exists, get_adapter
    from channels_app.services import recipient_for
    from channels_app.tasks import deliver_message
    from conversations.services import _emit_conversation, timeline_add_event

    with transaction.atomic():
        conversation = (
            Conversation.objects.for_tenant(tenant_id).select_for_update(no_key=True, of=("self",))
            .select_related("tenant", "customer").filter(pk=conversation_id).first()
        )
        # Reopened before the delay ran out (the next resolve schedules again), closed, or merged away.
        if conversation is None or conversation.status != Status.RESOLVED:
            return None
        if CsatSurvey.objects.for_tenant(tenant_id).filter(conversation=conversation).exists():
            return None
        last = _last_written_inbound(tenant_id, conversation)
        inbox = last.inbox if last is not None else None
        if inbox is None or not inbox.is_active or not csat_enabled(inbox) or not adapter_exists(inbox.channel):
            return None
        tenant, channel, at = conversation.tenant, inbox.channel, timezone.now()
        survey = CsatSurvey(tenant=tenant, conversation=conversation, customer=conversation.customer, channel=channel,
                            inbox=inbox, created_at=at)
        body = _survey_body(survey, conversation)
        data: dict[str, Any] = {"csat": {"token": survey.token, "score": None}}
        try:
            recipient = recipient_for(tenant=tenant, conversation=conversation, channel=channel)
            survey.recipient = recipient.value
            get_adapter(channel).check_can_send(
                conversation=conversation, inbox=inbox, recipient=recipient, body=body, data=data
            )
        except SendRefused as exc:
            survey.refused_reason = " ".join(exc.messages)[:500]
            survey.save(force_insert=True)
            timeline_add_event(
                tenant=tenant, customer=conversation.customer, conversation=conversation, event="csat_not_sent",
                data={"survey_id": survey.pk, "channel": channel, "reason": survey.refused_reason}, at=at,
            )
            logger.info("CSAT survey of conversation %s not sent: %s", conversation.pk, survey.refused_reason)
            return survey
        data["to"] = recipient.value
        entry = TimelineEntry.objects.create(
            tenant=tenant, customer=conversation.customer, conversation=conversation, kind=EntryKind.MESSAGE,
            direction=Direction.OUTBOUND, channel=channel, inbox=inbox, body=body, data=data,
            delivery_status=DeliveryStatus.QUEUED, created_at=at, updated_at=at,
        )
        survey.sent_entry, survey.sent_at = entry, at
        survey.save(force_insert=True)
        entry.data["csat"]["survey_id"] = survey.pk
        entry.save(update_fields=["data"])
        # Not a reply: response times, waiting and the conversation's channel stay as the agents left them.
        analytics_event_record(
            conversation=conversation, name=EventName.CSAT_SENT, channel=channel, inbox_id=inbox.pk, occurred_at=at,
            data={"survey_id": survey.pk},
        )
        _emit_conversation(
            "message.created", conversation, entry_id=entry.pk, kind=entry.kind, direction=entry.direction,
            channel=channel, started_waiting=False,
        )
        # robust: a lost hand-over is picked up by the outbound sweeper (queued_requeue).
        transaction.on_commit(lambda: deliver_message.delay(entry.pk), robust=True)
    return survey


# --- The sweeper for lost sends ------------------------------------------------------------------

# The normal path gets this long after the resolve (plus the send delay) before the sweeper steps in, and
# a resolve older than SWEEP_MAX_AGE is left alone: a survey that much later would puzzle the customer.
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_MAX_AGE = timedelta(days=7)
SWEEP_BATCH = 500


def _surveyed_inbox_ids() -> list[int]:
    """Every tenant's inboxes that send surveys (few rows; the switch lives in a JSON setting, read in Python)."""
    from channels_app.adapters.base import adapter_exists

    inboxes = Inbox.objects.filter(is_active=True, channel__in=SURVEY_CHANNELS).only("pk", "channel", "settings")
    return [inbox.pk for inbox in inboxes if csat_enabled(inbox) and adapter_exists(inbox.channel)]


def csat_surveys_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[tuple[int, int]]:
    """(tenant id, conversation id) of resolved conversations still owed a survey, oldest resolve first:
    the send task never ran (the broker was down at the resolve, the task was lost). Every tenant's, like the
    other sweepers. csat_survey_send makes the final decision under the conversation's row lock.
    """
    now = now or timezone.now()
    inbox_ids = _surveyed_inbox_ids()
    if not inbox_ids:
        return []
    # Entries and surveys are reached through their conversation (already one tenant's): a conversation-only
    # correlation walks entry_conversation_time backwards and stops at the first inbound message.
    last_written_inbox = Subquery(
        TimelineEntry.objects.filter(conversation_id=OuterRef("pk"), kind=EntryKind.MESSAGE,
                                     direction=Direction.INBOUND)
        .order_by("-created_at", "-id").values("inbox_id")[:1]
    )
    surveyed = CsatSurvey.objects.filter(tenant_id=OuterRef("tenant_id"), conversation_id=OuterRef("pk"))
    grace = SWEEP_GRACE + timedelta(seconds=_send_delay_seconds())
    return list(
        # conv_resolved_at reaches the window; `channels` drops API- and call-only conversations cheaply.
        Conversation.objects.filter(
            status=Status.RESOLVED, resolved_at__gt=now - SWEEP_MAX_AGE, resolved_at__lte=now - grace,
            channels__overlap=list(SURVEY_CHANNELS),
        )
        .exclude(Exists(surveyed))
        .annotate(last_written_inbox_id=last_written_inbox)
        .filter(last_written_inbox_id__in=inbox_ids)
        .order_by("resolved_at", "pk").values_list("tenant_id", "pk")[:limit]
    )


def csat_surveys_sweep(*, now: datetime | None = None) -> int:
    """Send the surveys still due; how many went out (or were refused by the channel and kept)."""
    sent = 0
    for tenant_id, conversation_id in csat_surveys_due(now=now):
        try:
            sent += csat_survey_send(tenant_id=tenant_id, conversation_id=conversation_id) is not None
        except (OperationalError, InterfaceError):
            logger.error("Database unavailable; CSAT surveys stay due for the next sweep")
            break
        except DatabaseError:
            # One conversation the code cannot survey (a bug) must not hold up the others.
            logger.exception("CSAT survey of conversation %s (tenant %s) not sent; left for the next sweep",
                             conversation_id, tenant_id)
    if sent:
        logger.info("CSAT sweep sent %s survey(s) whose task was lost", sent)
    return sent


# --- Answers -------------------------------------------------------------------------------------


def csat_survey_for_token(token: str) -> CsatSurvey | None:
    """The sent survey a public link's token names, or None (unknown, malformed, or never sent).

    The token is the only credential: it is random, unique across tenants and carries no ids.
    """
    if not token or len(token) > 64:
        return None
    return (
        CsatSurvey.objects.select_related("tenant", "conversation", "inbox")
        .filter(token=token, sent_at__isnull=False).first()
    )


def csat_answer_open(survey: CsatSurvey, *, at: datetime | None = None) -> bool:
    at = at or timezone.now()
    return survey.sent_at is not None and at <= survey.sent_at + ANSWER_WINDOW


def _clean_score(score: Any) -> int:
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError) as exc:
        raise CsatError("The score must be a whole number from 1 to 5.") from exc
    if value not in SCORES or isinstance(score, bool):
        raise CsatError("The score must be a whole number from 1 to 5.")
    return value


def _clean_comment(comment: Any) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise CsatError("The comment must be text.")
    comment = comment.replace("\x00", "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise CsatError(f"The comment is longer than {MAX_COMMENT_LENGTH} characters; shorten it.")
    return comment


@transaction.atomic
def csat_answer_record(
    *, tenant: Tenant | int, survey_id: int, score: Any, comment: Any = None, via: str, at: datetime | None = None,
) -> CsatSurvey:
    """Record an answer (the latest one counts). The same score again without a new comment changes
    nothing, so a link opened twice is one answer. Raises CsatError with a reason for bad or late input.

    `comment=None` keeps the comment already given; "" clears it.
    """
    from conversations.services import _emit_conversation, timeline_add_event

    score = _clean_score(score)
    comment = _clean_comment(comment)
    at = at or timezone.now()
    survey = (
        CsatSurvey.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
        .select_related("tenant", "conversation__customer").filter(pk=survey_id, sent_at__isnull=False).first()
    )
    if survey is None:
        raise CsatError("There is no such survey.", status=404)
    if not csat_answer_open(survey, at=at):
        raise CsatError(
            f"This survey closed on {survey.sent_at + ANSWER_WINDOW:%Y-%m-%d}; thank you all the same.", status=410
        )
    new_comment = survey.comment if comment is None else comment
    if survey.score == score and survey.comment == new_comment:
        return survey
    previous = survey.score
    conversation = survey.conversation
    entry = timeline_add_event(
        tenant=survey.tenant, customer=conversation.customer, conversation=conversation, event="csat_answered",
        data={"survey_id": survey.pk, "score": score, "comment": new_comment, "via": via, "channel": survey.channel,
              "previous_score": previous},
        at=at,
    )
    survey.score, survey.comment = score, new_comment
    survey.answered_at, survey.answered_via, survey.answer_entry = at, via, entry
    survey.save(update_fields=["score", "comment", "answered_at", "answered_via", "answer_entry"])
    _record_answer_event(survey, conversation, previous=previous, at=at)
    if survey.sent_entry_id is not None:
        _mirror_score_on_survey_message(survey)
    _emit_conversation("conversation.updated", conversation, changed=["csat"])
    # Ids and states only: the comment is customer text, so receivers learn only that there is one.
    _emit_conversation(
        "csat.received", conversation, survey_id=survey.pk, customer_id=conversation.customer_id, score=score,
        previous_score=previous, has_comment=bool(new_comment), channel=survey.channel, via=via,
    )
    return survey


def _record_answer_event(survey: CsatSurvey, conversation: Conversation, *, previous: int | None, at: datetime) -> None:
    """One csat_answer event per survey: appended at the first answer, its score updated when it changes."""
    events = AnalyticsEvent.objects.for_tenant(survey.tenant_id).filter(
        name=EventName.CSAT_ANSWER, conversation=conversation, data__survey_id=survey.pk
    )
    event = events.first()
    if event is None:
        analytics_event_record(
            conversation=conversation, name=EventName.CSAT_ANSWER, channel=survey.channel, inbox_id=survey.inbox_id,
            occurred_at=at, value_seconds=(at - survey.sent_at).total_seconds(),
            data={"score": survey.score, "survey_id": survey.pk, "via": survey.answered_via},
        )
        return
    if previous is None or previous == survey.score:
        # A comment changed, not the score: nothing to report differently.
        return
    # The rollups take the old score out and the new one in (analytics_event_revise), in this transaction.
    analytics_event_revise(event=event, data={
        **event.data, "score": survey.score, "changes": int(event.data.get("changes", 0)) + 1,
        "changed_at": at.isoformat(),
    })


def _mirror_score_on_survey_message(survey: CsatSurvey) -> None:
    """The widget shows the rating given on the survey message itself (entry.data["csat"]["score"])."""
    entry = TimelineEntry.objects.for_tenant(survey.tenant_id).select_for_update(no_key=True).filter(
        pk=survey.sent_entry_id
    ).first()
    if entry is None:
        return
    entry.data = {**entry.data, "csat": {**entry.data.get("csat", {}), "token": survey.token, "score": survey.score}}
    entry.save(update_fields=["data"])


# --- SMS and WhatsApp replies ----------------------------------------------------------------------


def csat_answer_from_inbound(
    *, tenant: Tenant, customer: Customer, inbox: Inbox | None, message: InboundMessage, at: datetime,
) -> InboundResult | None:
    """Store an SMS/WhatsApp reply that answers a survey on the surveyed conversation, without reopening it.

    Called by message_record_inbound inside its transaction, with the customer's row locked. None when the
    message is not such an answer; it then follows the continuity rule as usual. An answer is a reply on the
    survey's channel, from the number surveyed, within ANSWER_WINDOW, that is a digit 1-5 (and a comment),
    while the customer has no active conversation (an open one may have asked them to pick an option).
    """
    from conversations.services import InboundResult, _emit_conversation

    if message.channel not in (Channel.SMS, Channel.WHATSAPP) or message.kind != EntryKind.MESSAGE:
        return None
    if message.data.get("media") or message.data.get("keyword"):
        return None
    answer = csat_parse_text_answer(message.body)
    if answer is None:
        return None
    survey = (
        CsatSurvey.objects.for_tenant(tenant)
        .filter(channel=message.channel, recipient=message.sender_value, sent_at__gte=at - ANSWER_WINDOW)
        .order_by("-sent_at").first()
    )
    if survey is None:
        return None
    conversations = Conversation.objects.for_tenant(tenant)
    if conversations.filter(customer=customer, status__in=ACTIVE_STATUSES).exists():
        return None
    conversation = (
        conversations.select_for_update(no_key=True, of=("self",)).select_related("tenant", "customer")
        .filter(pk=survey.conversation_id, customer=customer, status__in=(Status.RESOLVED, Status.CLOSED)).first()
    )
    if conversation is None:
        return None
    entry = TimelineEntry.objects.create(
        tenant=tenant, customer=customer, conversation=conversation, kind=EntryKind.MESSAGE,
        direction=Direction.INBOUND, channel=message.channel, inbox=inbox, body=message.body,
        data={**message.data, "csat_answer": {"survey_id": survey.pk, "score": answer.score}},
        external_id=message.external_id or None, delivery_status=DeliveryStatus.RECEIVED,
        created_at=message.received_at or at, updated_at=at,
    )
    _emit_conversation(
        "message.created", conversation, entry_id=entry.pk, kind=entry.kind, direction=entry.direction,
        channel=entry.channel, started_waiting=False,
    )
    try:
        csat_answer_record(tenant=tenant, survey_id=survey.pk, score=answer.score, comment=answer.comment or None,
                           via="reply",
                           at=at)
    except CsatError as exc:  # closed between the lookup and the lock: the message is kept all the same
        logger.info("CSAT reply %s not recorded: %s", entry.pk, exc)
    return InboundResult(entry, conversation, True, "csat_answer")
