"""Django admin scoped to the tenants where the staff user is an admin (superusers see everything)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models

from customers.models import Membership, Role, Tenant


def admin_tenant_ids(user) -> set[int] | None:
    """Tenant ids the user administers; None means every tenant (superuser)."""
    if not user.is_active or not user.is_staff:
        return set()
    if user.is_superuser:
        return None
    cache = getattr(user, "_admin_tenant_ids", None)
    if cache is None:
        cache = set(Membership.objects.filter(user=user, role=Role.ADMIN).values_list("tenant_id", flat=True))
        user._admin_tenant_ids = cache
    return cache


def _tenant_field_name(model: type[models.Model]) -> str | None:
    if model is Tenant:
        return "pk"
    names = {f.name for f in model._meta.get_fields()}
    return "tenant" if "tenant" in names else None


def scope_queryset(queryset: models.QuerySet, user) -> models.QuerySet:
    tenant_ids = admin_tenant_ids(user)
    if tenant_ids is None:
        return queryset
    model = queryset.model
    if model is get_user_model():
        return queryset.filter(memberships__tenant_id__in=tenant_ids).distinct()
    field = _tenant_field_name(model)
    if field == "pk":
        return queryset.filter(pk__in=tenant_ids)
    if field == "tenant":
        return queryset.filter(tenant_id__in=tenant_ids)
    return queryset


class TenantConsistencyForm(forms.ModelForm):
    """Refuses to link an object to rows of another tenant (a cross-tenant write)."""

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None:
            return cleaned
        for name, value in list(cleaned.items()):
            values = value if isinstance(value, (list, tuple, models.QuerySet)) else [value]
            for item in values:
                if isinstance(item, models.Model) and not isinstance(item, Tenant) and hasattr(item, "tenant_id"):
                    if item.tenant_id != tenant.pk:
                        self.add_error(name, ValidationError(f"{item} belongs to another tenant."))
        return cleaned


class TenantScopedAdmin(admin.ModelAdmin):
    form = TenantConsistencyForm
    list_select_related = ("tenant",)

    def _allowed(self, request, obj=None) -> bool:
        tenant_ids = admin_tenant_ids(request.user)
        if tenant_ids is None:
            return True
        if not tenant_ids:
            return False
        if obj is None:
            return True
        tenant_id = obj.pk if isinstance(obj, Tenant) else getattr(obj, "tenant_id", None)
        return tenant_id in tenant_ids

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        tenant_ids = admin_tenant_ids(request.user)
        if _tenant_field_name(self.model) == "tenant" and (tenant_ids is None or len(tenant_ids) > 1):
            filters.insert(0, "tenant")
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user)
        return field

    def save_model(self, request, obj, form, change):
        if not self._allowed(request, obj):
            raise PermissionError("Not an admin of that tenant.")
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        self._audit_delete(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._audit_delete(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request, objects) -> None:
        from customers.services import audit_record

        for obj in objects:
            tenant = obj if isinstance(obj, Tenant) else obj.tenant
            if isinstance(obj, Tenant):
                continue  # the tenant's own audit log goes with it
            audit_record(tenant=tenant, actor=request.user, action="object.delete", target=obj)


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """For append-only records (audit log, analytics events)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantChildFormSet(forms.BaseInlineFormSet):
    """Inline rows take the parent's tenant before they are validated (the field is not on the form)."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        tenant_id = getattr(self.instance, "tenant_id", None)
        if tenant_id and not getattr(form.instance, "tenant_id", None):
            form.instance.tenant_id = tenant_id
        return form


class TenantScopedInline(admin.TabularInline):
    """An inline of tenant-owned rows, allowed to whoever may change the parent."""

    formset = TenantChildFormSet
    extra = 0

    def _allowed(self, request, obj=None) -> bool:
        tenant_ids = admin_tenant_ids(request.user)
        if tenant_ids is None:
            return True
        return bool(tenant_ids) and (obj is None or getattr(obj, "tenant_id", None) in tenant_ids)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)
