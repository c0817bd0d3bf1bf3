"""A fake Twilio REST API on loopback, and helpers to sign webhooks the way Twilio does."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

from channels_app.models import Channel
from tests.factories import InboxFactory

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "test-auth-token-acme"


class FakeTwilio:
    """Records every request; answers scripted responses in order, then 201 with a fresh SID."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: deque[tuple] = deque()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, *steps: tuple) -> None:
        """("created",) | ("error", status, code, message) | ("hang", seconds)"""
        self.script.extend(steps)

    def creates(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/Messages.json")]

    def accepted(self) -> list[dict]:
        return [r for r in self.creates() if r["answered"] == 201]

    def calls(self) -> list[dict]:
        """Calls.create requests (outbound voice calls)."""
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/Calls.json")]


def _handler(fake: FakeTwilio):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self, form: dict) -> dict:
            record = {"method": self.command, "path": self.path, "form": form,
                      "authorization": self.headers.get("Authorization", ""), "answered": None}
            with fake.lock:
                fake.requests.append(record)
                step = fake.script.popleft() if fake.script else ("created",)
            return record | {"step": step}, record

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            info, record = self._record(form)
            step = info["step"]
            if step[0] == "hang":
                time.sleep(step[1])
                return
            if step[0] == "error":
                record["answered"] = step[1]
                body = {"code": step[2], "message": step[3], "status": step[1], "more_info": ""}
                self._send(step[1], json.dumps(body).encode())
                return
            record["answered"] = 201
            if self.path.split("?")[0].endswith("/Calls.json"):
                call = {"sid": "CA" + uuid.uuid4().hex, "status": "queued", "to": form.get("To"), "from": form.get("From")}
                self._send(201, json.dumps(call).encode())
                return
            sid = "SM" + uuid.uuid4().hex
            self._send(201, json.dumps({"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")}).encode())

        def do_GET(self) -> None:
            record = {"method": "GET", "path": self.path, "form": {},
                      "authorization": self.headers.get("Authorization", ""), "answered": None}
            with fake.lock:
                fake.requests.append(record)
                step = fake.script.popleft() if fake.script else ("created",)
            if step[0] == "error":
                record["answered"] = step[1]
                self._send(step[1], b"{}")
                return
            content, content_type = fake.media.get(self.path, (b"", ""))
            record["answered"] = 200 if content_type else 404
            self._send(record["answered"], content, content_type or "application/json")

    return Handler


@pytest.fixture(autouse=True)
def inbox_cache_cleared():
    """Webhooks remember inboxes for a few seconds; no test sees another test's."""
    from channels_app.inbound import inbox_cache_clear

    inbox_cache_clear()
    yield
    inbox_cache_clear()


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    yield fake
    server.shutdown()
    server.server_close()


def twilio_inbox(tenant, channel: str = Channel.SMS, address: str = "+15550100000", token: str = AUTH_TOKEN, **kw):
    inbox = InboxFactory(tenant=tenant, channel=channel, name=f"Twilio {channel} {address}", address=address,
                         settings={"account_sid": ACCOUNT_SID, "from_number": address}, **kw)
    inbox.set_secrets(twilio_auth_token=token)
    inbox.save()
    return inbox


def message_sid() -> str:
    return "SM" + uuid.uuid4().hex


def sign(url: str, form: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def worker_stores_receipts() -> None:
    """What the ingest task does after a message webhook answered: store the pending receipts' messages."""
    from datetime import timedelta

    from channels_app.receipts import receipts_sweep

    receipts_sweep(older_than=timedelta(0))


def post_signed(client, path: str, form: dict, *, token: str = AUTH_TOKEN, base: str = "http://testserver"):
    """A signed webhook, then the worker's part (the webhook stores only a receipt)."""
    response = client.post(path, data=form, HTTP_X_TWILIO_SIGNATURE=sign(base + path, form, token))
    worker_stores_receipts()
    return response


def inbound_form(**fields) -> dict:
    form = {"MessageSid": message_sid(), "AccountSid": ACCOUNT_SID, "From": "+12025550143",
            "To": "+15550100000", "Body": "Hello, my order is late", "NumMedia": "0"}
    form.update(fields)
    return form


def customer_writes(client, inbox, **fields):
    """A signed inbound message to `inbox`; returns the stored timeline entry."""
    from conversations.models import TimelineEntry

    form = inbound_form(**fields)
    response = post_signed(client, f"/hooks/twilio/{inbox.key}/messages/", form)
    assert response.status_code == 200, response.content
    return TimelineEntry.objects.get(tenant=inbox.tenant, inbox=inbox, external_id=form["MessageSid"])
