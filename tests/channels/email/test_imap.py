from __future__ import annotations

import pytest

from channels_app.adapters.email.imap import imap_poll_all, imap_poll_inbox
from channels_app.adapters.email.tasks import poll_imap_inboxes
from channels_app.models import Channel, Inbox
from conversations.models import TimelineEntry
from tests.channels.email.conftest import free_port
from tests.channels.email.mails import mail
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db


def imap_inbox(tenant, dovecot, folder, *, name="Polled mail", password="imap-pass", port=None):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name=name, address="support@acme.test", settings={
        "imap_host": "127.0.0.1", "imap_port": port or dovecot.port, "imap_username": dovecot.username,
        "imap_use_ssl": False, "imap_folder": folder,
    })
    inbox.set_secrets(imap_password=password)
    inbox.save()
    return inbox


def stored_ids() -> list[str]:
    return list(TimelineEntry.objects.filter(kind="message").order_by("id").values_list("external_id", flat=True))


def test_it_stores_new_messages_and_remembers_the_last_uid(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i1@example.org>").as_bytes())
    dovecot.append(folder, mail(message_id="<i2@example.org>", sender="bob@example.org").as_bytes())
    inbox = imap_inbox(tenant, dovecot, folder)

    result = imap_poll_inbox(inbox_id=inbox.pk)

    assert (result.stored, result.last_uid) == (2, 2)
    assert stored_ids() == ["i1@example.org", "i2@example.org"]
    inbox.refresh_from_db()
    assert inbox.state["imap"] == {"uidvalidity": result.uidvalidity, "last_uid": 2}


def test_a_second_poll_reads_nothing_twice_and_skips_nothing(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i1@example.org>").as_bytes())
    inbox = imap_inbox(tenant, dovecot, folder)
    imap_poll_inbox(inbox_id=inbox.pk)
    dovecot.append(folder, mail(message_id="<i2@example.org>").as_bytes())
    dovecot.append(folder, mail(message_id="<i3@example.org>").as_bytes())

    second = imap_poll_inbox(inbox_id=inbox.pk)
    third = imap_poll_inbox(inbox_id=inbox.pk)

    assert (second.stored, second.last_uid) == (2, 3)
    assert (third.stored, third.last_uid) == (0, 3)
    assert stored_ids() == ["i1@example.org", "i2@example.org", "i3@example.org"]


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i1@example.org>").as_bytes())
    inbox = imap_inbox(tenant, dovecot, folder)
    before = imap_poll_inbox(inbox_id=inbox.pk)
    dovecot.recreate(folder)
    dovecot.append(folder, mail(message_id="<i1@example.org>").as_bytes())
    dovecot.append(folder, mail(message_id="<i4@example.org>").as_bytes())

    after = imap_poll_inbox(inbox_id=inbox.pk)

    assert after.uidvalidity != before.uidvalidity
    assert (after.stored, after.last_uid) == (2, 2)
    assert stored_ids() == ["i1@example.org", "i4@example.org"]
    inbox.refresh_from_db()
    assert inbox.state["imap"] == {"uidvalidity": after.uidvalidity, "last_uid": 2}


def test_an_unreadable_message_is_skipped_and_does_not_block_the_folder(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, b"Subject: no sender\r\n\r\nwho wrote this?\r\n")
    dovecot.append(folder, mail(message_id="<i5@example.org>").as_bytes())
    inbox = imap_inbox(tenant, dovecot, folder)

    result = imap_poll_inbox(inbox_id=inbox.pk)

    assert (result.stored, result.skipped, result.last_uid) == (1, 1, 2)
    assert stored_ids() == ["i5@example.org"]


def test_polling_leaves_messages_unread_on_the_server(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i6@example.org>").as_bytes())
    inbox = imap_inbox(tenant, dovecot, folder)

    imap_poll_inbox(inbox_id=inbox.pk)

    with dovecot.client() as client:
        client.select(folder, readonly=True)
        assert client.uid("SEARCH", None, "UNSEEN") == ("OK", [b"1"])


def test_the_beat_task_polls_every_mailbox(tenant, dovecot, celery_eager, settings):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i8@example.org>").as_bytes())
    imap_inbox(tenant, dovecot, folder)
    InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Webhook only", address="hook@acme.test")

    poll_imap_inboxes.delay()

    assert stored_ids() == ["i8@example.org"]
    assert settings.CELERY_BEAT_SCHEDULE["email-imap-poll"]["task"] == poll_imap_inboxes.name


# Last in this file: after a failed login dovecot slows down logins from 127.0.0.1 for a while.
def test_one_broken_mailbox_does_not_stop_the_others(tenant, dovecot):
    folder = dovecot.new_folder()
    dovecot.append(folder, mail(message_id="<i7@example.org>").as_bytes())
    # Polled in name order. Dovecot slows logins down after a failed one, so the failure goes last.
    working = imap_inbox(tenant, dovecot, folder, name="A working")
    unreachable = imap_inbox(tenant, dovecot, folder, name="B unreachable", port=free_port())
    wrong_password = imap_inbox(tenant, dovecot, folder, name="C wrong password", password="nope")

    outcome = imap_poll_all()

    assert outcome[working.pk] == "stored 1, skipped 0"
    assert outcome[wrong_password.pk].startswith("error: IMAP login refused")
    assert outcome[unreachable.pk].startswith("error:")
    assert stored_ids() == ["i7@example.org"]
    assert Inbox.objects.get(pk=wrong_password.pk).state == {}

