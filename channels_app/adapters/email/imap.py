"""Polling a mailbox over IMAP, remembering where we stopped.

`inbox.state["imap"]` holds the folder's UIDVALIDITY and the last UID stored. A UID is remembered only
after its message committed, so a crash re-reads at most one message, which storage recognises by
its Message-ID. A new UIDVALIDITY (the folder was recreated) starts from the beginning for the same
reason. The folder is opened read-only and fetched with BODY.PEEK, so nothing is marked read.
"""

from __future__ import annotations

import imaplib
import logging
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction

from channels_app.adapters.base import MalformedInbound
from channels_app.adapters.email.services import email_receive
from channels_app.models import Channel, Inbox
from customers.identities import InvalidIdentity

logger = logging.getLogger(__name__)

# Messages per poll; the next poll carries on, so a full mailbox on first connection cannot stall a worker.
BATCH_SIZE = 200
IMAP_TIMEOUT_SECONDS = 30
# Advisory-lock namespace, so two overlapping polls of one inbox do not both fetch.
_LOCK_NAMESPACE = 0x1A4D


class ImapError(Exception):
    pass


@dataclass(frozen=True)
class PollResult:
    stored: int = 0
    skipped: int = 0
    last_uid: int = 0
    uidvalidity: int = 0
    busy: bool = False


def _check(response: tuple, what: str) -> list:
    status, data = response
    if status != "OK":
        raise ImapError(f"IMAP {what} failed: {data!r}")
    return data


def _connect(inbox: Inbox) -> imaplib.IMAP4:
    host = inbox.setting("imap_host")
    use_ssl = bool(inbox.setting("imap_use_ssl", True))
    port = int(inbox.setting("imap_port", 993 if use_ssl else 143))
    client_class = imaplib.IMAP4_SSL if use_ssl else imaplib.IMAP4
    client = client_class(host, port, timeout=IMAP_TIMEOUT_SECONDS)
    try:
        _check(client.login(inbox.setting("imap_username"), inbox.get_secret("imap_password")), "LOGIN")
    except imaplib.IMAP4.error as exc:
        client.shutdown()
        raise ImapError(f"IMAP login refused: {exc}") from exc
    return client


def _uidvalidity(client: imaplib.IMAP4) -> int:
    _, data = client.response("UIDVALIDITY")
    if not data or data[0] is None:
        raise ImapError("The server did not say the folder's UIDVALIDITY.")
    return int(data[0])


def _uids_after(client: imaplib.IMAP4, last_uid: int) -> list[int]:
    data = _check(client.uid("SEARCH", None, f"UID {last_uid + 1}:*"), "UID SEARCH")
    # "n:*" always matches the highest UID, even one below n: filter.
    return sorted(uid for uid in (int(x) for x in (data[0] or b"").split()) if uid > last_uid)


def _fetch(client: imaplib.IMAP4, uid: int) -> bytes | None:
    data = _check(client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    return None  # expunged between SEARCH and FETCH


def _remember(inbox: Inbox, uidvalidity: int, last_uid: int) -> None:
    with transaction.atomic():
        locked = Inbox.objects.select_for_update(no_key=True).get(pk=inbox.pk)
        locked.state = {**locked.state, "imap": {"uidvalidity": uidvalidity, "last_uid": last_uid}}
        locked.save(update_fields=["state"])
    inbox.state = locked.state


def _try_lock(inbox_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, inbox_id])
        return bool(cursor.fetchone()[0])


def _unlock(inbox_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, inbox_id])


def imap_poll_inbox(*, inbox_id: int) -> PollResult:
    """Store the folder's new messages. Raises ImapError / OSError when the server cannot be read."""
    inbox = Inbox.objects.select_related("tenant").get(pk=inbox_id, channel=Channel.EMAIL)
    if not inbox.is_active or not inbox.setting("imap_host"):
        return PollResult()
    if not _try_lock(inbox.pk):
        return PollResult(busy=True)
    try:
        return _poll(inbox)
    finally:
        _unlock(inbox.pk)


def _poll(inbox: Inbox) -> PollResult:
    client = _connect(inbox)
    stored = skipped = 0
    try:
        _check(client.select(_quoted(inbox.setting("imap_folder") or "INBOX"), readonly=True), "SELECT")
        uidvalidity = _uidvalidity(client)
        remembered = inbox.state.get("imap", {})
        last_uid = int(remembered.get("last_uid", 0)) if remembered.get("uidvalidity") == uidvalidity else 0
        if remembered and remembered.get("uidvalidity") != uidvalidity:
            logger.warning("Inbox %s: UIDVALIDITY changed (%s -> %s); reading the folder again",
                           inbox.pk, remembered.get("uidvalidity"), uidvalidity)
        for uid in _uids_after(client, last_uid)[:BATCH_SIZE]:
            raw = _fetch(client, uid)
            if raw:
                try:
                    email_receive(inbox=inbox, raw=raw)
                    stored += 1
                except (MalformedInbound, InvalidIdentity) as exc:
                    # It will never get better; remember it was seen so it does not block the folder.
                    logger.warning("Inbox %s: skipped IMAP UID %s: %s", inbox.pk, uid, exc)
                    skipped += 1
            _remember(inbox, uidvalidity, uid)
            last_uid = uid
        if not remembered or remembered.get("uidvalidity") != uidvalidity:
            _remember(inbox, uidvalidity, last_uid)
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return PollResult(stored=stored, skipped=skipped, last_uid=last_uid, uidvalidity=uidvalidity)


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_inbox_ids() -> list[int]:
    """Every active e-mail inbox with a mailbox to poll, across tenants (beat's job is system-wide)."""
    return list(
        Inbox.objects.filter(channel=Channel.EMAIL, is_active=True, settings__has_key="imap_host")
        .exclude(settings__imap_host="").values_list("pk", flat=True)
    )


def imap_poll_logged(*, inbox_id: int) -> str:
    """Poll one inbox; a broken mailbox or server is logged (the next beat tick tries again), never raised."""
    try:
        result = imap_poll_inbox(inbox_id=inbox_id)
    except (ImapError, imaplib.IMAP4.error, OSError, DatabaseError, Inbox.DoesNotExist) as exc:
        logger.error("IMAP poll of inbox %s failed: %s", inbox_id, exc)
        return f"error: {exc}"
    return "busy" if result.busy else f"stored {result.stored}, skipped {result.skipped}"


def imap_poll_all() -> dict[int, str]:
    """Poll every inbox in turn; one broken mailbox does not stop the others."""
    return {inbox_id: imap_poll_logged(inbox_id=inbox_id) for inbox_id in imap_inbox_ids()}
