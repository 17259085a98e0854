"""Report mails are an outbox: written with the report's outcome, one per recipient, sent by the
report jobs against a real (local aiosmtpd) SMTP server, retried with backoff when the server is
down or refuses for now, given up after the last attempt (or at once for an address refused for
good) with a ReportMailFailed staff notification, and never sent twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bourse.adapters.db.uow import SqlUnitOfWork
from bourse.domain.identity import Role
from bourse.domain.notifications import NotificationQuery
from bourse.domain.outbox import DeliveryState, RetryPolicy
from bourse.domain.reports import ReportStatus
from tests.api.reports.support import Mailbox, download_path, free_port, person, report_container, usdt
from tests.integration.trading.support import ADMIN


@dataclass
class RefusingMailbox(Mailbox):
    """Answers RCPT TO for the addresses in ``refuse`` with the reply given there."""

    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


@contextlib.contextmanager
def serving(box: Mailbox) -> Iterator[Mailbox]:
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    """A port nothing listens on until a test starts the server there."""
    return free_port()


@pytest.fixture
async def container(db_url, clock, tmp_path: Path, smtp_port: int) -> AsyncIterator[Any]:
    c = report_container(db_url, clock, tmp_path / "data", smtp_port)
    yield c
    await c.aclose()


@pytest.fixture
async def finance(client, container):
    await usdt(container)
    return await person(client, container, "finance", Role.ACCOUNTANT)


async def finished_report(container, finance, emails: list[str]):
    report = await container.reports.create(
        finance.principal,
        {"reportName": "Deposits", "source": "Transfers", "format": "Csv", "notifyEmails": emails},
    )
    assert await container.reports.work_once()
    done = await container.reports.get(finance.principal, report.id)
    assert done.status is ReportStatus.COMPLETED
    return done


async def mails(container, report_id: str) -> dict[str, Any]:
    return {m.recipient: m for m in await container.reports.mail_deliveries(report_id)}


async def given_up_notes(container) -> list[Any]:
    notes = await container.notifications.admin_list(ADMIN, NotificationQuery())
    return [n for n in notes if n.type == "ReportMailFailed"]


async def test_a_mail_the_server_was_down_for_is_sent_on_the_retry_after_the_backoff(
    container, finance, clock, smtp_port
):
    report = await finished_report(container, finance, ["cfo@example.com", "treasury@example.com"])
    started = clock.now()

    # The first attempt ran right after the report finished; nothing listened.
    pending = await mails(container, report.id)
    assert set(pending) == {"cfo@example.com", "treasury@example.com"}
    for mail in pending.values():
        assert mail.state is DeliveryState.PENDING
        (first,) = mail.attempts
        assert first.attempt == 1 and first.error is not None and "Connect" in first.error
        assert mail.next_attempt_at == started + timedelta(seconds=60), "the first retry is 1 min later"

    with serving(Mailbox(smtp_port)) as box:
        clock.advance(seconds=59)
        assert await container.reports.deliver_mail() == 0, "not due before the backoff ends"
        assert box.messages == []

        clock.advance(seconds=1)
        assert await container.reports.deliver_mail() == 2
        received = await box.wait_for(2)
        assert sorted(m["X-Envelope-To"] for m in received) == ["cfo@example.com", "treasury@example.com"]
        assert {m["Subject"] for m in received} == {"Report ready: Deposits"}
        assert {download_path(m) for m in received} == {f"/api/reports/{report.id}/download"}

        clock.advance(hours=3)
        assert await container.reports.deliver_mail() == 0, "a delivered mail is not sent again"
        await asyncio.sleep(0.1)
        assert len(box.messages) == 2

    for mail in (await mails(container, report.id)).values():
        assert mail.state is DeliveryState.DELIVERED
        assert [(a.attempt, a.error is None) for a in mail.attempts] == [(1, False), (2, True)]
        assert mail.last_error is None
    assert await given_up_notes(container) == []
    assert (await container.reports.get(finance.principal, report.id)).status is ReportStatus.COMPLETED


async def test_a_mail_is_given_up_after_the_last_attempt_and_staff_are_told_once(
    container, finance, clock, smtp_port
):
    container.reports.mail_retry = RetryPolicy(max_attempts=3, base_delay_seconds=10, max_delay_seconds=15)
    report = await finished_report(container, finance, ["cfo@example.com"])

    clock.advance(seconds=10)
    assert await container.reports.deliver_mail() == 1
    (mail,) = (await mails(container, report.id)).values()
    assert (mail.state, len(mail.attempts)) == (DeliveryState.PENDING, 2)
    assert mail.next_attempt_at == clock.now() + timedelta(seconds=15), "20 s capped at 15 s"

    clock.advance(seconds=14)
    assert await container.reports.deliver_mail() == 0
    clock.advance(seconds=1)
    assert await container.reports.deliver_mail() == 1

    (mail,) = (await mails(container, report.id)).values()
    assert mail.state is DeliveryState.FAILED
    assert [a.attempt for a in mail.attempts] == [1, 2, 3]
    assert all(a.error for a in mail.attempts) and mail.last_error == mail.attempts[-1].error

    (note,) = await given_up_notes(container)
    assert note.data == {
        "type": "ReportMailFailed",
        "reportId": report.id,
        "mailId": str(mail.id),
        "recipient": "cfo@example.com",
        "subject": "Report ready: Deposits",
        "attempts": 3,
        "lastError": mail.last_error,
    }

    # Given up means given up: the server coming back later sends nothing, staff hear of it once.
    with serving(Mailbox(smtp_port)) as box:
        clock.advance(days=1)
        assert await container.reports.deliver_mail() == 0
        await asyncio.sleep(0.1)
        assert box.messages == []
    assert len(await given_up_notes(container)) == 1
    assert (await container.reports.get(finance.principal, report.id)).status is ReportStatus.COMPLETED


async def test_each_recipient_stands_alone_a_4xx_is_retried_a_5xx_is_given_up_at_once(
    container, finance, clock, smtp_port
):
    box = RefusingMailbox(
        smtp_port,
        refuse={
            "later@example.com": "451 4.3.0 mailbox busy, try again later",
            "nobody@example.com": "550 5.1.1 no such user",
        },
    )
    with serving(box):
        report = await finished_report(
            container, finance, ["ok@example.com", "later@example.com", "nobody@example.com"]
        )
        (delivered,) = await box.wait_for(1)
        assert delivered["X-Envelope-To"] == "ok@example.com"

        state = await mails(container, report.id)
        assert state["ok@example.com"].state is DeliveryState.DELIVERED
        assert state["later@example.com"].state is DeliveryState.PENDING
        assert "451" in (state["later@example.com"].last_error or "")
        assert state["nobody@example.com"].state is DeliveryState.FAILED
        assert len(state["nobody@example.com"].attempts) == 1, "a 5xx for the address is final"
        (note,) = await given_up_notes(container)
        assert note.data["recipient"] == "nobody@example.com" and "550" in note.data["lastError"]

        box.refuse.pop("later@example.com")  # the server takes it now
        clock.advance(minutes=1)
        assert await container.reports.deliver_mail() == 1
        received = await box.wait_for(2)
        assert received[1]["X-Envelope-To"] == "later@example.com"

    state = await mails(container, report.id)
    assert {r: m.state for r, m in state.items()} == {
        "ok@example.com": DeliveryState.DELIVERED,
        "later@example.com": DeliveryState.DELIVERED,
        "nobody@example.com": DeliveryState.FAILED,
    }
    assert len(box.messages) == 2 and len(await given_up_notes(container)) == 1


async def test_two_processes_delivering_at_once_send_each_mail_once(
    db_url, clock, tmp_path, container, finance, smtp_port
):
    other = report_container(db_url, clock, tmp_path / "data", smtp_port)
    try:
        recipients = [f"r{i}@example.com" for i in range(6)]
        report = await finished_report(container, finance, recipients)  # the first attempts fail
        with serving(Mailbox(smtp_port)) as box:
            clock.advance(minutes=1)
            counts = await asyncio.gather(
                *(c.reports.deliver_mail() for c in (container, other, container, other))
            )
            assert sum(counts) == 6, counts
            received = await box.wait_for(6)
            await asyncio.sleep(0.2)
            assert sorted(m["X-Envelope-To"] for m in received) == sorted(recipients)
    finally:
        await other.aclose()
    assert {m.state for m in (await mails(container, report.id)).values()} == {DeliveryState.DELIVERED}


async def test_deleting_the_report_drops_its_pending_mails(container, finance, clock, smtp_port):
    report = await finished_report(container, finance, ["cfo@example.com"])
    assert len(await mails(container, report.id)) == 1
    await container.reports.delete(finance.principal, report.id)
    assert await mails(container, report.id) == {}
    with serving(Mailbox(smtp_port)) as box:
        clock.advance(minutes=1)
        assert await container.reports.deliver_mail() == 0
        await asyncio.sleep(0.1)
        assert box.messages == []


async def test_a_mail_leased_to_a_process_that_died_is_sent_after_the_lease(
    container, finance, clock, smtp_port
):
    report = await finished_report(container, finance, ["cfo@example.com"])
    clock.advance(minutes=1)
    # A process claims the due mail and dies before its attempt (nothing recorded).
    async with SqlUnitOfWork(container.engine) as uow:
        (claimed,) = await uow.report_mails.claim_due(clock.now(), clock.now() + timedelta(minutes=5), 10)
        await uow.commit()
    with serving(Mailbox(smtp_port)) as box:
        assert await container.reports.deliver_mail() == 0, "leased: nobody else takes it meanwhile"
        clock.advance(minutes=5)
        assert await container.reports.deliver_mail() == 1
        (mail,) = await box.wait_for(1)
        assert mail["X-Envelope-To"] == "cfo@example.com"
    (status,) = (await mails(container, report.id)).values()
    assert status.state is DeliveryState.DELIVERED and [a.attempt for a in status.attempts] == [1, 2]
    assert claimed.id == status.id


async def test_without_smtp_no_mail_is_stored(db_url, clock, tmp_path, client, finance):
    offline = report_container(db_url, clock, tmp_path / "nomail", None)
    try:
        report = await finished_report(offline, finance, ["cfo@example.com"])
        assert await offline.reports.mail_deliveries(report.id) == []
    finally:
        await offline.aclose()
