from __future__ import annotations

import pytest

from channels_app.models import Channel
from conversations.services import ConversationError, InboundMessage, attachment_store, message_record_inbound


@pytest.fixture
def inbound_entry(tenant, sms_inbox):
    message = InboundMessage(channel=Channel.SMS, sender_kind="phone", sender_value="+12025550143", body="photo", external_id="MM1")
    return message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).entry


def test_it_stores_the_file_through_the_storage_api(inbound_entry, tenant, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    attachment = attachment_store(
        tenant=tenant, entry=inbound_entry, filename="../../etc/receipt photo.jpg", content=b"\xff\xd8jpeg", content_type="image/jpeg"
    )

    assert attachment.size == 6
    assert attachment.filename == "receipt_photo.jpg"
    assert attachment.file.read() == b"\xff\xd8jpeg"
    assert attachment.file.path.startswith(str(tmp_path / "attachments" / str(tenant.pk)))


def test_it_refuses_an_entry_of_another_tenant(inbound_entry, other_tenant, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    with pytest.raises(ConversationError):
        attachment_store(tenant=other_tenant, entry=inbound_entry, filename="x.txt", content=b"x")
