"""Writes specific to the API channel: what an inbound message brings besides its text, and resending."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app.adapters.api.adapter import ApiPayload
from channels_app.adapters.base import SendRefused
from channels_app.models import Channel
from conversations.models import DeliveryStatus, Direction, EntryKind, TimelineEntry
from conversations.services import attachment_store, timeline_add_event
from customers.models import Customer, Identity, IdentityKind, Tenant
from customers.services import IdentityTaken, customer_add_identity

logger = logging.getLogger(__name__)


def _identity_link(*, tenant: Tenant, customer: Customer, kind: str, value: str) -> int | None:
    """Give the customer this address if nobody has it; return the id of another owner, if any."""
    existing = Identity.objects.for_tenant(tenant).filter(kind=kind, value=value).first()
    if existing is None:
        try:
            with transaction.atomic():
                customer_add_identity(tenant=tenant, customer=customer, kind=kind, value=value)
            return None
        except (IdentityTaken, IntegrityError):
            # Someone else claimed it between our read and our insert.
            existing = Identity.objects.for_tenant(tenant).get(kind=kind, value=value)
    return None if existing.customer_id == customer.pk else existing.customer_id


@transaction.atomic
def api_inbound_complete(*, tenant: Tenant, entry: TimelineEntry, payload: ApiPayload) -> TimelineEntry:
    """Store the attachments and link the e-mail/phone of a newly recorded API message.

    Addresses that already belong to another customer are not merged automatically (the sender's
    word is not proof of identity): the entry records them as possible duplicates for an agent.
    """
    if entry.tenant_id != tenant.pk:
        raise ValueError("That timeline entry belongs to another tenant.")
    for attachment in payload.attachments:
        if attachment.content is not None:
            attachment_store(
                tenant=tenant, entry=entry, filename=attachment.filename, content=attachment.content,
                content_type=attachment.content_type,
            )
    customer = entry.customer
    duplicates: list[dict[str, Any]] = []
    for kind, value in ((IdentityKind.EMAIL, payload.email), (IdentityKind.PHONE, payload.phone)):
        if not value:
            continue
        owner_id = _identity_link(tenant=tenant, customer=customer, kind=kind, value=value)
        if owner_id is not None:
            duplicates.append({"kind": kind, "value": value, "customer_id": owner_id})
    if duplicates:
        logger.info("API message %s names addresses of other customers: %s", entry.pk, duplicates)
        entry.data = {**entry.data, "possible_duplicates": duplicates}
        entry.save(update_fields=["data"])
    return entry


def api_message_resend(*, tenant: Tenant, entry: TimelineEntry, actor=None) -> TimelineEntry:
    """Put a failed outbound API message back in the queue and deliver it again after commit.

    The receiver sees the same X-Omnidesk-Delivery id as before, so it can tell a resend from a new reply.
    """
    from channels_app.tasks import deliver_message

    with transaction.atomic():
        locked = (
            TimelineEntry.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
            .select_related("inbox", "customer", "conversation")
            .filter(pk=entry.pk, kind=EntryKind.MESSAGE, direction=Direction.OUTBOUND, channel=Channel.API).first()
        )
        if locked is None or locked.delivery_status != DeliveryStatus.FAILED:
            raise SendRefused("Only a failed outbound API message can be resent.")
        if locked.inbox is None or not locked.inbox.is_active or not locked.inbox.setting("outbound_url"):
            raise SendRefused("Its inbox is gone, inactive or has no outbound URL; fix the inbox first.")
        locked.delivery_status = DeliveryStatus.QUEUED
        locked.error_code = ""
        locked.failure_reason = ""
        locked.updated_at = timezone.now()
        locked.save(update_fields=["delivery_status", "error_code", "failure_reason", "updated_at"])
        timeline_add_event(
            tenant=tenant, customer=locked.customer, conversation=locked.conversation, event="message_resent",
            actor=actor, data={"entry_id": locked.pk},
        )
        # robust: a broker outage must not fail the request; the sweeper hands the message over later.
        transaction.on_commit(lambda: deliver_message.delay(locked.pk), robust=True)
    return locked
