"""The load loop of the ingest benches (twilio_ingest.py, channel_ingest.py): C concurrent senders, each on one
keep-alive connection, POST `count` requests on a schedule of `rate` requests per second in all, and the run is
summed up as throughput and latency percentiles.

Standard library only, so the senders run from any Python without the project's virtualenv.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

# (run id, index) -> (path below the URL's own path, body, headers)
RequestMaker = Callable[[str, int], tuple[str, bytes, dict[str, str]]]


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class _LoadRun:
    def __init__(self, make_request: RequestMaker, url: str, count: int, rate: float) -> None:
        self.make_request = make_request
        self.target = urlsplit(url)
        self.prefix = self.target.path.rstrip("/")
        self.count = count
        self.rate = rate
        self.run_id = uuid.uuid4().hex[:8]
        self.next_index = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.max_lag = 0.0
        self.started = 0.0

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= self.count:
                return None
            self.next_index += 1
            return self.next_index - 1

    def connect(self) -> http.client.HTTPConnection:
        https = self.target.scheme == "https"
        connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        return connection_class(self.target.hostname, self.target.port, timeout=30)

    def sender(self) -> None:
        connection = self.connect()
        while (index := self.take()) is not None:
            # Each index has its slot on the schedule; a sender that is late sends at once and the lag is kept,
            # since latencies measured behind a backlog include queueing.
            lag = time.perf_counter() - (self.started + index / self.rate) if self.rate else 0.0
            if lag < 0:
                time.sleep(-lag)
            path, body, headers = self.make_request(self.run_id, index)
            began = time.perf_counter()
            try:
                connection.request("POST", self.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = self.connect()
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            else:
                detail = f"HTTP {status} {answer[:120].decode(errors='replace')}"
            elapsed = (time.perf_counter() - began) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                self.max_lag = max(self.max_lag, lag)
                if not 200 <= status < 300:
                    self.errors.append(detail)
        connection.close()

    def summary(self, duration: float) -> dict:
        ordered = sorted(self.latencies)
        return {
            "run_id": self.run_id, "sent": len(ordered), "errors": len(self.errors),
            "error_kinds": sorted(set(self.errors))[:5], "seconds": round(duration, 2),
            "requests_per_second": round(len(ordered) / duration, 1) if duration else None,
            "p50_ms": round(percentile(ordered, 0.50), 1), "p95_ms": round(percentile(ordered, 0.95), 1),
            "p99_ms": round(percentile(ordered, 0.99), 1), "max_ms": round(ordered[-1], 1) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else None,
            "max_schedule_lag_ms": round(self.max_lag * 1000, 1),
        }


def send_load(make_request: RequestMaker, *, url: str, count: int, rate: float, concurrency: int) -> dict:
    """POST `count` requests to `url` from `concurrency` senders at `rate` per second in all (0 = as fast as they
    can), and return the run's figures. Any answer outside 2xx, or no answer, is an error."""
    run = _LoadRun(make_request, url, count, rate)
    threads = [threading.Thread(target=run.sender) for _ in range(concurrency)]
    run.started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run.summary(time.perf_counter() - run.started)


def add_load_arguments(parser: argparse.ArgumentParser, *, what: str) -> None:
    """The options every sender has: where, how many, how fast, and the output."""
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the running server.")
    parser.add_argument("--count", type=int, default=1000, help=f"How many {what} to send.")
    parser.add_argument("--concurrency", type=int, default=8, help="Concurrent senders (connections).")
    parser.add_argument("--rate", type=float, default=100.0, help="Target requests per second in all; 0 = as fast as possible.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")


def print_result(result: dict, *, as_json: bool, label: str = "", show_mean: bool = False) -> None:
    """One JSON object (the last line is what run_all.py reads), or two lines of text."""
    if as_json:
        print(json.dumps(result))
        return
    mean = f"mean {result['mean_ms']}; " if show_mean else ""
    print(f"{label}run {result['run_id']}: {result['sent']} requests in {result['seconds']} s "
          f"= {result['requests_per_second']} req/s, {result['errors']} errors {result['error_kinds'] or ''}")
    print(f"latency ms: p50 {result['p50_ms']}  p95 {result['p95_ms']}  p99 {result['p99_ms']}  max {result['max_ms']}  "
          f"({mean}senders fell behind schedule by up to {result['max_schedule_lag_ms']} ms)")
