#!/usr/bin/env python
"""Run the production web server: uvicorn (uvloop, httptools, websockets) with one process per core.

uvicorn, not daphne: on the 2-core machine Twilio webhooks at 100 requests/s had a clearly lower p95 under
uvicorn than under daphne with the same number of processes (bench/README.md). Websockets (/ws/…,
Channels) are served by the same processes. Daphne stays installed: the browser tests start it
in-process (daphne.testing.DaphneProcess).

One process per core: Django runs every sync view of a process on one thread, so more processes are
what use more cores. Usage: serve.py [--host H] [--port P] [--workers N] [uvicorn args...]
Access logs are off (a log line per webhook is CPU the 2-core machine needs); ACCESS_LOG=1 turns them on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1)))
    args, uvicorn_args = parser.parse_known_args()

    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    command = [
        uvicorn, "omnidesk.asgi:application", "--host", args.host, "--port", str(args.port),
        "--workers", str(max(1, args.workers)), "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
        # X-Forwarded-* are honoured from the addresses in FORWARDED_ALLOW_IPS (uvicorn's default: 127.0.0.1).
        "--proxy-headers", "--no-server-header",
        *([] if os.environ.get("ACCESS_LOG", "0") == "1" else ["--no-access-log"]),
        *uvicorn_args,
    ]
    print(f"Serving on http://{args.host}:{args.port} with {max(1, args.workers)} uvicorn processes", flush=True)
    os.execv(uvicorn, command)


if __name__ == "__main__":
    main()
