"""Files on API-channel replies: links in the signed JSON, which the receiver downloads without a session."""

from __future__ import annotations

import time

import pytest

from channels_app.models import Channel
from channels_app.services import message_deliver, reply_send
from conversations.services import InboundMessage, OutgoingFile, message_record_inbound

pytestmark = pytest.mark.django_db


def customer_writes(tenant, inbox):
    inbound = InboundMessage(channel=Channel.API, sender_kind="external", sender_value="u-42", body="Hi",
                             external_id="m-1", data={"from": "u-42"})
    return message_record_inbound(tenant=tenant, inbox=inbox, message=inbound).conversation


def test_the_json_lists_each_file_with_a_signed_link_that_works_for_days(client, tenant, agent, api_inbox, receiver, media_root):
    conversation = customer_writes(tenant, api_inbox)
    file = OutgoingFile(name="label.png", content=b"\x89PNG label", content_type="image/png")
    entry = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.API, body="Label",
                       files=[file])

    message_deliver(entry_id=entry.pk)

    [attachment] = receiver.requests[0].json()["attachments"]
    assert {k: attachment[k] for k in ("filename", "content_type", "size")} == {
        "filename": "label.png", "content_type": "image/png", "size": 10,
    }
    assert attachment["expires_at"] > time.time() + 6 * 24 * 3600
    fetched = client.get(attachment["url"].removeprefix("http://testserver"))
    assert b"".join(fetched.streaming_content) == b"\x89PNG label"
