from __future__ import annotations

import secrets

from django.db import models

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
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "inboxes"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="inbox_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"
