from __future__ import annotations

from django import forms
from django.contrib import admin

from channels_app.adapters.base import ADAPTERS, get_adapter
from channels_app.models import DeliveryAttempt, Inbox
from omnidesk.lib.admin import ReadOnlyTenantAdmin, TenantConsistencyForm, TenantScopedAdmin
from omnidesk.lib.crypto import mask


def _all_secret_names() -> list[str]:
    names: list[str] = []
    for channel in ADAPTERS:
        for name in get_adapter(channel).secret_names:
            if name not in names:
                names.append(name)
    return names


class InboxAdminForm(TenantConsistencyForm):
    """Secrets are write-only: the form shows their last characters and keeps them when left blank."""

    clear_secrets = forms.CharField(
        required=False, help_text="Names of secrets to remove, comma-separated.", label="Remove secrets"
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
        if commit:
            inbox.save()
        return inbox


@admin.register(Inbox)
class InboxAdmin(TenantScopedAdmin):
    form = InboxAdminForm
    list_display = ("name", "tenant", "channel", "address", "is_active", "created_at")
    list_filter = ("channel", "is_active")
    search_fields = ("name", "address")
    readonly_fields = ("key", "webhook_urls")

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
