from __future__ import annotations

import secrets
import uuid

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

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
    """A verified inbound webhook, stored before the provider is answered (Twilio SMS and WhatsApp, e-mail).

    The webhook does one INSERT and answers; a Celery task (or the sweeper, after a broker outage) has the
    inbox's adapter turn the receipt into timeline rows (`channels_app.receipts`). Unique per inbox and
    provider id (Twilio's MessageSid, the mail's Message-ID), so a re-delivered webhook finds its receipt and
    stores nothing more.
    """

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    provider_id = models.CharField(max_length=64)
    # What the webhook parsed: Twilio's message (conversations.services.InboundMessage's fields, without
    # received_at); for an e-mail only its From, Subject and Message-ID, for people looking at receipts.
    message = models.JSONField()
    # The request body, when the worker parses it (an e-mail: the message exactly as it arrived).
    raw = models.BinaryField(null=True, blank=True)
    received_at = models.DateTimeField()
    # Set once the receipt is dealt with: stored as `entry`, found to be a duplicate, or refused (`error`).
    processed_at = models.DateTimeField(null=True, blank=True)
    entry = models.ForeignKey("conversations.TimelineEntry", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    # What storing it did (channels_app.receipts.ReceiptOutcome: "stored", "duplicate", "bounce"…, or
    # "refused" with the reason in `error`).
    outcome = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inbox", "provider_id"], name="inbound_receipt_unique_provider_id"),
        ]
        indexes = [
            # In the pump's order (oldest first, id breaking ties), so taking the next receipt reads one entry
            # instead of sorting the whole backlog (6.5 ms a receipt with 1,500 pending).
            models.Index(fields=["received_at", "id"], condition=models.Q(processed_at__isnull=True),
                         name="inbound_receipt_pending_order"),
        ]

    def __str__(self) -> str:
        return f"receipt {self.provider_id} of inbox {self.inbox_id}"


class WebhookEvent(models.TextChoices):
    """What an outgoing webhook can subscribe to (the public names; domain events map onto them)."""

    CONVERSATION_CREATED = "conversation.created", "Conversation created"
    CONVERSATION_UPDATED = "conversation.updated", "Conversation updated"
    CONVERSATION_STATUS_CHANGED = "conversation.status_changed", "Conversation status changed"
    CONVERSATION_ASSIGNED = "conversation.assigned", "Conversation assigned"
    MESSAGE_CREATED = "message.created", "Message created"
    CUSTOMER_CREATED = "customer.created", "Customer created"
    CUSTOMER_MERGED = "customer.merged", "Customers merged"
    SLA_AT_RISK = "sla.at_risk", "SLA at risk"
    SLA_BREACHED = "sla.breached", "SLA breached"
    CSAT_RECEIVED = "csat.received", "CSAT received"


def validate_webhook_events(value) -> None:
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = sorted({str(v) for v in value} - set(WebhookEvent.values))
    if unknown:
        raise ValidationError(f"Unknown webhook events: {', '.join(unknown)}.")


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(TenantOwned):
    """A URL that receives signed JSON POSTs for the events it subscribes to.

    The signing secret is Fernet-encrypted like inbox secrets; admin shows it in full once, after creation.
    """

    url = models.URLField(max_length=1000, help_text="http(s) URL the events are POSTed to.")
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(
        default=list, validators=[validate_webhook_events], help_text="Webhook event names, a subset of WebhookEvent."
    )
    secret_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=500, blank=True, editable=False)
    # Failed attempts since the last success, and when the first of them happened.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "url"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_sub_tenant_active")]

    def __str__(self) -> str:
        return self.description or self.url

    def get_secret(self) -> str:
        return decrypt_json(self.secret_encrypted).get("secret", "")

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = encrypt_json({"secret": value})

    def wants(self, event: str) -> bool:
        return event in (self.events or ())


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantOwned):
    """One event for one subscription: stored before anything is sent, the same body and id on every attempt."""

    uuid = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    # The exact JSON sent (signatures cover these bytes, so they are kept rather than re-serialized).
    body = models.TextField()
    status = models.CharField(max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Automatic retries stop after this moment; null for a resend from admin, which is tried once.
    retry_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_delivery_due"),
            models.Index(fields=["updated_at"], condition=models.Q(status="sending"), name="webhook_delivery_sending"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.uuid}"


class WebhookAttempt(TenantOwned):
    """One POST of a delivery: what the receiver answered (or why it could not be reached) and how fast."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_snippet = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
