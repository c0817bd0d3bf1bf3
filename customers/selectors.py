from __future__ import annotations

from django.db.models import QuerySet

from customers.identities import normalize_identity
from customers.models import Customer, Identity, Membership, Tenant


def membership_for_user(*, user, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.for_tenant(tenant).select_related("tenant").filter(user=user).first()


def memberships_of_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def membership_current(*, memberships: list[Membership], wanted_tenant_id: int | None) -> Membership | None:
    """The seat a user works in now: the tenant they switched to, else their first one."""
    return next((m for m in memberships if m.tenant_id == wanted_tenant_id), memberships[0] if memberships else None)


def customer_list(*, tenant: Tenant) -> QuerySet[Customer]:
    return Customer.objects.for_tenant(tenant).filter(merged_into__isnull=True)


def customer_get(*, tenant: Tenant, customer_id: int) -> Customer:
    return Customer.objects.for_tenant(tenant).get(pk=customer_id)


def customer_find_by_identity(*, tenant: Tenant, kind: str, value: str) -> Customer | None:
    """Find the customer owning an address (raises InvalidIdentity for an impossible address)."""
    normalized = normalize_identity(kind, value, region=tenant.default_region)
    identity = (
        Identity.objects.for_tenant(tenant).select_related("customer").filter(kind=kind, value=normalized).first()
    )
    return identity.customer if identity else None


def customer_possible_duplicates(*, tenant: Tenant, customer: Customer) -> QuerySet[Customer]:
    """Other customers with the same name or the same phone number on another kind (SMS vs WhatsApp)."""
    numbers = [i.value for i in customer.identities.all() if i.kind in ("phone", "whatsapp")]
    candidates = customer_list(tenant=tenant).exclude(pk=customer.pk)
    by_number = candidates.filter(identities__value__in=numbers) if numbers else candidates.none()
    by_name = candidates.filter(name__iexact=customer.name) if customer.name else candidates.none()
    return (by_number | by_name).distinct()
