"""Writes of outgoing webhooks: store deliveries after an event, POST them, record attempts, disable and resend."""

from __future__ import annotations

import json
import logging
import smtplib
import time
import uuid
from datetime import timedelta
from http.client import HTTPException

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

# One POST without following redirects (a redirect could point a subscription at an internal address).
from channels_app.adapters.api.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    timestamped_signature_for,
)
from channels_app.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookSubscription,
)
from channels_app.webhooks.events import event_data, webhook_event_for
from channels_app.webhooks.subscriptions import active_subscriptions
from channels_app.webhooks.urls import check_webhook_url
from customers.models import Membership, Role, Tenant
from omnidesk.lib.events import DomainEvent
from omnidesk.lib.http import post_once

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
RETRY_WINDOW = timedelta(hours=24)
# A subscription whose attempts keep failing is disabled early only if it has failed for a while too:
# a one-minute outage during a burst of 50 events must not switch it off.
DISABLE_AFTER_FAILURES = 50
DISABLE_AFTER_FAILING_FOR = timedelta(hours=1)
# A claim may be made a moment before next_attempt_at (clocks of workers differ a little).
CLAIM_TOLERANCE = timedelta(seconds=2)
SNIPPET_LENGTH = 500


def retry_delay(attempt: int) -> int:
    """30 s, 1 min, 2 min … capped at an hour: about 30 attempts in the retry window."""
    return min(30 * 2 ** (attempt - 1), 3600)


def _body(*, delivery_id: uuid.UUID, event_type: str, event: DomainEvent, tenant_slug: str, data: dict) -> str:
    document = {
        "id": str(delivery_id), "type": event_type, "created_at": event.occurred_at.isoformat(),
        "tenant": tenant_slug, "data": data,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"))


def webhook_deliveries_create(*, event: DomainEvent) -> list[int]:
    """One pending delivery per active subscription of the event's tenant that wants it, then enqueue them.

    Rows first: if the broker is down they stay pending and the sweeper sends them.
    """
    event_type = webhook_event_for(event.name)
    if event_type is None:
        return []
    subscriptions = [s for s in active_subscriptions(event.tenant_id) if s.wants(event_type)]
    if not subscriptions:
        return []
    tenant_slug = Tenant.objects.values_list("slug", flat=True).get(pk=event.tenant_id)
    data = event_data(event)
    now = timezone.now()
    ids: list[int] = []
    with transaction.atomic():
        for subscription in subscriptions:
            delivery_id = uuid.uuid4()
            delivery = WebhookDelivery.objects.create(
                tenant_id=event.tenant_id, subscription_id=subscription.id, uuid=delivery_id, event=event_type,
                body=_body(delivery_id=delivery_id, event_type=event_type, event=event, tenant_slug=tenant_slug,
                           data=data),
                next_attempt_at=now, retry_until=now + RETRY_WINDOW, created_at=now, updated_at=now,
            )
            ids.append(delivery.pk)
        transaction.on_commit(lambda: webhook_deliveries_enqueue(ids))
    return ids


def webhook_deliveries_enqueue(delivery_ids: list[int]) -> None:
    from channels_app.webhooks.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except BrokerUnavailable as exc:
            logger.warning("Broker unavailable; webhook delivery %s waits for the sweeper: %s", delivery_id, exc)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """pending → sending; only one worker wins, so a duplicated task does not POST twice at once."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now + CLAIM_TOLERANCE,
    ).update(status=WebhookDeliveryStatus.SENDING, updated_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("subscription", "tenant").get(pk=delivery_id)


def _post(subscription: WebhookSubscription, delivery: WebhookDelivery) -> tuple[int | None, str, str]:
    """POST the delivery once: (status code or None, response snippet, error)."""
    body = delivery.body.encode()
    secret = subscription.get_secret()
    if not secret:
        return None, "", "The subscription has no signing secret; generate one in admin."
    try:
        check_webhook_url(subscription.url)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Omnidesk-Webhook/1",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.uuid),
            SIGNATURE_HEADER: timestamped_signature_for(secret, body, timestamp),
        }
        status, content = post_once(subscription.url, body, headers, TIMEOUT_SECONDS)
    except ValidationError as exc:
        return None, "", " ".join(exc.messages)
    except ValueError as exc:
        return None, "", f"The URL is unusable: {exc}"
    except (OSError, HTTPException) as exc:
        return None, "", f"Could not reach the receiver: {exc or type(exc).__name__}"
    snippet = content[:SNIPPET_LENGTH].decode("utf-8", errors="replace")
    error = "" if 200 <= status < 300 else f"The receiver answered HTTP {status}."
    return status, snippet, error


def webhook_deliver(*, delivery_id: int) -> int | None:
    """Try one pending delivery. Returns seconds until its retry, or None when it is done (or not ours)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    subscription = delivery.subscription
    manual = delivery.retry_until is None
    if not subscription.is_active and not manual:
        _finish(delivery, WebhookDeliveryStatus.FAILED, "The subscription is disabled.")
        return None
    started = time.monotonic()
    status_code, snippet, error = _post(subscription, delivery)
    latency = int((time.monotonic() - started) * 1000)
    now = timezone.now()
    number = delivery.attempt_count + 1
    with transaction.atomic():
        WebhookAttempt.objects.create(
            tenant_id=delivery.tenant_id, delivery=delivery, number=number, succeeded=not error,
            status_code=status_code, error=error[:500], response_snippet=snippet, latency_ms=latency, created_at=now,
        )
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        delivery.attempt_count = number
        if not error:
            subscription.consecutive_failures, subscription.failing_since = 0, None
            subscription.last_success_at = now
            subscription.save(update_fields=["consecutive_failures", "failing_since", "last_success_at"])
            delivery.delivered_at = now
            _finish(delivery, WebhookDeliveryStatus.DELIVERED, "")
            return None
        subscription.consecutive_failures += 1
        subscription.failing_since = subscription.failing_since or now
        subscription.save(update_fields=["consecutive_failures", "failing_since"])
        delay = retry_delay(number)
        disable_reason = ""
        if manual or now + timedelta(seconds=delay) > delivery.retry_until:
            _finish(delivery, WebhookDeliveryStatus.FAILED, error)
            if not manual:
                disable_reason = (
                    f"Delivery {delivery.uuid} ({delivery.event}) still failed after {number} attempts over "
                    f"{RETRY_WINDOW}: {error}"
                )
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            _finish(delivery, WebhookDeliveryStatus.PENDING, error)
        if (
            not disable_reason and subscription.consecutive_failures >= DISABLE_AFTER_FAILURES
            and now - subscription.failing_since >= DISABLE_AFTER_FAILING_FOR
        ):
            disable_reason = (
                f"{subscription.consecutive_failures} attempts in a row failed since "
                f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC; the last one: {error}"
            )
        if disable_reason and subscription.is_active:
            webhook_subscription_disable(subscription=subscription, reason=disable_reason)
    logger.info("Webhook delivery %s attempt %s failed: %s", delivery.uuid, number, error)
    return delay if delivery.status == WebhookDeliveryStatus.PENDING else None


def _finish(delivery: WebhookDelivery, status: str, error: str) -> None:
    delivery.status = status
    delivery.last_error = error[:500]
    delivery.updated_at = timezone.now()
    delivery.save(update_fields=[
        "status", "last_error", "updated_at", "attempt_count", "next_attempt_at", "delivered_at",
    ])


def tenant_admin_emails(tenant_id: int) -> list[str]:
    return sorted(set(
        Membership.objects.for_tenant(tenant_id).filter(role=Role.ADMIN, user__is_active=True)
        .exclude(user__email="").values_list("user__email", flat=True)
    ))


def _mail_admins_of(tenant_id: int, subject: str, body: str) -> None:
    recipients = tenant_admin_emails(tenant_id)
    if not recipients:
        logger.warning("Tenant %s has no admin with an e-mail address to tell: %s", tenant_id, subject)
        return
    try:
        send_mail(subject, body, None, recipients)
    except (smtplib.SMTPException, OSError):
        logger.exception("Could not mail the admins of tenant %s: %s", tenant_id, subject)


@transaction.atomic
def webhook_subscription_disable(*, subscription: WebhookSubscription, reason: str, actor=None) -> WebhookSubscription:
    """Switch it off with the reason, drop its pending deliveries and tell the tenant's admins (after commit)."""
    from customers.services import audit_record

    now = timezone.now()
    subscription.is_active, subscription.disabled_at, subscription.disabled_reason = False, now, reason[:500]
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    WebhookDelivery.objects.for_tenant(subscription.tenant_id).filter(
        subscription=subscription, status=WebhookDeliveryStatus.PENDING, retry_until__isnull=False,
    ).update(status=WebhookDeliveryStatus.FAILED, last_error="The subscription was disabled.", updated_at=now)
    audit_record(tenant=subscription.tenant, actor=actor, action="webhook.disable", target=subscription,
                 details={"reason": reason[:500]})
    link = f"{settings.PUBLIC_BASE_URL}/admin/channels_app/webhooksubscription/{subscription.pk}/change/"
    subject = f"Omnidesk webhook disabled: {subscription.url}"[:200]
    body = (
        f"The webhook subscription {subscription.url} of {subscription.tenant.name} was disabled and receives no more "
        f"events.\n\nReason: {reason}\n\nFix the receiver, then re-enable the subscription in admin "
        f"(failed deliveries can be resent from there): {link}\n"
    )
    tenant_id = subscription.tenant_id
    transaction.on_commit(lambda: _mail_admins_of(tenant_id, subject, body))
    logger.warning("Disabled webhook subscription %s of tenant %s: %s", subscription.pk, tenant_id, reason)
    return subscription


@transaction.atomic
def webhook_subscription_enable(*, subscription: WebhookSubscription, actor=None) -> WebhookSubscription:
    from customers.services import audit_record

    subscription.is_active, subscription.disabled_at, subscription.disabled_reason = True, None, ""
    subscription.consecutive_failures, subscription.failing_since = 0, None
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason", "consecutive_failures",
                                     "failing_since"])
    audit_record(tenant=subscription.tenant, actor=actor, action="webhook.enable", target=subscription)
    return subscription


def webhook_delivery_resend(*, tenant: Tenant | int, delivery: WebhookDelivery) -> WebhookDelivery | None:
    """One more attempt of a delivery, same id and body (so the receiver can recognise it). None if it is
    being sent right now."""
    now = timezone.now()
    updated = WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery.pk).exclude(
        status=WebhookDeliveryStatus.SENDING,
    ).update(status=WebhookDeliveryStatus.PENDING, next_attempt_at=now, retry_until=None, updated_at=now)
    if not updated:
        return None
    transaction.on_commit(lambda: webhook_deliveries_enqueue([delivery.pk]))
    delivery.refresh_from_db()
    return delivery


def webhook_deliveries_due(*, grace: timedelta = timedelta(seconds=60),
                           stuck_after: timedelta = timedelta(minutes=5)) -> list[int]:
    """For the sweeper: pending deliveries whose task never came (broker down, task lost), oldest first.

    A delivery left in `sending` by a dead worker goes back to pending: webhooks are at least once, and the
    receiver drops a repeat by its X-Omnidesk-Delivery id.
    """
    now = timezone.now()
    WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.SENDING, updated_at__lt=now - stuck_after).update(
        status=WebhookDeliveryStatus.PENDING, next_attempt_at=now - grace, updated_at=now,
    )
    return list(
        WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:1000]
    )
