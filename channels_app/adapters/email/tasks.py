from __future__ import annotations

from celery import shared_task

from channels_app.adapters.email import imap


@shared_task(ignore_result=True)
def poll_imap_inboxes() -> None:
    """Beat: one task per mailbox, so a slow or broken server holds up nobody else."""
    for inbox_id in imap.imap_inbox_ids():
        poll_imap_inbox.delay(inbox_id)


@shared_task(ignore_result=True, acks_late=True)
def poll_imap_inbox(inbox_id: int) -> str:
    return imap.imap_poll_logged(inbox_id=inbox_id)
