"""The one mechanism that scopes tenant data.

Every tenant-owned model inherits `TenantOwned`; reads go through `Model.objects.for_tenant(tenant)`
(inside selectors and services), never through a bare `.objects.get(id=...)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from customers.models import Tenant

M = TypeVar("M", bound=models.Model)


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    tenant = models.ForeignKey("customers.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


def get_for_tenant_or_404(queryset: models.QuerySet[M], tenant: Tenant, **lookup: Any) -> M:
    """The same 404 for "does not exist" and "belongs to another tenant"."""
    try:
        return queryset.for_tenant(tenant).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches.") from exc
