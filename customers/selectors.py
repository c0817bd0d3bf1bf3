from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

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


def customer_search(*, tenant: Tenant, query: str) -> QuerySet[Customer]:
    """Customers whose name or any address contains `query`; a phone number written any way finds its E.164 form."""
    query = query.strip()[:200]
    values = {query}
    for kind in ("phone", "email"):
        try:
            values.add(normalize_identity(kind, query, region=tenant.default_region))
        except ValidationError:
            pass  # not an address of that kind: the text match still applies
    identities = Identity.objects.for_tenant(tenant).filter(
        Q(value__icontains=query) | Q(value__in=values)
    ).values("customer_id")
    return customer_list(tenant=tenant).filter(Q(name__icontains=query) | Q(pk__in=identities))


def customer_get(*, tenant: Tenant, customer_id: int) -> Customer:
    return Customer.objects.for_tenant(tenant).get(pk=customer_id)


def customer_find_by_identity(*, tenant: Tenant, kind: str, value: str) -> Customer | None:
    """Find the customer owning an address (raises InvalidIdentity for an impossible address)."""
    normalized = normalize_identity(kind, value, region=tenant.default_region)
    identity = (
        Identity.objects.for_tenant(tenant).select_related("customer").filter(kind=kind, value=normalized).first()
    )
    return identity.customer if identity else None


def customer_possible_duplicates(*, tenant: Tenant, customer: Customer, limit: int = 10) -> QuerySet[Customer]:
    """Other customers with the same name or the same phone number on another kind (SMS vs WhatsApp).

    Two indexed lookups (identity values, upper(name)) rather than one query ORing a join with a name test,
    which Postgres can only answer by scanning every customer of the tenant (86 ms at 100k customers)."""
    numbers = [i.value for i in customer.identities.all() if i.kind in ("phone", "whatsapp")]
    ids: set[int] = set()
    if numbers:
        ids.update(
            Identity.objects.for_tenant(tenant).filter(value__in=numbers).exclude(customer_id=customer.pk)
            .values_list("customer_id", flat=True)[:limit]
        )
    if customer.name:
        ids.update(
            customer_list(tenant=tenant).filter(name__iexact=customer.name).exclude(pk=customer.pk)
            .values_list("pk", flat=True)[:limit]
        )
    return customer_list(tenant=tenant).filter(pk__in=ids).order_by("-created_at") if ids else Customer.objects.none()
