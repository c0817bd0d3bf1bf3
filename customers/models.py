from __future__ import annotations

import zoneinfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper

from omnidesk.lib.tenancy import TenantOwned


def validate_region(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a country code phone numbers know (e.g. US, GB, DE).")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin).")


class Tenant(models.Model):
    """A company using Omnidesk. Everything else hangs off one of these."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    default_region = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_region],
        help_text="Country assumed for phone numbers written without +country code (ISO 3166, e.g. US).",
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    reopen_window_days = models.PositiveIntegerField(
        default=7,
        help_text="A resolved conversation reopens when the customer writes again within this many days.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.AGENT: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


class Membership(TenantOwned):
    """A user's seat in a tenant; the role decides what they may do there."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    display_name = models.CharField(max_length=150, blank=True)
    # Shown to customers beside the agent's replies on web chat (initials when empty).
    avatar_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]
        ordering = ["tenant", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.tenant}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]

    @property
    def name(self) -> str:
        return self.display_name or self.user.get_full_name() or self.user.email or self.user.username


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    VIP = "vip", "VIP"


class Customer(TenantOwned):
    name = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    language = models.CharField(max_length=16, blank=True, help_text="BCP 47 tag, e.g. en, de, pt-BR.")
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    attributes = models.JSONField(default=dict, blank=True)
    # A merged-away customer keeps its row (so old references and the audit log still resolve)
    # and points at the survivor; it owns nothing any more.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_customers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "merged_into", "-created_at"], name="customer_tenant_list"),
            # Possible duplicates by name (case-insensitive) on every conversation page.
            models.Index(F("tenant"), Upper("name"), name="customer_tenant_upper_name"),
        ]

    def __str__(self) -> str:
        return self.name or f"Customer {self.pk}"


class IdentityKind(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "E-mail"
    WHATSAPP = "whatsapp", "WhatsApp"
    CHAT_VISITOR = "chat_visitor", "Chat visitor"
    SOCIAL = "social", "Social handle"
    EXTERNAL = "external", "External id (API)"


class Identity(TenantOwned):
    """One address a customer reaches us from, stored normalized (E.164, lower-cased e-mail)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    value = models.CharField(max_length=320)
    # Set when the customer sent STOP (SMS/WhatsApp); nothing is sent to an opted-out address.
    opted_out_at = models.DateTimeField(null=True, blank=True)
    # Set when the address was proven (a site's HMAC-signed user id on web chat): a customer holding a
    # verified identity never absorbs an unproven claim of one of its addresses.
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "value"], name="identity_unique_per_tenant")
        ]
        indexes = [models.Index(fields=["tenant", "value"], name="identity_tenant_value")]
        ordering = ["kind", "value"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class ChatVisitor(TenantOwned):
    """A web-chat visitor of one chat inbox: what they told us and what they have read.

    The visitor's bearer token lives in their browser only; `identity` (kind chat_visitor) stores its
    SHA-256, so the table never holds a usable token. The identity follows its customer through merges.
    """

    identity = models.OneToOneField(Identity, on_delete=models.CASCADE, related_name="chat_visitor")
    inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.CASCADE, related_name="+")
    # What the visitor typed (pre-chat form, identify()); shown back to them, never another customer's data.
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=320, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    # The site's user id, when it came with a valid HMAC of the inbox's identity secret.
    verified_user_id = models.CharField(max_length=255, blank=True)
    # The newest agent message (timeline entry id) the visitor has read; later ones are unread.
    last_read_entry_id = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "inbox"], name="chat_visitor_tenant_inbox")]

    def __str__(self) -> str:
        return self.name or self.email or f"Visitor {self.pk}"


class AuditLog(TenantOwned):
    """Who did what sensitive thing, when. Append-only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[a-z_]+\.[a-z_]+$")],
        help_text="e.g. customer.merge, membership.role_change, object.delete, data.export",
    )
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}#{self.target_id}"


class TenantCounter(TenantOwned):
    """Per-tenant sequences (conversation numbers); incremented atomically in SQL."""

    name = models.CharField(max_length=32)
    value = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tenant_counter_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.name}={self.value}"


class ApiToken(TenantOwned):
    """A person's key to the REST API in one tenant. Only its SHA-256 is stored; the key is shown once.

    The token's membership decides the tenant and the role of every request made with it."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'CRM sync'.")
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
