from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from customers.identities import InvalidIdentity, normalize_identity
from customers.models import ApiToken, AuditLog, Customer, Identity, Membership, Tenant, TenantCounter
from customers.services import (
    api_token_create,
    api_token_revoke,
    audit_record,
    membership_send_invitation,
    membership_set_role,
    membership_user_for_email,
)
from omnidesk.lib.admin import (
    ReadOnlyTenantAdmin,
    TenantConsistencyForm,
    TenantScopedAdmin,
    TenantScopedInline,
    admin_tenant_ids,
)


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


class MembershipAddForm(TenantConsistencyForm):
    """Adding a person is done by e-mail: an existing account gets the seat, a new one is created and
    receives a link to choose a password."""

    email = forms.EmailField(help_text="The person's e-mail address; they sign in with it.")

    class Meta:
        model = Membership
        fields = ("tenant", "email", "role", "display_name")

    def clean(self):
        cleaned = super().clean()
        tenant, email = cleaned.get("tenant"), (cleaned.get("email") or "").strip().lower()
        if tenant is not None and email:
            if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
                self.add_error("email", f"{email} already has a seat in {tenant}.")
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "display_name", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__username", "display_name")
    list_select_related = ("tenant", "user")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("tenant", "email", "role", "display_name")
        return ("tenant", "user", "role", "display_name")

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", "user") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if not change:
            user, created = membership_user_for_email(email=form.cleaned_data["email"])
            obj.user = user
            super().save_model(request, obj, form, change)
            audit_record(
                tenant=obj.tenant, actor=request.user, action="membership.add", target=obj,
                details={"user_id": user.pk, "role": obj.role, "new_account": created},
            )
            if created:
                membership_send_invitation(membership=obj, invited_by=request.user)
            return
        if "role" in form.changed_data:
            new_role = obj.role
            obj.role = form.initial["role"]
            super().save_model(request, obj, form, change)
            membership_set_role(tenant=obj.tenant, membership=obj, role=new_role, actor=request.user)
            obj.role = new_role
        else:
            super().save_model(request, obj, form, change)


class IdentityAdminForm(TenantConsistencyForm):
    """Stores the address in the form customer_resolve_identity looks it up by (E.164, lower-cased e-mail)."""

    class Meta:
        model = Identity
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id else None)
        kind, value = cleaned.get("kind"), cleaned.get("value")
        if tenant is None or not kind or not value:
            return cleaned
        try:
            cleaned["value"] = normalize_identity(kind, value, region=tenant.default_region)
        except InvalidIdentity as exc:
            self.add_error("value", exc)
            return cleaned
        # The tenant is not a field of the inline form, so Django's own unique check cannot see it.
        taken = Identity.objects.for_tenant(tenant).filter(kind=kind, value=cleaned["value"]).exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error("value", f"{cleaned['value']} already belongs to another customer; merge them instead.")
        return cleaned


class IdentityInline(TenantScopedInline):
    model = Identity
    form = IdentityAdminForm
    fields = ("kind", "value", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "tier", "language", "merged_into", "created_at")
    list_filter = ("tier", ("merged_into", admin.EmptyFieldListFilter))
    search_fields = ("name", "identities__value")
    readonly_fields = ("merged_into", "created_at", "updated_at")
    inlines = [IdentityInline]

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


class ApiTokenAddForm(TenantConsistencyForm):
    class Meta:
        model = ApiToken
        fields = ("membership", "name")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("membership") is not None:
            self.instance.tenant_id = cleaned["membership"].tenant_id
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    """Tokens are made by api_token_create (the key is shown once, in a message) and revoked, never edited."""

    list_display = ("name", "prefix", "membership", "tenant", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "membership__user__email")
    list_select_related = ("tenant", "membership__user")
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("membership", "name")
        return ("tenant", "membership", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # The change page is read-only (Django shows it as such); actions still need the list.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change or not self._allowed(request, obj):
            raise PermissionError("Not an admin of that tenant.")
        token, key = api_token_create(membership=form.cleaned_data["membership"], name=obj.name, actor=request.user)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = token.pk, token.prefix, token.key_hash, token.created_at
        obj._state.adding = False
        messages.warning(request, f"The key of {token.name!r} is {key} — copy it now: it is not shown again.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.select_related("tenant").filter(revoked_at__isnull=True):
            api_token_revoke(tenant=token.tenant, token=token, actor=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")
