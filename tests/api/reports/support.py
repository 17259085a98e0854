"""Report tests' helpers: a local SMTP server (aiosmtpd) that keeps what it receives, a container
that writes report files under the test's tmp dir and mails through that server, people, deposits."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from bourse.bootstrap import Container, build
from bourse.domain.errors import Conflict
from bourse.domain.identity import Principal, Role
from bourse.service.context import RequestMeta
from tests.conftest import FAST_HASHER, bearer, login, make_settings
from tests.integration.trading.support import ADMIN

PUBLIC_URL = "https://bourse.example.test"
LINK = re.compile(r"https://bourse\.example\.test(/api/reports/[0-9a-f-]{36}/download)")


@dataclass
class Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.02)
        return self.messages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def report_container(
    db_url: str, clock: Any, data_dir: Path, smtp_port: int | None, **settings: Any
) -> Container:
    values: dict[str, Any] = {"data_dir": data_dir, "public_url": PUBLIC_URL}
    if smtp_port is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="reports@bourse.example.test")
    values.update(settings)
    return build(make_settings(**values), db_url, hasher=FAST_HASHER, clock=clock)


@dataclass
class Person:
    uid: int
    username: str
    account_id: str
    headers: dict[str, str]
    principal: Principal


async def person(client: Any, container: Any, name: str, role: Role = Role.ACCOUNTANT) -> Person:
    created = await container.identity.create_user(
        name, f"{name}-pass-123", email=f"{name}@example.com", roles=(role,)
    )
    token = await login(client, name, f"{name}-pass-123")
    principal = Principal.of(created.user.uid, name, created.user.roles)
    return Person(int(created.user.uid), name, str(created.account.account_id), bearer(token), principal)


async def usdt(container: Any) -> None:
    with contextlib.suppress(Conflict):
        await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")


async def deposit(container: Any, who: Person, amount: str, dedup: str, asset: str = "USDT") -> None:
    await container.transfers.deposit(ADMIN, who.account_id, dedup, asset, amount, None, RequestMeta())


def download_path(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)
