from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from channels_app.adapters.base import ADAPTERS, get_adapter
from channels_app.adapters.web_chat.admin_forms import (
    ChatInboxFields,
    chat_fieldsets,
    embed_code_html,
    identity_secret_new,
)
from channels_app.models import (
    DeliveryAttempt,
    Inbox,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    new_webhook_secret,
)
from omnidesk.lib.admin import (
    ReadOnlyTenantAdmin,
    TenantConsistencyForm,
    TenantScopedAdmin,
    TenantScopedInline,
)
from omnidesk.lib.crypto import mask


def _all_secret_names() -> list[str]:
    names: list[str] = []
    for channel in ADAPTERS:
        for name in get_adapter(channel).secret_names:
            if name not in names:
                names.append(name)
    return names


class InboxAdminForm(ChatInboxFields, TenantConsistencyForm):
    """Secrets are write-only: the form shows their last characters and keeps them when left blank."""

    clear_secrets = forms.CharField(
        required=False, help_text="Names of secrets to remove, comma-separated.", label="Remove secrets"
    )
    # Declared here (not in __init__) so admin's fieldsets show it; stored in Inbox.settings["csat"].
    csat_enabled = forms.BooleanField(
        required=False, label="Send satisfaction surveys",
        help_text="When a conversation is resolved, ask the customer for a 1–5 rating on this inbox "
        "(SMS, WhatsApp, e-mail and web chat; voice and API inboxes never send surveys).",
    )

    class Meta:
        model = Inbox
        fields = ("tenant", "channel", "name", "address", "settings", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.get_secrets() if self.instance.pk else {}
        for name in _all_secret_names():
            self.fields[f"secret_{name}"] = forms.CharField(
                required=False,
                label=name.replace("_", " ").capitalize(),
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=f"Stored: {mask(stored[name])}. Leave blank to keep it." if name in stored else "Not set.",
            )
        from conversations.csat import csat_enabled

        self.fields["csat_enabled"].initial = csat_enabled(self.instance) if self.instance.pk else True

    def save(self, commit=True):
        inbox = super().save(commit=False)
        updates = {
            name: self.cleaned_data.get(f"secret_{name}", "")
            for name in _all_secret_names()
            if self.cleaned_data.get(f"secret_{name}")
        }
        for name in filter(None, (n.strip() for n in self.cleaned_data.get("clear_secrets", "").split(","))):
            updates[name] = ""
        if updates:
            inbox.set_secrets(**updates)
        if "csat_enabled" in self.cleaned_data:
            from conversations.csat import csat_set_enabled

            csat_set_enabled(inbox, self.cleaned_data["csat_enabled"])
        if commit:
            inbox.save()
        return inbox


@admin.register(Inbox)
class InboxAdmin(TenantScopedAdmin):
    form = InboxAdminForm
    list_display = ("name", "tenant", "channel", "address", "is_active", "created_at")
    list_filter = ("channel", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("key", "webhook_urls", "embed_code")
    actions = ["regenerate_identity_secret"]

    def get_fieldsets(self, request, obj=None):
        return chat_fieldsets(super().get_fieldsets(request, obj), obj)

    @admin.display(description="Embed code")
    def embed_code(self, obj: Inbox) -> str:
        return embed_code_html(obj)

    def save_model(self, request, obj, form, change):
        # A chat inbox gets its identity secret on first save; like webhook secrets it is shown only then.
        secret = ""
        if obj.channel == "chat" and not obj.get_secret("identity_secret"):
            secret = identity_secret_new()
            obj.set_secrets(identity_secret=secret)
        super().save_model(request, obj, form, change)
        if secret:
            self.message_user(request, f"Identity secret of {obj.name} (shown only now; sites sign user ids with it): "
                              f"{secret}", messages.WARNING)

    @admin.action(description="Generate a new identity secret for the selected chat inboxes (shown once)")
    def regenerate_identity_secret(self, request, queryset):
        for inbox in queryset.filter(channel="chat"):
            secret = identity_secret_new()
            inbox.set_secrets(identity_secret=secret)
            inbox.save(update_fields=["secrets_encrypted"])
            self.message_user(request, f"New identity secret of {inbox.name} (shown only now): {secret}", messages.WARNING)

    @admin.display(description="Webhook URLs")
    def webhook_urls(self, obj: Inbox) -> str:
        if not obj.pk:
            return "Shown after saving."
        base = obj.webhook_base_url
        paths = {
            "sms": ["twilio/{key}/messages/", "twilio/{key}/status/"],
            "whatsapp": ["twilio/{key}/messages/", "twilio/{key}/status/"],
            "voice": ["twilio/{key}/voice/", "twilio/{key}/voice/status/"],
            "email": ["email/{key}/"],
            "api": ["api/{key}/messages/"],
        }.get(obj.channel, [])
        return "\n".join(f"{base}/{p.format(key=obj.key)}" for p in paths) or "—"


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "tenant", "entry", "number", "succeeded", "permanent_failure", "status_code", "latency_ms", "error")
    list_filter = ("succeeded", "permanent_failure")
    search_fields = ("provider_id", "error")
    raw_id_fields = ("entry",)
    actions = ["resend_failed_api_messages"]

    @admin.action(description="Resend the failed API messages of the selected attempts")
    def resend_failed_api_messages(self, request, queryset):
        from channels_app.adapters.api.services import api_message_resend
        from channels_app.adapters.base import SendRefused

        resent, refused = 0, []
        for attempt in queryset.select_related("entry__tenant").distinct("entry_id").order_by("entry_id"):
            try:
                api_message_resend(tenant=attempt.entry.tenant, entry=attempt.entry, actor=request.user)
                resent += 1
            except SendRefused as exc:
                refused.append(f"message {attempt.entry_id}: {' '.join(exc.messages)}")
        self.message_user(request, f"{resent} message(s) queued again." + (f" Not resent: {'; '.join(refused)}" if refused else ""))


class WebhookSubscriptionForm(TenantConsistencyForm):
    url = forms.URLField(max_length=1000, assume_scheme="https", help_text="http(s) URL the events are POSTed to.")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ("tenant", "url", "description", "events")

    def clean_url(self) -> str:
        from channels_app.webhooks.urls import check_webhook_url

        url = self.cleaned_data["url"]
        check_webhook_url(url)
        return url


class WebhookAttemptInline(TenantScopedInline):
    model = WebhookAttempt
    fields = readonly_fields = ("number", "created_at", "succeeded", "status_code", "latency_ms", "error",
                                "response_snippet")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantScopedAdmin):
    """The signing secret is generated on creation and shown in full once, in the confirmation message."""

    form = WebhookSubscriptionForm
    list_display = ("url", "tenant", "description", "state", "consecutive_failures", "last_success_at", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("secret_masked", "state", "disabled_at", "disabled_reason", "consecutive_failures",
                       "failing_since", "last_success_at", "recent_deliveries")
    actions = ["reenable", "rotate_secret"]

    @admin.display(description="State")
    def state(self, obj: WebhookSubscription) -> str:
        if obj.is_active:
            return "active" if not obj.consecutive_failures else f"active, failing ({obj.consecutive_failures} in a row)"
        return f"disabled {obj.disabled_at:%Y-%m-%d %H:%M}: {obj.disabled_reason}" if obj.disabled_at else "disabled"

    @admin.display(description="Signing secret")
    def secret_masked(self, obj: WebhookSubscription) -> str:
        return mask(obj.get_secret()) if obj.pk else "Generated when saved, and shown once."

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, obj: WebhookSubscription) -> str:
        if not obj.pk:
            return "—"
        deliveries = WebhookDelivery.objects.for_tenant(obj.tenant_id).filter(subscription=obj)[:20]
        url = reverse("admin:channels_app_webhookdelivery_changelist") + f"?subscription__id__exact={obj.pk}"
        rows = format_html_join(
            "", "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((reverse("admin:channels_app_webhookdelivery_change", args=[d.pk]), d.uuid, d.event, d.status,
              d.attempt_count, d.created_at) for d in deliveries),
        )
        return format_html("<table>{}</table><a href='{}'>All deliveries</a>", rows, url)

    def save_model(self, request, obj, form, change):
        secret = ""
        if not obj.secret_encrypted:
            secret = new_webhook_secret()
            obj.set_secret(secret)
        super().save_model(request, obj, form, change)
        if secret:
            self.message_user(request, f"Signing secret of {obj.url} (shown only now, copy it): {secret}",
                              messages.WARNING)

    @admin.action(description="Re-enable the selected subscriptions")
    def reenable(self, request, queryset):
        from channels_app.webhooks.services import webhook_subscription_enable

        for subscription in queryset.select_related("tenant"):
            webhook_subscription_enable(subscription=subscription, actor=request.user)
        self.message_user(request, f"{queryset.count()} subscription(s) enabled.")

    @admin.action(description="Generate a new signing secret (shown once)")
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            secret = new_webhook_secret()
            subscription.set_secret(secret)
            subscription.save(update_fields=["secret_encrypted"])
            self.message_user(request, f"New signing secret of {subscription.url} (shown only now): {secret}",
                              messages.WARNING)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "tenant", "event", "uuid", "subscription", "status", "attempt_count", "next_attempt_at",
                    "last_error")
    list_filter = ("status", "event")
    list_select_related = ("tenant", "subscription")
    search_fields = ("uuid",)
    readonly_fields = ("uuid", "subscription", "event", "status", "attempt_count", "next_attempt_at", "retry_until",
                       "delivered_at", "last_error", "created_at", "body")
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    @admin.action(description="Resend the selected deliveries (same delivery id)")
    def resend(self, request, queryset):
        from channels_app.webhooks.services import webhook_delivery_resend

        resent, busy = 0, 0
        for delivery in queryset:
            if webhook_delivery_resend(tenant=delivery.tenant_id, delivery=delivery) is None:
                busy += 1
            else:
                resent += 1
        self.message_user(request, f"{resent} delivery(ies) queued again." + (f" {busy} being sent now, left alone." if busy else ""))
