"""Django's ASGI handler with the synchronous middleware chain: one thread hop per request.

Every view here is synchronous. Django's own ASGI handler builds an async middleware chain, in which each
middleware's process_request/process_response (MiddlewareMixin) and the sync-only middlewares (WhiteNoise,
the tenant middleware) each hop between the event loop and the sync thread, and the view hops once more.
Under uvicorn that was ~4.2 ms of CPU per Twilio webhook against ~1.6 ms for the same request through the
test client (bench/README.md). Here the whole chain and the view run in one sync_to_async call on the
thread where Django's sync code always runs (thread_sensitive), as under WSGI. Websockets are untouched
(Channels' consumers), and an async view would still work: Django's sync chain runs it with async_to_sync.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
