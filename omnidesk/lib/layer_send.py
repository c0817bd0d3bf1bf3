"""Channel-layer group sends from sync code, cheap outside a server too.

Inside the ASGI server a sync view runs in a thread of the server's event loop, and `async_to_sync` hands the
coroutine to that loop. Outside one (Celery workers, management commands) `async_to_sync` starts a new event
loop for every call, and channels_redis opens a new Redis connection per loop: that cost a worker ~6 ms per
message. There, the sends go to one event loop kept in a daemon thread for the life of the process (started
lazily, again after a fork), so channels_redis keeps its connections.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable

from asgiref.sync import SyncToAsync, async_to_sync

# A send that cannot finish in this time (Redis hanging) is given up: live updates are best effort, the
# caller's work is already committed.
SEND_TIMEOUT_SECONDS = 10

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _in_server_thread() -> bool:
    """True in a sync thread of a running ASGI server (asgiref's sync_to_async marks it with its loop)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return (
        loop is not None and loop.is_running()
        and getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid()
    )


def _process_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked child (prefork worker) needs its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-sends", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


async def _send_all(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)


def group_send_all(layer, groups: Iterable[str], message: dict) -> None:
    """Send one message to each group, in order; raises what the layer raises (or TimeoutError)."""
    groups = list(groups)
    if not groups:
        return
    if _in_server_thread():
        async_to_sync(_send_all)(layer, groups, message)
        return
    future = asyncio.run_coroutine_threadsafe(_send_all(layer, groups, message), _process_loop())
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        raise
