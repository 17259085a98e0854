"""Outgoing mail through SMTP (aiosmtplib), configured by the ``BOURSE_SMTP_*`` settings.

``BOURSE_SMTP_STARTTLS``: true requires STARTTLS, false never upgrades, unset upgrades when the
server offers it. Without ``BOURSE_SMTP_HOST`` mail is off (``DisabledMailer``): nothing is sent and
callers are told so.

A failure is permanent (``MailError.permanent``) only when the server refused every recipient with a
5xx reply: that address will not take the mail later either. Anything else (no connection, a
timeout, a 4xx, a refused sender or login) may pass and is worth another try.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bourse.service.ports import MailError


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    @property
    def enabled(self) -> bool:
        return True

    async def send(self, recipients: Sequence[str], subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            permanent = bool(error.recipients) and all(r.code >= 500 for r in error.recipients)
            refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
            raise MailError(f"recipients refused: {refused}", permanent=permanent) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise MailError(f"{type(error).__name__}: {error}") from error


class DisabledMailer:
    @property
    def enabled(self) -> bool:
        return False

    async def send(self, recipients: Sequence[str], subject: str, body: str) -> None:
        raise MailError("mail is not configured (BOURSE_SMTP_HOST is unset)")
