#!/usr/bin/env python3
"""Live latency: how long from posting a signed Twilio SMS webhook until the workspace websocket of a signed-in
member pushes the new message's `message.created` event.

Signs in a supervisor of --tenant (created if missing; a supervisor's socket hears every event of the tenant,
so it also carries whatever load runs beside it), opens `ws/workspace/` as the workspace page does (session
cookie, same-origin Origin header), then sends --probes webhooks from one probe number, --interval seconds
apart. A probe's latency is the time from the start of its POST to the push of its entry. The entry of each
probe is found afterwards by its MessageSid, so the push (which carries ids only) is matched exactly.

Needs the server's settings (DATABASE_URL, SECRET_KEY, ...) in the environment, like manage.py; run_all.py
starts it beside the ingest load. Prints one JSON object with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from load_senders import percentile  # noqa: E402
from twilio_ingest import twilio_signature  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from conversations.models import TimelineEntry  # noqa: E402
from customers.models import Membership, Role, Tenant  # noqa: E402

PROBE_NUMBER = "+12025550199"


def session_cookie(tenant: Tenant) -> str:
    user, _ = get_user_model().objects.get_or_create(
        username=f"bench-live@{tenant.slug}", defaults={"email": f"bench-live@{tenant.slug}"}
    )
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.SUPERVISOR})
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def post_probe(args: argparse.Namespace, sid: str, index: int) -> int:
    target = urlsplit(args.url)
    path = f"/hooks/twilio/{args.inbox_key}/messages/"
    form = {"MessageSid": sid, "From": PROBE_NUMBER, "To": args.to, "Body": f"live probe #{index}", "NumMedia": "0",
            "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": twilio_signature(args.url.rstrip("/") + path, form, args.auth_token)}
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        connection.request("POST", path, body=urlencode(form), headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def probe_entries(tenant: Tenant, sids: list[str]) -> dict[str, int]:
    """MessageSid -> timeline entry id of the probes stored so far."""
    return dict(TimelineEntry.objects.for_tenant(tenant).filter(external_id__in=sids).values_list("external_id", "pk"))


async def measure(args: argparse.Namespace, tenant: Tenant, cookie: str) -> tuple[dict[str, float], dict[int, float], list[int]]:
    """Returns each probe's send time (by MessageSid), each pushed entry's arrival time, and non-200 answers."""
    target = urlsplit(args.url)
    sent: dict[str, float] = {}
    arrived: dict[int, float] = {}
    statuses: list[int] = []
    uri = f"ws://{target.netloc}/ws/workspace/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    async with connect(uri, additional_headers=headers, origin=f"{target.scheme}://{target.netloc}",
                       max_size=2**20, open_timeout=15) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if hello.get("type") != "hello":
            raise SystemExit(f"unexpected first frame from the workspace socket: {hello}")

        async def listen() -> None:
            async for frame in socket:
                now = time.perf_counter()
                event = json.loads(frame)
                if event.get("type") == "message.created" and event.get("entry_id") is not None:
                    arrived.setdefault(event["entry_id"], now)

        listener = asyncio.ensure_future(listen())
        for index in range(args.probes):
            sid = "SM" + uuid.uuid4().hex
            sent[sid] = time.perf_counter()
            # The POST blocks; in a thread, so the socket keeps being read (and timestamped) meanwhile.
            status = await asyncio.to_thread(post_probe, args, sid, index)
            if status != 200:
                statuses.append(status)
            await asyncio.sleep(args.interval)
        # Wait, bounded, until every probe is stored and its entry pushed. The socket also hears the load's
        # messages, so the pushes alone cannot tell when the probes are all in: ask the database.
        deadline = time.perf_counter() + args.timeout
        while time.perf_counter() < deadline:
            entries = await asyncio.to_thread(probe_entries, tenant, list(sent))
            if len(entries) == len(sent) and all(entry_id in arrived for entry_id in entries.values()):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        listener.cancel()
    return sent, arrived, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL; also the PUBLIC_BASE_URL signed.")
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--inbox-key", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--to", default="+15005550006")
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25, help="Seconds between probes.")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="Seconds to wait after the last probe for every probe to be stored and pushed.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]  # the test client signs in through the settings the server uses
    tenant = Tenant.objects.get(slug=args.tenant)
    sent, arrived, statuses = asyncio.run(measure(args, tenant, session_cookie(tenant)))
    entries = probe_entries(tenant, list(sent))
    latencies = sorted(
        (arrived[entries[sid]] - started) * 1000 for sid, started in sent.items()
        if sid in entries and entries[sid] in arrived
    )
    result = {
        "probes": len(sent), "stored": len(entries), "pushed": len(latencies), "errors": len(statuses),
        "p50_ms": round(percentile(latencies, 0.50), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(latencies[-1], 1) if latencies else None,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['pushed']} of {result['probes']} probes pushed ({result['stored']} stored, {result['errors']} errors): "
          f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")


if __name__ == "__main__":
    main()
