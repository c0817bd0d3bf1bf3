"""bench/load_senders.py against a tiny local HTTP server: every index is sent once, on schedule, over at most one
keep-alive connection per sender, and answers outside 2xx count as errors."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import load_senders  # noqa: E402


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the webhooks answer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, int(body), self.client_address))
        status = 500 if self.path.endswith("/fail/") else 200
        answer = b"broken" if status == 500 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def every_fifth_fails(run_id: str, index: int) -> tuple[str, bytes, dict[str, str]]:
    path = "/fail/" if index % 5 == 0 else "/ok/"
    return path, str(index).encode(), {"Content-Type": "text/plain"}


def test_a_scheduled_run_sends_each_index_once_and_counts_non_2xx_as_errors(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/prefix"

    result = load_senders.send_load(every_fifth_fails, url=url, count=20, rate=100.0, concurrency=3)

    assert sorted(index for _, index, _ in server.received) == list(range(20))
    assert {path for path, _, _ in server.received} == {"/prefix/ok/", "/prefix/fail/"}
    assert len({client for _, _, client in server.received}) <= 3
    assert (result["sent"], result["errors"]) == (20, 4)
    assert result["error_kinds"] == ["HTTP 500 broken"]
    # The last of 20 slots at 100/s starts 0.19 s after the first.
    assert result["seconds"] >= 0.19

