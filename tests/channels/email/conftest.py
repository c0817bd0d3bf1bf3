"""Real servers on loopback: aiosmtpd for outbound mail, Debian's dovecot for IMAP polling."""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from channels_app.models import Channel
from tests.channels.email.mails import WEBHOOK_SECRET
from tests.factories import InboxFactory

DOVECOT = "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mail_inbox(tenant):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Support mail", address="support@acme.test")
    inbox.set_secrets(webhook_secret=WEBHOOK_SECRET)
    inbox.save()
    return inbox


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler that keeps what it received and can refuse on cue."""

    received: list = field(default_factory=list)
    data_failures: list[str] = field(default_factory=list)  # answers to the next DATA commands
    refuse_recipient: str = ""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refuse_recipient:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_failures:
            return self.data_failures.pop(0)
        self.received.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = SmtpRecorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@dataclass
class Dovecot:
    port: int
    username: str
    password: str

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(self.username, self.password)
        return client

    def new_folder(self) -> str:
        name = f"Support-{uuid.uuid4().hex[:8]}"
        with self.client() as client:
            client.create(name)
        return name

    def append(self, folder: str, raw: bytes) -> None:
        with self.client() as client:
            status, data = client.append(folder, None, None, raw)
        assert status == "OK", data

    def recreate(self, folder: str) -> None:
        """Delete and create the folder again: the server gives it a new UIDVALIDITY."""
        with self.client() as client:
            client.delete(folder)
            client.create(folder)


def _dovecot_config(root: Path, port: int) -> str:
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture(scope="session")
def dovecot():
    """A throwaway dovecot on a spare loopback port (scripts/test.sh installs dovecot-imapd)."""
    if not os.path.exists(DOVECOT) or os.geteuid() != 0:
        pytest.skip("IMAP tests need Debian's dovecot-imapd (apt-get install -y dovecot-imapd) and root to start it")
    root = Path(tempfile.mkdtemp(prefix="omnidesk-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "nobody", "nogroup")
    (root / "passwd").write_text("support:{PLAIN}imap-pass::::::\n")
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(_dovecot_config(root, port))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = Dovecot(port=port, username="support", password="imap-pass")
    deadline = time.monotonic() + 10
    while True:
        try:
            server.client().logout()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"dovecot did not start: {(root / 'dovecot.log').read_text() if (root / 'dovecot.log').exists() else ''}")
            time.sleep(0.1)
    yield server
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)
