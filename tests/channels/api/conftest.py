"""A real HTTP receiver on loopback for outbound deliveries, and signed posting helpers for inbound."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from channels_app.models import Channel
from tests.factories import InboxFactory

SECRET = "api-inbox-secret-0123456789"


def sign(secret: str, body: bytes) -> str:
    """Written out independently of the app's signing module, so a bug there shows up here."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(client, inbox, payload, *, secret: str = SECRET, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers.setdefault("HTTP_X_OMNIDESK_SIGNATURE", sign(secret, body))
    return client.post(f"/hooks/api/{inbox.key}/messages/", data=body, content_type="application/json", **headers)


def message(external_id: str = "m-1", identifier: str = "u-42", text: str = "Hello from the bot", **extra) -> dict:
    customer = {"identifier": identifier, **extra.pop("customer", {})}
    return {"external_id": external_id, "customer": customer, "text": text, **extra}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every POST and answers from a script: (status, body, delay) per request, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: deque[tuple[int, bytes, float]] = deque()
        self._lock = threading.Lock()
        self.url = ""

    def answer(self, status: int, body: bytes = b"{}", delay: float = 0.0) -> None:
        self._answers.append((status, body, delay))

    def next_answer(self) -> tuple[int, bytes, float]:
        with self._lock:
            return self._answers.popleft() if self._answers else (200, b"{}", 0.0)

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    @property
    def successes(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        receiver: Receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content, delay = receiver.next_answer()
        receiver.record(Received(self.path, dict(self.headers.items()), body, status))
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (timeout tests)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.receiver = Receiver()
    server.receiver.url = f"http://127.0.0.1:{server.server_address[1]}/omnidesk/events"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server.receiver
    server.shutdown()
    server.server_close()


def make_api_inbox(tenant, *, name: str = "Bot bridge", secret: str = SECRET, outbound_url: str = ""):
    inbox = InboxFactory.build(tenant=tenant, channel=Channel.API, name=name, settings={"outbound_url": outbound_url})
    inbox.set_secrets(secret=secret)
    inbox.save()
    return inbox


@pytest.fixture
def api_inbox(tenant, receiver):
    return make_api_inbox(tenant, outbound_url=receiver.url)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path
