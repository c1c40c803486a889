"""A real SMTP server on loopback that keeps every message it receives, for DAG tests.

Needs ``aiosmtpd`` (``pip install 'airflow-provider-dynamiq[testing]'``).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the SMTP server received it."""

    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message["Subject"] or "")

    def html_body(self) -> str:
        """Return the decoded text/html part, or an empty string."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class SmtpSink:
    """Run an SMTP server on 127.0.0.1 in a background thread and record the messages it accepts.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Point Airflow's
    ``smtp_default`` connection at it with :meth:`connection_json`.

    :param port: TCP port; 0 picks a free one.
    :param reject_recipients: addresses the server refuses with ``550``, to test rejected email.
    """

    def __init__(self, port: int = 0, reject_recipients: tuple[str, ...] = ()) -> None:
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.reject_recipients = frozenset(address.lower() for address in reject_recipients)
        self._messages: list[ReceivedEmail] = []
        self._condition = threading.Condition()
        self._controller: Any = None

    def start(self) -> SmtpSink:
        """Start the server; returns ``self``."""
        from aiosmtpd.controller import Controller

        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[ReceivedEmail]:
        """A copy of the messages received so far, oldest first."""
        with self._condition:
            return list(self._messages)

    def wait_for_messages(self, count: int = 1, timeout: float = 30.0) -> list[ReceivedEmail]:
        """Wait until at least ``count`` messages have arrived and return them all.

        :raises TimeoutError: when fewer than ``count`` arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"The SMTP sink received {len(self._messages)} message(s) within {timeout:g} s; "
                        f"expected {count}."
                    )
                self._condition.wait(remaining)
            return list(self._messages)

    def connection_json(self, from_email: str = "airflow@example.invalid") -> dict[str, Any]:
        """Return an Airflow SMTP connection for this server: plain SMTP, no TLS, no login."""
        return {
            "conn_type": "smtp",
            "host": self.host,
            "port": self.port,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": from_email,
                "timeout": 10,
                "retry_limit": 0,
            },
        }

    def _record(self, received: ReceivedEmail) -> None:
        with self._condition:
            self._messages.append(received)
            self._condition.notify_all()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        if address.lower() in self._sink.reject_recipients:
            return "550 5.1.1 Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self._sink._record(
            ReceivedEmail(mail_from=envelope.mail_from, recipients=tuple(envelope.rcpt_tos), message=message)
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd connects to its own port to check that the server came up, so it needs a
    # concrete port. Another process could take the port in between, which is rare on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
