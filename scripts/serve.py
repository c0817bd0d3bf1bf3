#!/usr/bin/env python
"""Run several daphne processes on one listening socket (daphne itself has no --workers option).

One daphne process runs all sync views on a single thread, so one process per core is what lets a
2-core machine use both cores. Usage: serve.py [--host H] [--port P] [--workers N] [daphne args...]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1)))
    args, daphne_args = parser.parse_known_args()

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    listener.set_inheritable(True)
    fd = listener.fileno()

    daphne = str(Path(sys.executable).with_name("daphne"))
    domain = "INET6" if family == socket.AF_INET6 else "INET"
    # Each child adopts the socket the way systemd socket activation hands it over: as fd 3, announced
    # by LISTEN_FDS/LISTEN_PID (twisted's "systemd:" endpoint; its old "fd:" endpoint is gone).
    command = [
        "/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"', daphne,
        "-e", f"systemd:domain={domain}:index=0", "--proxy-headers", *daphne_args, "omnidesk.asgi:application",
    ]
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}
    children = [
        subprocess.Popen(command, env=env, pass_fds=(fd,), preexec_fn=lambda: os.dup2(fd, 3))
        for _ in range(max(1, args.workers))
    ]
    print(f"Serving on http://{args.host}:{args.port} with {len(children)} daphne processes", flush=True)

    def stop(signum, frame):
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # If any process dies, stop them all: a supervisor (or the run script) restarts the service.
    try:
        os.wait()
    except ChildProcessError:
        pass
    stop(None, None)
    return max((child.wait() for child in children), default=0)


if __name__ == "__main__":
    sys.exit(main())
