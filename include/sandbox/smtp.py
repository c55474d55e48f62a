"""A local SMTP sink (aiosmtpd) on 127.0.0.1: alert e-mails land here in the demo and the tests.

Messages are kept in memory for assertions and, if ``spool_dir`` is set, written as ``.eml``
files so a person can open what finance or ops would have received.
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from include.sandbox.server import LOOPBACK, free_port

# aiosmtpd logs every SMTP command at INFO ("mail.log"): a dozen lines per alert in a task's log.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class _Handler:
    spool_dir: Path | None
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
            if self.spool_dir is not None:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                (self.spool_dir / f"{len(self.messages):04d}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Plaintext SMTP on loopback; the Airflow smtp connection must disable SSL and STARTTLS."""

    def __init__(self, port: int = 0, spool_dir: Path | str | None = None) -> None:
        self.port = port or free_port()
        self.handler = _Handler(Path(spool_dir) if spool_dir else None)
        self._controller = Controller(self.handler, hostname=LOOPBACK, port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
