"""Writes of the web-chat channel: visitor sessions and what they claim, their messages (through the shared
`message_record_inbound`), offline messages, read and delivered marks, typing both ways.

Every function takes an inbox or a visitor that a selector found from the URL's key and the visitor's token, so
the tenant is never taken from the request body.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from channels_app.adapters.base import SendRefused
from channels_app.adapters.web_chat import config
from channels_app.adapters.web_chat.identity import (
    token_hash,
    token_new,
    user_hash_matches,
    verified_identity_value,
)
from channels_app.adapters.web_chat.live import (
    agent_typing_mark,
    visitor_push_on_commit,
    visitor_typing_announce,
)
from channels_app.adapters.web_chat.payloads import message_payload
from channels_app.adapters.web_chat.ratelimit import rate_limit_hit
from channels_app.adapters.web_chat.selectors import (
    visitor_active_conversation,
    visitor_for_identity_value,
    visitor_for_token,
    visitor_history,
)
from channels_app.models import Channel, Inbox
from conversations.models import ACTIVE_STATUSES, Conversation, DeliveryStatus, Direction, TimelineEntry
from conversations.services import (
    ConversationError,
    InboundMessage,
    attachment_store,
    conversation_merge,
    conversation_update,
    message_record_inbound,
    message_set_delivery_status,
)
from customers.identities import InvalidIdentity, normalize_email, normalize_phone
from customers.models import ChatVisitor, Customer, Identity, IdentityKind, Membership, Tenant
from customers.services import (
    IdentityTaken,
    customer_add_identity,
    customer_is_verified,
    customer_merge,
    customer_resolve_identity,
    customer_update,
)

logger = logging.getLogger(__name__)

MAX_USER_ID_LENGTH = 200
MAX_CLIENT_ID_LENGTH = 64
OFFLINE_TAG = "chat-offline"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# C0 controls other than tab and newline: NUL breaks Postgres text, the rest only confuse displays.
# Lone surrogates (JSON "\udfff") are no text at all and cannot be encoded for Postgres.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


class ChatRefused(Exception):
    """A visitor's request that cannot be done, with the HTTP status and a reason a person can read."""

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Claims:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class SessionResult:
    visitor: ChatVisitor
    token: str
    created: bool


# --- input checks ---------------------------------------------------------------------------------


def _clean_text(value, field: str, *, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ChatRefused(400, f"{field} must be a string.")
    value = _CONTROL.sub("", value).strip()
    if len(value) > max_length:
        raise ChatRefused(400, f"{field} is longer than {max_length} characters.")
    return value


def claims_parse(*, tenant: Tenant, name=None, email=None, phone=None) -> Claims:
    """What a visitor says about themselves, normalized like every other address (raises ChatRefused 400)."""
    name = _clean_text(name, "name", max_length=200)
    email = _clean_text(email, "email", max_length=320)
    phone = _clean_text(phone, "phone", max_length=64)
    try:
        email = normalize_email(email) if email else ""
    except InvalidIdentity as exc:
        raise ChatRefused(400, f"email: {' '.join(exc.messages)}") from exc
    try:
        phone = normalize_phone(phone, region=tenant.default_region) if phone else ""
    except InvalidIdentity as exc:
        raise ChatRefused(400, f"phone: {' '.join(exc.messages)}") from exc
    return Claims(name=name, email=email, phone=phone)


def body_check(*, inbox: Inbox, body, allow_empty: bool = False) -> str:
    """Plain text as the visitor typed it (never interpreted as HTML), within the inbox's length limit."""
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise ChatRefused(400, "body must be a string.")
    body = _CONTROL.sub("", body).strip()
    if not body and not allow_empty:
        raise ChatRefused(400, "The message is empty.")
    limit = config.max_message_length(inbox)
    if len(body) > limit:
        raise ChatRefused(413, f"The message has {len(body)} characters; at most {limit} fit in one message.")
    return body


def client_id_check(client_id) -> str:
    """The widget's id of one message (a UUID); absent ones get a fresh id, so nothing is refused for it."""
    if client_id is None or client_id == "":
        return uuid.uuid4().hex
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise ChatRefused(400, f"client_id must be 1–{MAX_CLIENT_ID_LENGTH} letters, digits or -_.: characters.")
    return client_id


def upload_check(upload: UploadedFile) -> str:
    """The file's content type when the chat takes it (raises ChatRefused 413/400 otherwise)."""
    if upload.size > config.MAX_ATTACHMENT_BYTES:
        raise ChatRefused(
            413, f"{upload.name} is {upload.size / 1_000_000:.1f} MB; files of at most "
            f"{config.MAX_ATTACHMENT_BYTES / 1_000_000:.0f} MB can be sent here.",
        )
    if upload.size == 0:
        raise ChatRefused(400, f"{upload.name} is empty.")
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in config.ATTACHMENT_TYPES:
        raise ChatRefused(
            400, f"Files of type {content_type or 'unknown'} cannot be sent here; "
            f"send {', '.join(config.ATTACHMENT_TYPES)}.",
        )
    return content_type


def visitor_rate_check(*, visitor: ChatVisitor) -> None:
    retry_after = rate_limit_hit(
        f"msg:{visitor.tenant_id}:{visitor.pk}", limit=config.rate_limit_per_minute(visitor.inbox), window_seconds=60
    )
    if retry_after is not None:
        raise ChatRefused(429, f"You are sending messages too fast; wait {retry_after} s.", retry_after=retry_after)


# Anonymous sessions one address may open per 10 minutes (a script could otherwise mint customers).
NEW_SESSIONS_PER_ADDRESS = 30


def session_rate_check(*, inbox: Inbox, address: str) -> None:
    retry_after = rate_limit_hit(f"session:{inbox.pk}:{address}", limit=NEW_SESSIONS_PER_ADDRESS, window_seconds=600)
    if retry_after is not None:
        raise ChatRefused(429, f"Too many new chats from your network; wait {retry_after} s.", retry_after=retry_after)


# --- sessions and identity ------------------------------------------------------------------------


def _verified_user_id(*, inbox: Inbox, user_id, user_hash) -> str:
    if user_id in (None, "") and user_hash in (None, ""):
        return ""
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    user_id = _clean_text(user_id, "user_id", max_length=MAX_USER_ID_LENGTH)
    if not user_id or not isinstance(user_hash, str) or not user_hash:
        raise ChatRefused(400, "user_id and user_hash go together: send both or neither.")
    secret = inbox.get_secret("identity_secret")
    if not secret:
        raise ChatRefused(403, "This chat does not verify identities: its identity secret is not set in Omnidesk.")
    if not user_hash_matches(secret, user_id, user_hash):
        raise ChatRefused(403, "user_hash does not match user_id: compute it on your server as the hex HMAC-SHA256 "
                               "of user_id with the inbox's identity secret.")
    return user_id


def _visitor_create(*, inbox: Inbox, name: str) -> tuple[ChatVisitor, str]:
    token = token_new()
    value = token_hash(token)
    tenant = inbox.tenant
    customer, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.CHAT_VISITOR, value=value, name=name)
    identity = Identity.objects.for_tenant(tenant).get(kind=IdentityKind.CHAT_VISITOR, value=value)
    visitor = ChatVisitor.objects.create(tenant=tenant, identity=identity, inbox=inbox)
    visitor.identity = identity
    visitor.inbox = inbox
    return visitor, token


def _refresh_identity(visitor: ChatVisitor) -> None:
    """Merges move identities with an UPDATE; re-read which customer the visitor's identity belongs to now."""
    visitor.identity = Identity.objects.for_tenant(visitor.tenant_id).select_related("customer").get(pk=visitor.identity_id)


def _join(*, visitor: ChatVisitor, owner: Customer) -> None:
    """The visitor's customer becomes `owner`; their active chat goes into owner's open conversation."""
    tenant = visitor.inbox.tenant
    current = Customer.objects.for_tenant(tenant).get(pk=visitor.identity.customer_id)
    moving = list(
        Conversation.objects.for_tenant(tenant).filter(customer=current, status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
    )
    customer_merge(tenant=tenant, survivor=owner, merged=current)
    target = (
        Conversation.objects.for_tenant(tenant).filter(customer=owner, status__in=ACTIVE_STATUSES)
        .exclude(pk__in=moving).order_by("-updated_at").first()
    )
    if target is not None:
        for conversation in Conversation.objects.for_tenant(tenant).filter(pk__in=moving):
            try:
                conversation_merge(tenant=tenant, survivor=target, merged=conversation)
            except ConversationError as exc:
                logger.info("Chat conversation %s not merged into %s: %s", conversation.pk, target.pk, exc)
    _refresh_identity(visitor)


def _verify(*, visitor: ChatVisitor, user_id: str) -> None:
    tenant = visitor.inbox.tenant
    value = verified_identity_value(user_id)
    identities = Identity.objects.for_tenant(tenant).select_related("customer")
    existing = identities.filter(kind=IdentityKind.EXTERNAL, value=value).first()
    if existing is None:
        try:
            with transaction.atomic():
                Identity.objects.create(
                    tenant=tenant, customer_id=visitor.identity.customer_id, kind=IdentityKind.EXTERNAL, value=value,
                    verified_at=timezone.now(),
                )
        except IntegrityError:
            # The same user signed in on another device at the same moment.
            existing = identities.get(kind=IdentityKind.EXTERNAL, value=value)
    if existing is not None:
        if existing.verified_at is None:
            existing.verified_at = timezone.now()
            existing.save(update_fields=["verified_at"])
        if existing.customer_id != visitor.identity.customer_id:
            _join(visitor=visitor, owner=existing.customer)
    visitor.verified_user_id = user_id


def _claim_address(*, visitor: ChatVisitor, kind: str, value: str) -> str:
    """Give the visitor's customer this address, or join the customer who has it. Returns what happened:
    "added", "mine", "joined", or "protected" (its owner is verified, and an e-mail typed into a chat is not)."""
    tenant = visitor.inbox.tenant
    customer = Customer.objects.for_tenant(tenant).get(pk=visitor.identity.customer_id)
    existing = Identity.objects.for_tenant(tenant).select_related("customer").filter(kind=kind, value=value).first()
    if existing is None:
        try:
            with transaction.atomic():
                customer_add_identity(tenant=tenant, customer=customer, kind=kind, value=value)
            return "added"
        except (IdentityTaken, IntegrityError):
            existing = Identity.objects.for_tenant(tenant).select_related("customer").get(kind=kind, value=value)
    if existing.customer_id == customer.pk:
        return "mine"
    if customer_is_verified(tenant=tenant, customer=existing.customer):
        logger.info("Chat visitor %s claimed %s of verified customer %s; not joined", visitor.pk, kind, existing.customer_id)
        return "protected"
    _join(visitor=visitor, owner=existing.customer)
    return "joined"


def _apply_claims(*, visitor: ChatVisitor, claims: Claims) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    if claims.name:
        visitor.name = claims.name
        customer = Customer.objects.for_tenant(visitor.tenant_id).get(pk=visitor.identity.customer_id)
        if not customer.name:
            customer_update(tenant=visitor.inbox.tenant, customer=customer, name=claims.name)
    for field, kind in (("email", IdentityKind.EMAIL), ("phone", IdentityKind.PHONE)):
        value = getattr(claims, field)
        if value:
            setattr(visitor, field, value)
            outcomes[field] = _claim_address(visitor=visitor, kind=kind, value=value)
    return outcomes


@transaction.atomic
def visitor_session_start(
    *, inbox: Inbox, token: str | None, claims: Claims, user_id=None, user_hash=None, address: str = "",
) -> SessionResult:
    """Resume the visitor holding `token` or start a new one; record what they say about themselves.

    A verified visitor's token resumes only with the same verified user: after a sign-out (no user) or a
    sign-in as someone else on the same browser, a fresh visitor starts, and nobody sees another's history.
    """
    verified_user_id = _verified_user_id(inbox=inbox, user_id=user_id, user_hash=user_hash)
    visitor = visitor_for_token(inbox=inbox, token=token)
    if visitor is not None and visitor.verified_user_id and visitor.verified_user_id != verified_user_id:
        visitor = None
    created = visitor is None
    if created:
        session_rate_check(inbox=inbox, address=address)
        visitor, token = _visitor_create(inbox=inbox, name=claims.name)
    _refresh_identity(visitor)
    if verified_user_id and visitor.verified_user_id != verified_user_id:
        _verify(visitor=visitor, user_id=verified_user_id)
    _apply_claims(visitor=visitor, claims=claims)
    visitor.last_seen_at = timezone.now()
    visitor.save()
    return SessionResult(visitor=visitor, token=token, created=created)


def visitor_fresh(*, tenant_id: int, visitor_id: int) -> ChatVisitor | None:
    """The visitor as stored now (a long-lived socket's copy goes stale when the customer is merged)."""
    return (
        ChatVisitor.objects.for_tenant(tenant_id).select_related("identity", "inbox__tenant")
        .filter(pk=visitor_id, inbox__is_active=True).first()
    )


# --- messages -------------------------------------------------------------------------------------


def visitor_message_send(
    *, visitor: ChatVisitor, body, client_id, upload: UploadedFile | None = None, extra_data: dict | None = None,
) -> tuple[TimelineEntry, bool]:
    """Store one visitor message (and its file) and push it to the visitor's sockets after commit.

    Returns (entry, created); the same client_id again returns the stored message and stores nothing.
    """
    inbox = visitor.inbox
    body = body_check(inbox=inbox, body=body, allow_empty=upload is not None)
    client_id = client_id_check(client_id)
    content_type = upload_check(upload) if upload is not None else ""
    visitor_rate_check(visitor=visitor)
    value = visitor.identity.value
    message = InboundMessage(
        channel=Channel.CHAT, sender_kind=IdentityKind.CHAT_VISITOR, sender_value=value, sender_name=visitor.name,
        body=body,
        # Namespaced by visitor: another visitor reusing this client_id must not get this message back.
        external_id=f"v{visitor.pk}:{client_id}",
        data={"from": value, "client_id": client_id, "visitor_id": visitor.pk, **(extra_data or {})},
    )
    with transaction.atomic():
        result = message_record_inbound(tenant=inbox.tenant, inbox=inbox, message=message)
        entry = result.entry
        if result.created:
            if upload is not None:
                attachment_store(
                    tenant=inbox.tenant, entry=entry, filename=upload.name or "file", content=upload.read(),
                    content_type=content_type,
                )
            visitor_push_on_commit(
                tenant_id=visitor.tenant_id, visitor_id=visitor.pk, event={"type": "message", "message": message_payload(entry)},
            )
    return entry, result.created


@transaction.atomic
def visitor_offline_message(*, visitor: ChatVisitor, name, email, body, client_id=None) -> tuple[TimelineEntry, str | None]:
    """A message left while nobody is online, answered by e-mail: the e-mail becomes the customer's address
    (so the composer offers e-mail) and the conversation is tagged for follow-up. Returns (entry, follow_up)."""
    if not email:
        raise ChatRefused(400, "Leave your e-mail address so we can answer you.")
    claims = claims_parse(tenant=visitor.inbox.tenant, name=name, email=email)
    outcome = _apply_claims(visitor=visitor, claims=claims).get("email")
    visitor.save()
    entry, created = visitor_message_send(
        visitor=visitor, body=body, client_id=client_id,
        extra_data={"offline": True, "follow_up": "email", "reply_to": claims.email},
    )
    if created and entry.conversation_id is not None:
        conversation = entry.conversation
        if OFFLINE_TAG not in conversation.tags:
            conversation_update(tenant=visitor.inbox.tenant, conversation=conversation, tags=[*conversation.tags, OFFLINE_TAG])
    # A verified customer's address typed by an unverified visitor is not theirs to be answered at.
    return entry, None if outcome == "protected" else "email"


def visitor_mark_read(*, visitor: ChatVisitor, up_to) -> int:
    """Agent messages up to `up_to` are read (never beyond the newest the visitor has). Returns how many changed."""
    if isinstance(up_to, bool) or not isinstance(up_to, int) or up_to < 0:
        raise ChatRefused(400, "up_to must be a message id (a non-negative integer).")
    history = visitor_history(visitor=visitor)
    newest = history.filter(pk__lte=up_to).order_by("-pk").values_list("pk", flat=True).first()
    if newest is None or newest <= visitor.last_read_entry_id:
        return 0
    unread = list(
        history.filter(direction=Direction.OUTBOUND, pk__gt=visitor.last_read_entry_id, pk__lte=newest)
        .exclude(delivery_status=DeliveryStatus.READ).select_related(None).prefetch_related(None)
    )
    ChatVisitor.objects.for_tenant(visitor.tenant_id).filter(pk=visitor.pk).update(
        last_read_entry_id=Greatest(F("last_read_entry_id"), newest)
    )
    visitor.last_read_entry_id = max(visitor.last_read_entry_id, newest)
    for entry in unread:
        message_set_delivery_status(tenant=visitor.inbox.tenant, entry=entry, status=DeliveryStatus.READ)
    return len(unread)


def messages_mark_delivered(*, tenant: Tenant, entry_ids: list[int]) -> None:
    """Agent messages that reached the visitor's browser (socket or poll)."""
    if not entry_ids:
        return
    waiting = TimelineEntry.objects.for_tenant(tenant).filter(
        pk__in=entry_ids, direction=Direction.OUTBOUND, channel=Channel.CHAT,
        delivery_status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.SENT),
    ).select_related("conversation")
    for entry in waiting:
        message_set_delivery_status(tenant=tenant, entry=entry, status=DeliveryStatus.DELIVERED)


# --- typing ---------------------------------------------------------------------------------------


def visitor_typing(*, visitor: ChatVisitor) -> None:
    """Tell agents with the visitor's conversation open; at most one announcement per visitor every 2 s."""
    if rate_limit_hit(f"typing:{visitor.tenant_id}:{visitor.pk}", limit=1, window_seconds=2) is not None:
        return
    conversation = visitor_active_conversation(visitor=visitor)
    if conversation is None:
        return
    name = visitor.name or visitor.identity.customer.name or "Visitor"
    visitor_typing_announce(tenant_id=visitor.tenant_id, conversation_id=conversation.pk, name=name)


def agent_typing(*, tenant: Tenant, conversation: Conversation, membership: Membership) -> bool:
    """The agent is writing a chat reply in this conversation: the visitor it would go to sees it."""
    from channels_app.services import recipient_for

    try:
        recipient = recipient_for(tenant=tenant, conversation=conversation, channel=Channel.CHAT)
    except SendRefused:
        return False
    visitor = visitor_for_identity_value(tenant_id=tenant.pk, value=recipient.value)
    if visitor is None:
        return False
    agent_typing_mark(tenant_id=tenant.pk, visitor_id=visitor.pk, name=membership.name)
    return True
