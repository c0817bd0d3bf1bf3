from __future__ import annotations

import secrets

from django.conf import settings as django_settings
from django.db import models

from omnidesk.lib.crypto import decrypt_json, encrypt_json
from omnidesk.lib.tenancy import TenantOwned


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    VOICE = "voice", "Voice"
    CHAT = "chat", "Web chat"
    API = "api", "API"


# Which identity kind addresses a customer on each channel.
CHANNEL_IDENTITY_KIND = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.VOICE: "phone",
    Channel.WHATSAPP: "whatsapp",
    Channel.CHAT: "chat_visitor",
    Channel.API: "external",
}


def new_inbox_key() -> str:
    return secrets.token_urlsafe(24)


class Inbox(TenantOwned):
    """One way in: a Twilio number, a support mailbox, a chat widget, an API source.

    The `key` goes into webhook URLs; it is unguessable and unique across tenants.
    """

    channel = models.CharField(max_length=16, choices=Channel.choices)
    name = models.CharField(max_length=100)
    key = models.CharField(max_length=64, unique=True, default=new_inbox_key, editable=False)
    address = models.CharField(
        max_length=320, blank=True, help_text="What customers write to: a number in E.164, an e-mail address…"
    )
    settings = models.JSONField(default=dict, blank=True, help_text="Non-secret provider settings.")
    # Provider secrets (auth tokens, passwords, signing secrets), Fernet-encrypted JSON; see get_secret().
    secrets_encrypted = models.TextField(blank=True, editable=False)
    # What a channel remembers between runs (the last IMAP UID read…).
    state = models.JSONField(default=dict, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "inboxes"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="inbox_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"

    def get_secrets(self) -> dict[str, str]:
        return decrypt_json(self.secrets_encrypted)

    def get_secret(self, name: str) -> str:
        return self.get_secrets().get(name, "")

    def set_secrets(self, **values: str) -> None:
        """Replace the named secrets (an empty value removes one); the caller saves."""
        current = self.get_secrets()
        for name, value in values.items():
            if value:
                current[name] = value
            else:
                current.pop(name, None)
        self.secrets_encrypted = encrypt_json(current)

    def setting(self, name: str, default=""):
        return (self.settings or {}).get(name, default)

    @property
    def webhook_base_url(self) -> str:
        return f"{django_settings.PUBLIC_BASE_URL}/hooks"


class DeliveryAttempt(TenantOwned):
    """One try at handing an outbound message to its provider; admin shows them all."""

    entry = models.ForeignKey("conversations.TimelineEntry", on_delete=models.CASCADE, related_name="delivery_attempts")
    inbox = models.ForeignKey(Inbox, null=True, on_delete=models.SET_NULL, related_name="+")
    number = models.PositiveIntegerField()
    succeeded = models.BooleanField(default=False)
    permanent_failure = models.BooleanField(default=False)
    provider_id = models.CharField(max_length=255, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_snippet = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["entry", "number"]
        constraints = [models.UniqueConstraint(fields=["entry", "number"], name="delivery_attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of entry {self.entry_id}"


class InboundReceipt(TenantOwned):
    """A verified, parsed inbound webhook, stored before the provider is answered (Twilio SMS and WhatsApp).

    The webhook does one INSERT and answers; a Celery task (or the sweeper, after a broker outage) turns the
    receipt into a timeline message with `message_record_inbound`. Unique per inbox and provider id, so a
    re-delivered webhook finds its receipt and stores nothing more.
    """

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    provider_id = models.CharField(max_length=64)
    # The parsed message (conversations.services.InboundMessage's fields, without received_at).
    message = models.JSONField()
    received_at = models.DateTimeField()
    # Set once the receipt is dealt with: stored as `entry`, found to be a duplicate, or refused (`error`).
    processed_at = models.DateTimeField(null=True, blank=True)
    entry = models.ForeignKey("conversations.TimelineEntry", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inbox", "provider_id"], name="inbound_receipt_unique_provider_id"),
        ]
        indexes = [
            models.Index(fields=["received_at"], condition=models.Q(processed_at__isnull=True),
                         name="inbound_receipt_pending"),
        ]

    def __str__(self) -> str:
        return f"receipt {self.provider_id} of inbox {self.inbox_id}"
