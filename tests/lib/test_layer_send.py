"""Channel-layer sends from sync code outside a server go through one long-lived event loop per process."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from omnidesk.lib import layer_send
from omnidesk.lib.layer_send import group_send_all


def _subscribed(layer, group: str) -> str:
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def test_sync_sends_reach_every_group_in_order_over_one_kept_loop():
    layer = get_channel_layer()
    first, second = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    channel_first, channel_second = _subscribed(layer, first), _subscribed(layer, second)

    group_send_all(layer, [first, second], {"type": "test.event", "n": 1})
    loop = layer_send._loop
    group_send_all(layer, [first], {"type": "test.event", "n": 2})

    assert loop is not None and loop.is_running() and layer_send._loop is loop

    async def received():  # one loop for the receiving side (channels_redis buffers receives per loop)
        return [(await layer.receive(channel_first))["n"], (await layer.receive(channel_first))["n"],
                (await layer.receive(channel_second))["n"]]

    assert async_to_sync(received)() == [1, 2, 1]


def test_inside_a_server_thread_the_servers_own_loop_sends():
    """A sync view under the ASGI server: the coroutine runs on the server's loop, not the kept one."""
    layer = get_channel_layer()
    group = f"test-{uuid.uuid4().hex}"
    channel = _subscribed(layer, group)
    seen = {}

    async def server():
        seen["server_loop"] = asyncio.get_running_loop()

        def view():
            seen["in_server_thread"] = layer_send._in_server_thread()
            group_send_all(layer, [group], {"type": "test.event", "n": 3})

        await sync_to_async(view)()
        return (await layer.receive(channel))["n"]

    assert async_to_sync(server)() == 3
    assert seen["in_server_thread"] is True
    assert seen["server_loop"] is not layer_send._loop


def test_no_groups_sends_nothing():
    group_send_all(get_channel_layer(), [], {"type": "test.event"})  # no loop needed, no error
