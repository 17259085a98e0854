"""The acceptance test of scheduled reports: a template on a Daily schedule is run by the report jobs
(two processes' worth of them, on one database), its report is mailed as a download link to a local
SMTP server, and the link downloads an XLSX that openpyxl reads back with exactly the deposits
made through the transfers service. Each due time gives one report and one mail per recipient,
whichever process claims it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import openpyxl
import pytest

from bourse.api.app import create_app
from bourse.bootstrap import Container
from bourse.domain.identity import Role
from bourse.jobs.runner import BackgroundJobs, report_jobs
from tests.api.reports.support import (
    Mailbox,
    deposit,
    download_path,
    person,
    report_container,
    smtp_server,
    usdt,
)

FAST = {"poll": 0.05, "schedule": 0.05, "expiry": 0.05, "mail": 0.05}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
async def container(db_url, clock, tmp_path: Path, mailbox) -> AsyncIterator[Container]:
    c = report_container(db_url, clock, tmp_path / "shared-data", mailbox.port)
    yield c
    await c.aclose()


@pytest.fixture
async def other_process(db_url, clock, tmp_path: Path, mailbox) -> AsyncIterator[Container]:
    """A second API process on the same database and data dir (report files are shared there)."""
    c = report_container(db_url, clock, tmp_path / "shared-data", mailbox.port)
    yield c
    await c.aclose()


@pytest.fixture
async def client(container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def reports_of(container, principal):
    return await container.reports.list_reports(principal)


async def test_a_scheduled_template_is_mailed_once_per_due_time_and_downloads_as_xlsx(
    client, container, other_process, clock, mailbox
):
    await usdt(container)
    finance = await person(client, container, "finance", Role.ACCOUNTANT)
    customers = {}
    for name, amount in (("carol", "125.5"), ("dave", "20"), ("erin", "0.000001")):
        customers[name] = await person(client, container, name, Role.TRADER)
        await deposit(container, customers[name], amount, f"dep-{name}")

    base = clock.now().replace(microsecond=0) + timedelta(minutes=1)
    r = await client.post(
        "/api/reports/templates",
        headers=finance.headers,
        json={
            "templateName": "Deposits",
            "source": "Transfers",
            "sourceName": "transfers",
            "schedule": {"baseDate": iso(base), "frequency": "Daily", "daysOfWeek": []},
            "notifyEmails": ["treasury@example.com", "cfo@example.com"],
            "filters": [{"entryType": "Equals", "field": "type", "value": "Deposit"}],
            "sorting": {"field": "assetAmount", "direction": "Desc"},
            "format": "Xlsx",
        },
    )
    assert r.status_code == 200, r.text
    template_id = r.json()["id"]

    jobs = BackgroundJobs(report_jobs(container, **FAST) + report_jobs(other_process, **FAST)).start()
    try:
        await asyncio.sleep(0.3)
        assert mailbox.messages == [] and await reports_of(container, finance.principal) == [], "not due yet"

        clock.advance(minutes=1)
        mails = await mailbox.wait_for(2)
        await asyncio.sleep(0.5)  # both processes had time to send again, had they claimed twice
        assert len(mailbox.messages) == 2
        (report,) = await reports_of(container, finance.principal)
        assert report.template_id == template_id and report.due_at == base

        # one mail per recipient, each addressed to that recipient alone
        assert sorted((m["X-Envelope-To"], m["To"]) for m in mails) == [
            ("cfo@example.com", "cfo@example.com"),
            ("treasury@example.com", "treasury@example.com"),
        ]
        for mail in mails:
            assert mail["Subject"] == f"Report ready: Deposits {base:%Y-%m-%d %H:%M}"
            assert mail["From"] == "reports@bourse.example.test"
        assert {download_path(m) for m in mails} == {f"/api/reports/{report.id}/download"}
        link = download_path(mails[0])

        r = await client.get(link)
        assert r.status_code == 401, "the link alone is not enough"
        r = await client.get(link, headers=customers["carol"].headers)
        assert r.status_code == 403
        r = await client.get(link, headers=finance.headers)
        assert r.status_code == 200
        assert (
            r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
        rows = list(book.active.iter_rows(values_only=True))
        header = list(rows[0])
        assert header == [
            "userId",
            "userEmail",
            "accountId",
            "accountName",
            "transferId",
            "assetId",
            "assetName",
            "type",
            "status",
            "assetAmount",
            "createdAt",
            "rateToRootAsset",
            "assetAmountInRAT",
            "deduplicationId",
        ]
        got = [dict(zip(header, row, strict=True)) for row in rows[1:]]
        assert [(g["userEmail"], g["accountId"], g["deduplicationId"]) for g in got] == [
            ("carol@example.com", customers["carol"].account_id, "dep-carol"),
            ("dave@example.com", customers["dave"].account_id, "dep-dave"),
            ("erin@example.com", customers["erin"].account_id, "dep-erin"),
        ]
        assert [Decimal(str(g["assetAmount"])) for g in got] == [
            Decimal("125.5"),
            Decimal(20),
            Decimal("0.000001"),
        ]
        assert {(g["type"], g["status"], g["assetId"]) for g in got} == {("Deposit", "Completed", "USDT")}
        assert all(g["userId"] == str(customers[g["deduplicationId"][4:]].uid) for g in got)

        # A new deposit, and the next day's run has it: one more report, one more mail each.
        await deposit(container, customers["dave"], "7", "dep-dave-2")
        clock.advance(days=1)
        await mailbox.wait_for(4)
        await asyncio.sleep(0.5)
        assert len(mailbox.messages) == 4
    finally:
        await jobs.aclose()
    reports = await reports_of(container, finance.principal)
    assert [r.due_at for r in reports] == [base + timedelta(days=1), base]
    assert {r.status.value for r in reports} == {"Completed"}
    assert reports[0].row_count == 4


async def test_two_processes_claiming_at_once_make_one_report_per_due_time(
    client, container, other_process, clock
):
    finance = await person(client, container, "finance", Role.ACCOUNTANT)
    base = clock.now().replace(microsecond=0) + timedelta(minutes=1)
    for i in range(5):
        r = await client.post(
            "/api/reports/templates",
            headers=finance.headers,
            json={
                "templateName": f"T{i}",
                "source": "Trades",
                "schedule": {"baseDate": iso(base), "frequency": "Daily"},
                "format": "Csv",
            },
        )
        assert r.status_code == 200
    for day in range(3):
        clock.advance(days=1 if day else 0, minutes=0 if day else 1)
        counts = await asyncio.gather(
            *(c.reports.schedule_due() for c in (container, other_process) for _ in range(4))
        )
        assert sum(counts) == 5, counts
    reports = await reports_of(container, finance.principal)
    assert len(reports) == 15
    assert len({(r.template_id, r.due_at) for r in reports}) == 15
