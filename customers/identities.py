"""Normalization of customer addresses, so the same person is recognised on every channel."""

from __future__ import annotations

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customers.models import IdentityKind


class InvalidIdentity(ValidationError):
    """The address cannot belong to anyone; nothing was stored."""


_WHATSAPP_PREFIX = re.compile(r"^whatsapp:", re.IGNORECASE)
_HANDLE = re.compile(r"^[a-z0-9_.-]+:@?[\w.\-]{1,100}$")


def normalize_phone(raw: str, *, region: str) -> str:
    text = (raw or "").strip()
    if not text:
        raise InvalidIdentity("A phone number is required.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"{text!r} is not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentity(f"{text!r} is not a valid phone number for region {region}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    text = (raw or "").strip().lower()
    # "Jane Doe <jane@example.com>" is how mail headers carry addresses.
    match = re.fullmatch(r".*<([^<>]+)>", text)
    if match:
        text = match.group(1).strip()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    try:
        validate_email(text)
    except ValidationError as exc:
        raise InvalidIdentity(f"{raw!r} is not a valid e-mail address.") from exc
    return text


def normalize_identity(kind: str, raw: str, *, region: str) -> str:
    """Return the stored form of an address or raise InvalidIdentity with a reason."""
    if kind == IdentityKind.PHONE:
        return normalize_phone(raw, region=region)
    if kind == IdentityKind.WHATSAPP:
        return normalize_phone(_WHATSAPP_PREFIX.sub("", (raw or "").strip()), region=region)
    if kind == IdentityKind.EMAIL:
        return normalize_email(raw)
    if kind == IdentityKind.CHAT_VISITOR:
        text = (raw or "").strip()
        if not text or len(text) > 128 or any(ch.isspace() for ch in text):
            raise InvalidIdentity("A chat visitor id is 1–128 characters without spaces.")
        return text
    if kind == IdentityKind.EXTERNAL:
        text = (raw or "").strip()
        if not text or len(text) > 255:
            raise InvalidIdentity("An external customer id is 1–255 characters.")
        return text
    if kind == IdentityKind.SOCIAL:
        text = (raw or "").strip().lower()
        if not _HANDLE.fullmatch(text):
            raise InvalidIdentity(f"{raw!r} is not a social handle; write it as network:handle, e.g. x:@jane.")
        network, handle = text.split(":", 1)
        return f"{network}:{handle.lstrip('@')}"
    raise InvalidIdentity(f"{kind!r} is not a kind of identity ({', '.join(IdentityKind.values)}).")
