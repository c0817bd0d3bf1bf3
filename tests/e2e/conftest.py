from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

# Playwright's sync API runs an event loop in this thread; the ORM calls the fixtures make are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    """daphne serving the test database (Django's live_server is WSGI only: no websockets)."""
    port = free_port()
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "omnidesk.settings_test",
        "DATABASE_URL": f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHITENOISE_USE_FINDERS": "1",  # no collectstatic in tests
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        # uvicorn waits for open websockets to close on SIGTERM; a page left one open: stop it outright.
        server.kill()
        server.wait(timeout=10)


# The fake Twilio API and the SMTP recorder of the channel tests, for end-to-end scenarios.
from tests.channels.email.conftest import smtp_server  # noqa: E402,F401
from tests.channels.twilio.conftest import fake_twilio  # noqa: E402,F401

ARTIFACTS = Path(os.environ.get("OMNIDESK_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))


@pytest.fixture
def screenshot():
    """Saves a page's screenshot under var/test-artifacts/screenshots/ (OMNIDESK_TEST_ARTIFACTS moves it)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture(scope="session", autouse=True)
def patient_expectations():
    """CI shares two cores between the browser, daphne, a worker and Postgres: give assertions time."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
