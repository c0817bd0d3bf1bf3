"""Fetching files Twilio holds (MMS and WhatsApp media, call recordings) with the inbox's credentials."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction

from channels_app.adapters.base import AdapterError
from channels_app.adapters.twilio_common.client import twilio_credentials, twilio_timeout, twilio_url
from channels_app.models import Inbox
from conversations.models import Attachment, TimelineEntry
from conversations.services import attachment_store, note_add

logger = logging.getLogger(__name__)

# WhatsApp allows up to 16 MB of media, MMS 5 MB; nothing bigger is kept.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class MediaTransientError(Exception):
    """Twilio could not serve the file now; try again later."""


@dataclass(frozen=True)
class TwilioFile:
    """A file fetched from Twilio; `content` is None when it was over `max_bytes` (and not kept)."""

    content: bytes | None
    content_type: str
    max_bytes: int


class NotTwilioUrl(Exception):
    """The URL is not Twilio's: the inbox's credentials are never sent there."""


def max_media_bytes() -> int:
    return int(getattr(settings, "TWILIO_MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES))


def is_twilio_url(url: str) -> bool:
    # The credentials go only to Twilio, whatever a payload says.
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def twilio_file_fetch(*, url: str, inbox: Inbox) -> TwilioFile:
    """Download a file Twilio holds (MMS/WhatsApp media, call recordings) with the inbox's credentials.

    Raises NotTwilioUrl before any request, MediaTransientError when trying later may work, and a permanent
    AdapterError otherwise (bad credentials, 4xx)."""
    if not is_twilio_url(url):
        raise NotTwilioUrl(f"{url} is not a Twilio URL")
    auth, limit = twilio_credentials(inbox), max_media_bytes()
    try:
        with requests.get(twilio_url(url), auth=auth, timeout=twilio_timeout(), stream=True) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise MediaTransientError(f"Twilio answered {response.status_code} for {url}")
            if response.status_code != 200:
                raise AdapterError(f"Twilio answered {response.status_code} for {url}", permanent=True)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if int(response.headers.get("Content-Length") or 0) > limit:
                return TwilioFile(None, content_type, limit)
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    return TwilioFile(None, content_type, limit)
                chunks.append(chunk)
            return TwilioFile(b"".join(chunks), content_type, limit)
    except requests.RequestException as exc:
        raise MediaTransientError(f"Could not fetch {url}: {exc}") from exc


def _mark(entry: TimelineEntry, index: int, **values: str) -> bool:
    """Record what became of media item `index`; False when it was already recorded (a re-run)."""
    with transaction.atomic():
        locked = TimelineEntry.objects.for_tenant(entry.tenant_id).select_for_update(no_key=True).get(pk=entry.pk)
        item = locked.data["media"][index]
        if item.get("outcome"):
            return False
        item.update(values)
        locked.save(update_fields=["data"])
    return True


def twilio_media_fetch(*, tenant_id: int, entry_id: int, index: int) -> None:
    """Store media item `index` of an inbound message. Safe to run twice: a stored file is not fetched again."""
    entry = (
        TimelineEntry.objects.for_tenant(tenant_id).select_related("tenant", "inbox", "conversation")
        .filter(pk=entry_id).first()
    )
    media = (entry.data.get("media") or []) if entry is not None else []
    if entry is None or index >= len(media) or entry.inbox is None:
        logger.warning("No media %s on entry %s of tenant %s", index, entry_id, tenant_id)
        return
    url = media[index]["url"]
    if Attachment.objects.for_tenant(tenant_id).filter(entry=entry, source_url=url).exists():
        return
    try:
        fetched = twilio_file_fetch(url=url, inbox=entry.inbox)
    except NotTwilioUrl:
        logger.warning("Refusing to fetch media from %s: not a Twilio URL", url)
        _mark(entry, index, outcome="refused")
        return
    except AdapterError as exc:
        logger.warning("Media %s of entry %s not stored: %s", url, entry.pk, exc)
        if _mark(entry, index, outcome="failed") and entry.conversation is not None:
            note_add(tenant=entry.tenant, conversation=entry.conversation, author=None,
                     body=f"A file the customer sent could not be fetched from Twilio ({exc}).")
        return
    limit = fetched.max_bytes
    if fetched.content is None:
        logger.warning("Media %s of entry %s is over %s bytes; not stored", url, entry.pk, limit)
        if _mark(entry, index, outcome="too_large") and entry.conversation is not None:
            note_add(tenant=entry.tenant, conversation=entry.conversation, author=None,
                     body=f"The customer sent a file larger than {limit // (1024 * 1024)} MB; it was not stored. "
                     "Ask them to send it another way.")
        return
    content_type = fetched.content_type or media[index].get("content_type", "")
    extension = mimetypes.guess_extension(content_type) or ""
    filename = f"{urlsplit(url).path.rstrip('/').rsplit('/', 1)[-1] or 'media'}{extension}"
    attachment_store(tenant=entry.tenant, entry=entry, filename=filename, content=fetched.content,
                     content_type=content_type, source_url=url)
