"""The chat inbox's settings as admin form fields (channels_app/admin.py mixes these into the inbox form), the
identity secret generated and shown once, and the embed code."""

from __future__ import annotations

import secrets

from django import forms
from django.conf import settings as django_settings
from django.utils.html import format_html

from channels_app.adapters.web_chat import config
from channels_app.models import Channel, Inbox

PRECHAT_CHOICES = [(name, config.PRECHAT_LABELS[name]) for name in config.PRECHAT_FIELDS]
CHAT_FIELDS = (
    "chat_allowed_origins", "chat_title", "chat_greeting", "chat_color", "chat_offline_message",
    "chat_prechat_enabled", "chat_prechat_fields", "chat_prechat_required",
)
# form field -> Inbox.settings key
_SETTING_OF = {
    "chat_title": "title", "chat_greeting": "greeting", "chat_color": "color", "chat_offline_message": "offline_message",
    "chat_prechat_enabled": "prechat_enabled", "chat_prechat_fields": "prechat_fields",
    "chat_prechat_required": "prechat_required",
}


def identity_secret_new() -> str:
    return "chatid_" + secrets.token_urlsafe(32)


def embed_code(inbox: Inbox) -> str:
    return f'<script src="{django_settings.PUBLIC_BASE_URL}/widget/{inbox.key}.js" async></script>'


class ChatInboxFields(forms.Form):
    """Mixed into the inbox's admin form; only chat inboxes read or write these."""

    chat_allowed_origins = forms.CharField(
        required=False, label="Allowed origins", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sites that may show this chat, one per line (https://shop.example). The Omnidesk site itself "
                  "is always allowed; any other site is refused.",
    )
    chat_title = forms.CharField(required=False, max_length=100, label="Title",
                                 help_text=f"Default: {config.DEFAULT_TITLE}")
    chat_greeting = forms.CharField(required=False, max_length=500, label="Greeting",
                                    help_text=f"Default: {config.DEFAULT_GREETING}")
    chat_color = forms.RegexField(required=False, regex=r"^#[0-9A-Fa-f]{6}$", label="Colour",
                                  help_text=f"#RRGGBB; default {config.DEFAULT_COLOR}")
    chat_offline_message = forms.CharField(
        required=False, max_length=500, label="Offline message", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown when no agent is online, above the form whose messages agents answer by e-mail.",
    )
    chat_prechat_enabled = forms.BooleanField(required=False, label="Pre-chat form",
                                              help_text="Ask visitors who they are before they chat.")
    chat_prechat_fields = forms.MultipleChoiceField(
        required=False, choices=PRECHAT_CHOICES, widget=forms.CheckboxSelectMultiple, label="Pre-chat asks for",
    )
    chat_prechat_required = forms.MultipleChoiceField(
        required=False, choices=PRECHAT_CHOICES, widget=forms.CheckboxSelectMultiple, label="Pre-chat requires",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        if instance is None or instance.channel != Channel.CHAT:
            return
        stored = instance.settings or {}
        self.initial.setdefault("chat_allowed_origins", "\n".join(stored.get("allowed_origins") or []))
        for field, key in _SETTING_OF.items():
            if key in stored:
                self.initial.setdefault(field, stored[key])

    def clean_chat_allowed_origins(self) -> list[str]:
        origins = []
        for line in self.cleaned_data.get("chat_allowed_origins", "").split():
            origin = config.origin_of(line)
            if not origin or origin != line.strip().lower().rstrip("/"):
                raise forms.ValidationError(
                    f"{line!r} is not an origin: write the scheme and host only, like https://shop.example."
                )
            origins.append(origin)
        return sorted(set(origins))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("channel") != Channel.CHAT:
            return cleaned
        settings = dict(cleaned.get("settings") or {})
        settings["allowed_origins"] = cleaned.get("chat_allowed_origins") or []
        for field, key in _SETTING_OF.items():
            value = cleaned.get(field)
            if value in ("", None, []) and field != "chat_prechat_enabled":
                settings.pop(key, None)
            else:
                settings[key] = list(value) if isinstance(value, (list, tuple)) else value
        cleaned["settings"] = settings
        return cleaned


def chat_fieldsets(fieldsets, obj: Inbox | None):
    """The chat fields in a fieldset of their own, shown for chat inboxes (and when adding one)."""
    chat = set(CHAT_FIELDS) | {"embed_code"}
    trimmed = [(name, {**opts, "fields": [f for f in opts["fields"] if f not in chat]}) for name, opts in fieldsets]
    if obj is not None and obj.channel != Channel.CHAT:
        return trimmed
    return [*trimmed, ("Web chat", {"fields": [*CHAT_FIELDS, "embed_code"],
                                    "description": "Only for web-chat inboxes."})]


def embed_code_html(inbox: Inbox) -> str:
    if not inbox.pk:
        return "Shown after saving."
    if inbox.channel != Channel.CHAT:
        return "—"
    return format_html("<code>{}</code>", embed_code(inbox))
