"""Which active subscriptions of a tenant want events: asked for every domain event, so answered from memory.

Every stored message emits events, and each used to read the tenant's subscriptions from Postgres (a fifth
of the worker's time after a message was stored, for tenants that mostly have none). Each process keeps the
list per tenant under a change token kept in the cache (Redis). A change to a subscription replaces the
token, at once and again after its commit; a process whose token differs reads the list again. The token is
read before the list, so a list read before a change is never kept under the token that change wrote.
Without a reachable cache every lookup reads Postgres, as before.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channels_app.models import WebhookSubscription

logger = logging.getLogger(__name__)

MEMO_SIZE = 10_000
_memo: dict[int, tuple[str, list[ActiveSubscription]]] = {}


@dataclass(frozen=True)
class ActiveSubscription:
    id: int
    events: frozenset[str]

    def wants(self, event: str) -> bool:
        return event in self.events


def _token_key(tenant_id: int) -> str:
    return f"webhook-subscriptions:{tenant_id}"


def _read(tenant_id: int) -> list[ActiveSubscription]:
    rows = WebhookSubscription.objects.for_tenant(tenant_id).filter(is_active=True).values_list("pk", "events")
    return [ActiveSubscription(pk, frozenset(events or ())) for pk, events in rows]


def active_subscriptions(tenant_id: int) -> list[ActiveSubscription]:
    try:
        token = cache.get(_token_key(tenant_id))
        if token is None:
            token = uuid.uuid4().hex
            if not cache.add(_token_key(tenant_id), token, timeout=None):
                token = cache.get(_token_key(tenant_id))
    except Exception as exc:  # the cache (Redis) is down: correct and slower
        logger.warning("Cache unavailable for webhook subscriptions: %s", exc)
        return _read(tenant_id)
    memo = _memo.get(tenant_id)
    if memo is not None and token is not None and memo[0] == token:
        return memo[1]
    subscriptions = _read(tenant_id)
    if token is not None:
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[tenant_id] = (token, subscriptions)
    return subscriptions


def _replace_token(tenant_id: int) -> None:
    _memo.pop(tenant_id, None)
    try:
        cache.set(_token_key(tenant_id), uuid.uuid4().hex, timeout=None)
    except Exception as exc:
        # Other processes may then use their list for as long as Redis is away and the old token stays.
        logger.error("Could not mark the webhook subscriptions of tenant %s changed: %s", tenant_id, exc)


@receiver(post_save, sender=WebhookSubscription, dispatch_uid="webhook-subscriptions-changed-save")
@receiver(post_delete, sender=WebhookSubscription, dispatch_uid="webhook-subscriptions-changed-delete")
def subscriptions_changed(sender, instance: WebhookSubscription, **kwargs) -> None:
    tenant_id = instance.tenant_id
    # Now: nobody keeps the old list under the old token. After commit: nobody keeps a list read in between
    # (before the change was visible) under the token written now.
    _replace_token(tenant_id)
    transaction.on_commit(lambda: _replace_token(tenant_id))
