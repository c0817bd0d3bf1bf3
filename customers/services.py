from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from customers.identities import normalize_identity
from customers.models import (
    ROLE_RANK,
    ApiToken,
    AuditLog,
    Customer,
    Identity,
    IdentityKind,
    Membership,
    Role,
    Tenant,
    Tier,
)
from omnidesk.lib.events import emit_on_commit

logger = logging.getLogger(__name__)


# Identity kinds whose normalized values name the same person when equal (a phone number).
SAME_PERSON_KINDS = {
    IdentityKind.PHONE: (IdentityKind.WHATSAPP,),
    IdentityKind.WHATSAPP: (IdentityKind.PHONE,),
}


class MergeError(ValidationError):
    pass


class IdentityTaken(ValidationError):
    """The address already belongs to another customer: merge them instead."""


def audit_record(
    *, tenant: Tenant, actor, action: str, target: Any = None, target_type: str = "", target_id: Any = "",
    details: dict | None = None,
) -> AuditLog:
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    return AuditLog.objects.create(
        tenant=tenant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_repr=str(target)[:300] if target is not None else "",
        details=details or {},
    )


def tenant_counter_next(*, tenant: Tenant, name: str) -> int:
    """Next value of a per-tenant sequence; the row lock lasts until commit, so no two callers share one."""
    table = connection.ops.quote_name("customers_tenantcounter")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, name, value) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (tenant_id, name) DO UPDATE SET value = {table}.value + 1 RETURNING value",
            [tenant.pk, name],
        )
        return cursor.fetchone()[0]


def customer_resolve_identity(
    *, tenant: Tenant, kind: str, value: str, name: str = ""
) -> tuple[Customer, bool]:
    """The customer who owns this address, created with it if nobody does. Returns (customer, created).

    The address is validated before anything is written, so a bad one leaves no half-made customer.
    """
    normalized = normalize_identity(kind, value, region=tenant.default_region)
    identities = Identity.objects.for_tenant(tenant).select_related("customer")
    identity = identities.filter(kind=kind, value=normalized).first()
    if identity is not None:
        return identity.customer, False
    # The same E.164 number on SMS/voice and on WhatsApp is the same person: the new kind joins them.
    sibling = identities.filter(kind__in=SAME_PERSON_KINDS.get(kind, ()), value=normalized).order_by("created_at").first()
    try:
        with transaction.atomic():
            if sibling is not None:
                Identity.objects.create(tenant=tenant, customer=sibling.customer, kind=kind, value=normalized)
                return sibling.customer, False
            customer = Customer.objects.create(tenant=tenant, name=(name or "").strip()[:200])
            Identity.objects.create(tenant=tenant, customer=customer, kind=kind, value=normalized)
    except IntegrityError:
        # A concurrent delivery from the same address created it between our read and our insert.
        identity = Identity.objects.for_tenant(tenant).select_related("customer").get(kind=kind, value=normalized)
        return identity.customer, False
    emit_on_commit("customer.created", tenant_id=tenant.pk, customer_id=customer.pk)
    return customer, True


def customer_lock_for_identity(*, tenant: Tenant, kind: str, normalized: str, name: str = "") -> Customer:
    """The customer who owns this address, row-locked until commit; created with it if nobody does, and
    followed to the survivor if it was merged. Call inside a transaction, with the address as
    `normalize_identity` returns it (so an impossible address was refused before any transaction began).

    The lock is FOR NO KEY UPDATE, like every row lock here: it serializes this customer's writers without
    blocking the inserts that reference the row. A known address (nearly every message) costs one query.
    The owner is found as a subquery rather than a join: a join lets a planner with stale statistics (a new
    tenant's tables, autovacuum off) scan every identity once per customer, a cost that grows with the square
    of the tenant's size; the subquery is looked up once.
    """
    locked = Customer.objects.for_tenant(tenant).select_for_update(no_key=True, of=("self",))
    owner = Identity.objects.for_tenant(tenant).filter(kind=kind, value=normalized).values("customer_id")[:1]
    customer = locked.filter(pk=Subquery(owner)).first()
    if customer is None:
        customer, _ = customer_resolve_identity(tenant=tenant, kind=kind, value=normalized, name=name)
        customer = locked.get(pk=customer.pk)
    while customer.merged_into_id is not None:
        customer = locked.get(pk=customer.merged_into_id)
    return customer


def customer_is_verified(*, tenant: Tenant, customer: Customer) -> bool:
    """The customer holds a proven identity (a site's signed user id): unproven claims never merge into it."""
    return Identity.objects.for_tenant(tenant).filter(customer_id=customer.pk, verified_at__isnull=False).exists()


def customer_add_identity(*, tenant: Tenant, customer: Customer, kind: str, value: str) -> Identity:
    if customer.tenant_id != tenant.pk:
        raise ValidationError("That customer belongs to another tenant.")
    normalized = normalize_identity(kind, value, region=tenant.default_region)
    existing = Identity.objects.for_tenant(tenant).filter(kind=kind, value=normalized).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        raise IdentityTaken(
            f"{normalized} already belongs to customer #{existing.customer_id}; merge the two customers instead."
        )
    return Identity.objects.create(tenant=tenant, customer=customer, kind=kind, value=normalized)


# The fields `customer_create` and `customer_update` set; identities go through `customer_add_identity`.
CUSTOMER_FIELDS = ("name", "tier", "language", "time_zone", "attributes")


@transaction.atomic
def customer_create(
    *, tenant: Tenant, identities: list[tuple[str, str]] = (), actor=None, **fields: Any
) -> Customer:
    """A new customer with its addresses; an impossible or taken address stores nothing (IdentityTaken says whose)."""
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown customer fields: {', '.join(sorted(unknown))}.")
    normalized = [(kind, normalize_identity(kind, value, region=tenant.default_region)) for kind, value in identities]
    customer = Customer(tenant=tenant, **fields)
    customer.full_clean(exclude=["tenant", "merged_into"])
    customer.save()
    for kind, value in normalized:
        try:
            with transaction.atomic():
                customer_add_identity(tenant=tenant, customer=customer, kind=kind, value=value)
        except IntegrityError as exc:
            # Another request stored the same address between our check and our insert.
            raise IdentityTaken(f"{value} already belongs to another customer; merge the two instead.") from exc
    emit_on_commit("customer.created", tenant_id=tenant.pk, customer_id=customer.pk)
    return customer


@transaction.atomic
def customer_update(*, tenant: Tenant, customer: Customer, actor=None, **fields: Any) -> Customer:
    """Change a customer's own fields (not its addresses)."""
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown customer fields: {', '.join(sorted(unknown))}.")
    customer = Customer.objects.for_tenant(tenant).select_for_update(no_key=True).get(pk=customer.pk)
    changed = sorted(name for name, value in fields.items() if getattr(customer, name) != value)
    if not changed:
        return customer
    for name in changed:
        setattr(customer, name, fields[name])
    customer.full_clean(exclude=["tenant", "merged_into"])
    customer.save()
    return customer


@transaction.atomic
def customer_merge(*, tenant: Tenant, survivor: Customer, merged: Customer, actor=None) -> Customer:
    """Move everything of `merged` onto `survivor`. Merging the same pair again changes nothing."""
    from conversations.models import Conversation, TimelineEntry
    from conversations.services import timeline_add_event

    if survivor.pk == merged.pk:
        raise MergeError("A customer cannot be merged into itself.")
    # Lock both rows in id order so two concurrent merges cannot deadlock or interleave.
    locked = {
        c.pk: c
        for c in Customer.objects.for_tenant(tenant).select_for_update(no_key=True).filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")
    }
    if len(locked) != 2:
        raise MergeError("Both customers must belong to this tenant.")
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if merged.merged_into_id == survivor.pk:
        return survivor
    if merged.merged_into_id is not None:
        raise MergeError(f"{merged} was already merged into customer #{merged.merged_into_id}.")
    if survivor.merged_into_id is not None:
        raise MergeError(f"{survivor} was merged into customer #{survivor.merged_into_id}; merge into that one.")

    identities = [f"{kind}:{value}" for kind, value in merged.identities.values_list("kind", "value")]
    Identity.objects.for_tenant(tenant).filter(customer=merged).update(customer=survivor)
    conversation_ids = list(
        Conversation.objects.for_tenant(tenant).filter(customer=merged).values_list("pk", flat=True)
    )
    Conversation.objects.for_tenant(tenant).filter(pk__in=conversation_ids).update(customer=survivor)
    TimelineEntry.objects.for_tenant(tenant).filter(customer=merged).update(customer=survivor)

    survivor.name = survivor.name or merged.name
    if merged.tier == Tier.VIP:
        survivor.tier = Tier.VIP
    survivor.language = survivor.language or merged.language
    survivor.time_zone = survivor.time_zone or merged.time_zone
    survivor.attributes = {**merged.attributes, **survivor.attributes}
    survivor.save()
    merged.merged_into = survivor
    merged.save(update_fields=["merged_into", "updated_at"])

    details = {
        "survivor_id": survivor.pk,
        "merged_customer_id": merged.pk,
        "merged_customer_name": merged.name,
        "identities_moved": identities,
        "conversations_moved": conversation_ids,
    }
    timeline_add_event(tenant=tenant, customer=survivor, event="customer_merged", actor=actor, data=details)
    audit_record(tenant=tenant, actor=actor, action="customer.merge", target=survivor, details=details)
    emit_on_commit("customer.merged", tenant_id=tenant.pk, customer_id=survivor.pk, merged_customer_id=merged.pk)
    return survivor


def membership_user_for_email(*, email: str):
    """The account signing in with this e-mail, created (with no usable password yet) if there is none.

    Returns (user, created).
    """
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    if user is not None:
        return user, False
    user = User(username=email, email=email)
    user.set_unusable_password()
    user.save()
    return user, True


def membership_send_invitation(*, membership: Membership, invited_by) -> None:
    """E-mail a new person a link to choose their password (Django's password-reset confirmation page)."""
    user = membership.user
    link = settings.PUBLIC_BASE_URL + reverse(
        "password_reset_confirm",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)},
    )
    context = {"membership": membership, "tenant": membership.tenant, "invited_by": invited_by, "link": link}
    send_mail(
        subject=f"You have a seat at {membership.tenant.name} on Omnidesk",
        message=render_to_string("registration/invitation_email.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )


@transaction.atomic
def membership_set_role(*, tenant: Tenant, membership: Membership, role: str, actor=None) -> Membership:
    if role not in ROLE_RANK:
        raise ValidationError(f"{role!r} is not a role ({', '.join(Role.values)}).")
    membership = Membership.objects.for_tenant(tenant).select_for_update(no_key=True).get(pk=membership.pk)
    old_role = membership.role
    if old_role == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        tenant=tenant, actor=actor, action="membership.role_change", target=membership,
        details={"user_id": membership.user_id, "from": old_role, "to": role},
    )
    return membership


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, membership: Membership, name: str, actor=None) -> tuple[ApiToken, str]:
    """A new token and its key; the key is not stored and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name that says what it is for.")
    key = "od_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        tenant_id=membership.tenant_id, membership=membership, name=name[:100], prefix=key[:11],
        key_hash=api_token_hash(key),
    )
    audit_record(tenant=membership.tenant, actor=actor, action="api_token.create", target=token, details={"name": token.name})
    return token, key


def api_token_revoke(*, tenant: Tenant, token: ApiToken, actor=None) -> ApiToken:
    if token.tenant_id != tenant.pk:
        raise ValidationError("That token belongs to another tenant.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(tenant=tenant, actor=actor, action="api_token.revoke", target=token)
    return token
