from __future__ import annotations

from django.contrib import admin

from customers.identities import InvalidIdentity, normalize_identity
from customers.models import AuditLog, Customer, Identity, Membership, Tenant, TenantCounter
from customers.services import membership_set_role
from omnidesk.lib.admin import ReadOnlyTenantAdmin, TenantConsistencyForm, TenantScopedAdmin, admin_tenant_ids


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    list_display = ("name", "slug", "default_region", "time_zone", "reopen_window_days", "created_at")
    search_fields = ("name", "slug")
    list_select_related = ()

    def has_add_permission(self, request):
        return admin_tenant_ids(request.user) is None

    def has_delete_permission(self, request, obj=None):
        return admin_tenant_ids(request.user) is None

    def get_readonly_fields(self, request, obj=None):
        return () if admin_tenant_ids(request.user) is None else ("slug",)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "display_name", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__username", "display_name")
    autocomplete_fields = ()
    list_select_related = ("tenant", "user")

    def save_model(self, request, obj, form, change):
        if change and "role" in form.changed_data:
            new_role = obj.role
            obj.role = form.initial["role"]
            super().save_model(request, obj, form, change)
            membership_set_role(tenant=obj.tenant, membership=obj, role=new_role, actor=request.user)
            obj.role = new_role
        else:
            super().save_model(request, obj, form, change)


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ("kind", "value", "created_at")
    readonly_fields = ("created_at",)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        tenant = obj.tenant if obj is not None else None
        base_clean = formset.form.clean

        def clean(form):
            cleaned = base_clean(form)
            kind, value = cleaned.get("kind"), cleaned.get("value")
            owner_tenant = tenant or getattr(form.instance, "tenant", None)
            if kind and value and owner_tenant is not None:
                from customers.identities import InvalidIdentity, normalize_identity

                try:
                    cleaned["value"] = normalize_identity(kind, value, region=owner_tenant.default_region)
                    form.instance.value = cleaned["value"]
                except InvalidIdentity as exc:
                    form.add_error("value", exc)
            return cleaned

        formset.form.clean = clean
        return formset


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "tier", "language", "merged_into", "created_at")
    list_filter = ("tier", ("merged_into", admin.EmptyFieldListFilter))
    search_fields = ("name", "identities__value")
    readonly_fields = ("merged_into", "created_at", "updated_at")
    inlines = [IdentityInline]

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if hasattr(inline_form.instance, "tenant_id") and not inline_form.instance.tenant_id:
                inline_form.instance.tenant = form.instance.tenant
        super().save_formset(request, form, formset, change)


class IdentityAdminForm(TenantConsistencyForm):
    """Stores the address in the form customer_resolve_identity looks it up by (E.164, lower-cased e-mail)."""

    def clean(self):
        cleaned = super().clean()
        tenant, kind, value = cleaned.get("tenant"), cleaned.get("kind"), cleaned.get("value")
        if tenant is not None and kind and value:
            try:
                cleaned["value"] = normalize_identity(kind, value, region=tenant.default_region)
            except InvalidIdentity as exc:
                self.add_error("value", exc)
        return cleaned


@admin.register(Identity)
class IdentityAdmin(TenantScopedAdmin):
    form = IdentityAdminForm
    list_display = ("value", "kind", "customer", "tenant", "created_at")
    list_filter = ("kind",)
    search_fields = ("value", "customer__name")
    list_select_related = ("tenant", "customer")
    raw_id_fields = ("customer",)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "tenant", "actor", "action", "target_type", "target_id", "target_repr")
    list_filter = ("action",)
    search_fields = ("target_repr", "target_id", "actor__email")
    date_hierarchy = "created_at"


@admin.register(TenantCounter)
class TenantCounterAdmin(ReadOnlyTenantAdmin):
    list_display = ("tenant", "name", "value")
