"""Reports and report templates over HTTP (/api/reports): the spec's shapes, validation by the
history server's rules, New -> InProgress -> Completed / Failed with a reason, files that read back
with the right rows, expiry, who may call what, and one user never reaching another's reports."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest

from bourse.domain.identity import Role
from bourse.domain.notifications import NotificationQuery
from bourse.domain.reports import ReportStatus
from tests.api.reports.support import Person, deposit, download_path, person, usdt
from tests.conftest import bearer, login
from tests.integration.trading.support import ADMIN, make_market, make_trader, place

REPORTS = "/api/reports"
TEMPLATES = "/api/reports/templates"
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def transfers_report(**overrides):
    body = {
        "reportName": "Deposits",
        "source": "Transfers",
        "format": "Csv",
        "filters": [{"entryType": "Equals", "field": "type", "value": "Deposit"}],
        "sorting": {"field": "assetAmount", "direction": "Asc"},
        "notifyEmails": [],
    }
    body.update(overrides)
    return body


def template_body(**overrides):
    body = {
        "templateName": "Daily deposits",
        "source": "Transfers",
        "sourceName": "transfers",
        "schedule": {"baseDate": "2030-01-01T06:00:00.000Z", "frequency": "Daily", "daysOfWeek": []},
        "notifyEmails": ["finance@example.com"],
        "filters": [],
        "sorting": {"field": "createdAt", "direction": "Desc"},
        "format": "Xlsx",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def alice(client, container) -> Person:
    return await person(client, container, "alice")


@pytest.fixture
async def bob(client, container) -> Person:
    return await person(client, container, "bob")


@pytest.fixture
async def funded(container, client, alice) -> list[Person]:
    """Three customers with deposits of 5, 20 and 0.5 USDT."""
    await usdt(container)
    people = []
    for name, amount in (("carol", "5"), ("dave", "20"), ("erin", "0.5")):
        who = await person(client, container, name, Role.TRADER)
        await deposit(container, who, amount, f"dep-{name}")
        people.append(who)
    return people


async def create(client, who, body) -> str:
    r = await client.post(REPORTS, headers=who.headers, json=body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"}
    return str(r.json()["id"])


async def get(client, who, report_id):
    r = await client.get(f"{REPORTS}/{report_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def run_all(container) -> None:
    while await container.reports.work_once():
        pass


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


# --- the report's life ------------------------------------------------------------------------------


async def test_a_report_goes_new_in_progress_completed_and_downloads_the_matching_rows(
    client, container, alice, funded, mailbox
):
    report_id = await create(client, alice, transfers_report(notifyEmails=["alice@example.com"]))
    body = await get(client, alice, report_id)
    assert body == {
        "id": report_id,
        "reportName": "Deposits",
        "templateName": None,
        "templateId": None,
        "source": "Transfers",
        "sourceName": "transfers",
        "filters": [{"entryType": "Equals", "field": "type", "value": "Deposit"}],
        "sorting": {"field": "assetAmount", "direction": "Asc"},
        "createdAt": body["createdAt"],
        "expiredAt": body["expiredAt"],
        "statusType": "New",
        "statusReason": None,
        "createdBy": "alice",
        "notifyEmails": ["alice@example.com"],
        "format": "Csv",
    }
    assert body["createdAt"][-1] == "Z" and body["expiredAt"] > body["createdAt"]

    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    assert r.status_code == 409, "a New report has no file yet"

    claimed = await container.reports.claim()
    assert claimed is not None and claimed.id == report_id
    assert (await get(client, alice, report_id))["statusType"] == "InProgress"
    assert await container.reports.claim() is None, "a claimed report is not handed out twice"

    await container.reports.process(claimed)
    done = await get(client, alice, report_id)
    assert done["statusType"] == "Completed" and done["statusReason"] is None

    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="Deposits.csv"' in r.headers["content-disposition"]
    rows = read_csv(r.content)
    header = rows[0]
    assert header[:3] == ["userId", "userEmail", "accountId"] and "assetAmount" in header
    amounts = [row[header.index("assetAmount")] for row in rows[1:]]
    assert amounts == ["0.5", "5", "20"], "sorted by amount, exact decimals"
    users = [row[header.index("userEmail")] for row in rows[1:]]
    assert users == ["erin@example.com", "carol@example.com", "dave@example.com"]

    (mail,) = await mailbox.wait_for(1)
    assert mail["Subject"] == "Report ready: Deposits"
    assert mail["X-Envelope-To"] == "alice@example.com"
    assert download_path(mail) == f"{REPORTS}/{report_id}/download"


async def test_xlsx_reads_back_with_the_same_rows_and_filter_numbers_come_back_exactly(
    client, container, alice, funded
):
    report_id = await create(
        client,
        alice,
        transfers_report(
            format="Xlsx",
            reportName="Big deposits",
            filters=[{"entryType": "GreaterThan", "field": "assetAmount", "value": 0.75}],
            sorting={"column": "assetAmount", "direction": "Desc"},
        ),
    )
    r = await client.get(f"{REPORTS}/{report_id}", headers=alice.headers)
    assert b'"value":0.75' in r.content, "a decimal filter value is stored and echoed exactly"
    await run_all(container)
    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.content[:2] == b"PK"
    sheet = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert [row[header.index("assetAmount")] for row in rows[1:]] == [20, 5]
    assert [row[header.index("type")] for row in rows[1:]] == ["Deposit", "Deposit"]


async def test_a_trades_report_has_every_fill_with_its_commission(client, container, alice):
    await make_market(container)
    buyer = await make_trader(container, "buyer", usdt="1000")
    seller = await make_trader(container, "seller", btc="1")
    await place(container, seller, "BTCUSDT", "Sell", "0.1", "100")
    await place(container, buyer, "BTCUSDT", "Buy", "0.1", "100")
    await place(container, seller, "BTCUSDT", "Sell", "0.2", "101")
    await place(container, buyer, "BTCUSDT", "Buy", "0.2", "101")
    report_id = await create(
        client,
        alice,
        {
            "reportName": "Buys",
            "source": "Trades",
            "format": "Csv",
            "filters": [{"entryType": "Equals", "field": "side", "value": "Buy"}],
            "sorting": {"field": "executionPrice", "direction": "Asc"},
        },
    )
    await run_all(container)
    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    rows = read_csv(r.content)
    header = rows[0]
    got = [
        (row[header.index("side")], row[header.index("baseAmount")], row[header.index("executionPrice")])
        for row in rows[1:]
    ]
    assert got == [("Buy", "0.1", "100"), ("Buy", "0.2", "101")]
    assert all(Decimal(row[header.index("commissionAmount")]) > 0 for row in rows[1:])


async def test_external_orders_report_without_hedges_is_an_empty_file_with_its_header(
    client, container, alice
):
    report_id = await create(
        client, alice, {"reportName": "Ext", "source": "ExternalOrders", "format": "Csv"}
    )
    await run_all(container)
    assert (await get(client, alice, report_id))["statusType"] == "Completed"
    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    rows = read_csv(r.content)
    assert rows[0][0] == "externalOrderId" and len(rows) == 1


async def test_commissions_source_names_pick_the_breakdown(client, container, alice):
    for name, first_column in (
        (None, "userId"),
        ("commissions/assets", "assetId"),
        ("commissions/users", "userId"),
    ):
        body = {"reportName": "Fees", "source": "Commissions", "format": "Csv"}
        if name:
            body["sourceName"] = name
        report_id = await create(client, alice, body)
        await run_all(container)
        report = await get(client, alice, report_id)
        assert report["sourceName"] == (name or "commissions/accounts-assets")
        r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
        assert read_csv(r.content)[0][0] == first_column
    r = await client.post(REPORTS, headers=alice.headers, json={**body, "sourceName": "trades"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "sourceName"


async def test_a_report_whose_owner_lost_the_permission_fails_with_a_reason_and_staff_are_told(
    client, container, alice, mailbox
):
    report_id = await create(
        client,
        alice,
        {"reportName": "Trades", "source": "Trades", "format": "Csv", "notifyEmails": ["a@example.com"]},
    )
    await container.identity.revoke_role("alice", "accountant")
    await run_all(container)
    report = await container.reports.get(alice.principal, report_id)
    assert report.status is ReportStatus.FAILED
    assert "view-trades" in report.status_reason or "manage-reports" in report.status_reason

    notes = await container.notifications.admin_list(ADMIN, NotificationQuery())
    failed = [n for n in notes if n.type == "ReportFailed"]
    assert len(failed) == 1 and failed[0].data["reportId"] == report_id
    assert failed[0].data["reason"] == report.status_reason

    (mail,) = await mailbox.wait_for(1)
    assert mail["Subject"] == "Report failed: Trades"
    assert report.status_reason in mail.get_body(("plain",)).get_content()


async def test_a_spreadsheet_report_over_the_sheet_limit_fails_instead_of_cutting_rows(
    client, container, alice, funded, monkeypatch
):
    monkeypatch.setattr("bourse.service.reports.XLSX_MAX_ROWS", 2)
    report_id = await create(client, alice, transfers_report(format="Xlsx"))
    await run_all(container)
    report = await get(client, alice, report_id)
    assert report["statusType"] == "Failed"
    assert "use Csv" in report["statusReason"]
    assert list((container.settings.data_dir / "reports").iterdir()) == [], "no partial file is left"


async def test_expired_reports_no_longer_download_and_their_files_are_deleted(
    client, container, alice, funded, clock
):
    report_id = await create(client, alice, transfers_report())
    await run_all(container)
    files = container.settings.data_dir / "reports"
    assert [p.name for p in files.iterdir()] == [f"{report_id}.csv"]
    assert await container.reports.expire_files() == 0

    clock.advance(days=7)
    alice.headers = bearer(await login(client, "alice", "alice-pass-123"))  # the old token expired too
    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    assert r.status_code == 404
    assert r.json()["details"]["reason"] == "expired"
    assert await container.reports.expire_files() == 1
    assert list(files.iterdir()) == []
    assert (await get(client, alice, report_id))["statusType"] == "Completed", "it still lists"
    assert await container.reports.expire_files() == 0


async def test_deleting_a_report_removes_it_and_its_file(client, container, alice, funded):
    report_id = await create(client, alice, transfers_report())
    await run_all(container)
    r = await client.delete(f"{REPORTS}/{report_id}", headers=alice.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"{REPORTS}/{report_id}", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"{REPORTS}/{report_id}", headers=alice.headers)).status_code == 404
    assert list((container.settings.data_dir / "reports").iterdir()) == []


async def test_a_report_deleted_while_it_runs_leaves_no_file(client, container, alice, funded):
    report_id = await create(client, alice, transfers_report())
    claimed = await container.reports.claim()
    assert (await client.delete(f"{REPORTS}/{report_id}", headers=alice.headers)).status_code == 204
    await container.reports.process(claimed)
    assert list((container.settings.data_dir / "reports").iterdir()) == []


async def test_a_report_whose_process_died_is_claimed_again_and_gives_up_after_three_tries(
    client, container, alice, funded, clock
):
    report_id = await create(client, alice, transfers_report())
    for attempt in (1, 2, 3):
        claimed = await container.reports.claim()
        assert claimed is not None and claimed.attempts == attempt
        assert await container.reports.claim() is None, "leased"
        clock.advance(seconds=container.reports.timeout_seconds + 61)
    last = await container.reports.claim()
    await container.reports.process(last)
    report = await container.reports.get(alice.principal, report_id)
    assert report.status is ReportStatus.FAILED
    assert "gave up after 3 attempts" in report.status_reason


async def test_list_is_the_callers_newest_first_with_paging(client, container, alice, clock):
    ids = []
    for i in range(3):
        ids.append(await create(client, alice, transfers_report(reportName=f"r{i}")))
        clock.advance(seconds=1)
    r = await client.get(REPORTS, headers=alice.headers)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["data"]] == ids[::-1]
    r = await client.get(REPORTS, headers=alice.headers, params={"limit": 1, "offset": 1})
    assert [x["id"] for x in r.json()["data"]] == [ids[1]]
    assert (await client.get(REPORTS, headers=alice.headers, params={"limit": 0})).status_code == 400
    assert (await client.get(REPORTS, headers=alice.headers, params={"offset": "x"})).status_code == 400


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "Unspecified"}, "source"),
        ({"source": None}, "source"),
        ({"format": "Pdf"}, "format"),
        ({"format": "Unspecified"}, "format"),
        ({"reportName": ""}, "reportName"),
        ({"reportName": "x" * 201}, "reportName"),
        ({"notifyEmails": ["not-an-address"]}, "notifyEmails[0]"),
        ({"notifyEmails": ["a@example.com\r\nBcc: evil@example.com"]}, "notifyEmails[0]"),
        ({"notifyEmails": "a@example.com"}, "notifyEmails"),
        ({"filters": [{"entryType": "Equals", "field": "nope", "value": 1}]}, "filters[0].field"),
        (
            {"filters": [{"entryType": "Contains", "field": "assetAmount", "value": "1"}]},
            "filters[0].entryType",
        ),
        ({"filters": [{"entryType": "Equals", "field": "type", "value": "Gift"}]}, "filters[0].value"),
        ({"filters": {"field": "type"}}, "filters"),
        ({"sorting": {"field": "nope"}}, "sorting.field"),
        ({"sorting": {"field": "createdAt", "direction": "Up"}}, "sorting.direction"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_bad_report_is_refused_naming_the_field(client, alice, change, field):
    r = await client.post(REPORTS, headers=alice.headers, json=transfers_report(**change))
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field
    assert (await client.get(REPORTS, headers=alice.headers)).json()["data"] == []


async def test_a_body_that_is_not_an_object_is_refused(client, alice):
    r = await client.post(REPORTS, headers=alice.headers, content=b"[1]")
    assert r.status_code == 400
    r = await client.post(REPORTS, headers=alice.headers, content=b"{nope")
    assert r.status_code == 400


# --- templates --------------------------------------------------------------------------------------


async def test_templates_create_get_list_update_run_and_delete(client, container, alice, funded, clock):
    r = await client.post(TEMPLATES, headers=alice.headers, json=template_body())
    assert r.status_code == 200, r.text
    template_id = r.json()["id"]
    r = await client.get(f"{TEMPLATES}/{template_id}", headers=alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert body == {
        "id": template_id,
        "templateName": "Daily deposits",
        "source": "Transfers",
        "sourceName": "transfers",
        "schedule": {"baseDate": "2030-01-01T06:00:00.000Z", "frequency": "Daily", "daysOfWeek": []},
        "filters": [],
        "sorting": {"field": "createdAt", "direction": "Desc"},
        "notifyEmails": ["finance@example.com"],
        "createdAt": body["createdAt"],
        "createdBy": "alice",
        "updatedAt": None,
        "updatedBy": None,
        "deletedAt": None,
        "deletedBy": None,
        "format": "Xlsx",
    }
    r = await client.get(TEMPLATES, headers=alice.headers)
    assert [t["id"] for t in r.json()["data"]] == [template_id]

    clock.advance(minutes=5)
    weekly = {
        "baseDate": "2030-01-01T06:00:00.000Z",
        "frequency": "Weekly",
        "daysOfWeek": ["Friday", "Monday"],
    }
    r = await client.put(
        f"{TEMPLATES}/{template_id}",
        headers=alice.headers,
        json=template_body(
            templateId=template_id, templateName="Weekly deposits", schedule=weekly, format="Csv"
        ),
    )
    assert r.status_code == 204 and r.content == b""
    body = (await client.get(f"{TEMPLATES}/{template_id}", headers=alice.headers)).json()
    assert body["templateName"] == "Weekly deposits" and body["format"] == "Csv"
    assert body["schedule"]["daysOfWeek"] == ["Monday", "Friday"]
    assert body["updatedBy"] == "alice" and body["updatedAt"] > body["createdAt"]

    r = await client.post(f"{TEMPLATES}/{template_id}/run", headers=alice.headers)
    assert r.status_code == 200
    report_id = r.json()["reportId"]
    report = await get(client, alice, report_id)
    assert report["templateId"] == template_id and report["templateName"] == "Weekly deposits"
    assert report["format"] == "Csv" and report["notifyEmails"] == ["finance@example.com"]
    await run_all(container)
    assert (await get(client, alice, report_id))["statusType"] == "Completed"

    r = await client.delete(f"{TEMPLATES}/{template_id}", headers=alice.headers)
    assert r.status_code == 204
    gone = (await client.get(f"{TEMPLATES}/{template_id}", headers=alice.headers)).json()
    assert gone["deletedBy"] == "alice" and gone["deletedAt"] is not None
    assert (await client.get(TEMPLATES, headers=alice.headers)).json()["data"] == []
    assert (await client.post(f"{TEMPLATES}/{template_id}/run", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"{TEMPLATES}/{template_id}", headers=alice.headers)).status_code == 404
    r = await client.put(f"{TEMPLATES}/{template_id}", headers=alice.headers, json=template_body())
    assert r.status_code == 404
    assert (await get(client, alice, report_id))["templateName"] == "Weekly deposits", "its reports stay"
    # The name is free again once its template is deleted.
    r = await client.post(
        TEMPLATES, headers=alice.headers, json=template_body(templateName="Weekly deposits")
    )
    assert r.status_code == 200


async def test_template_names_are_unique_per_owner(client, alice, bob):
    assert (await client.post(TEMPLATES, headers=alice.headers, json=template_body())).status_code == 200
    r = await client.post(TEMPLATES, headers=alice.headers, json=template_body())
    assert r.status_code == 409 and r.json()["details"]["field"] == "templateName"
    assert (await client.post(TEMPLATES, headers=bob.headers, json=template_body())).status_code == 200
    other = (
        await client.post(TEMPLATES, headers=alice.headers, json=template_body(templateName="Other"))
    ).json()
    r = await client.put(f"{TEMPLATES}/{other['id']}", headers=alice.headers, json=template_body())
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (None, "schedule"),
        ({"frequency": "Daily"}, "schedule.baseDate"),
        ({"baseDate": "2030-01-01T06:00:00", "frequency": "Daily"}, "schedule.baseDate"),
        ({"baseDate": "2030-01-01T06:00:00Z", "frequency": "Hourly"}, "schedule.frequency"),
        (
            {"baseDate": "2030-01-01T06:00:00Z", "frequency": "Weekly", "daysOfWeek": ["Funday"]},
            "schedule.daysOfWeek[0]",
        ),
        (
            {"baseDate": "2030-01-01T06:00:00Z", "frequency": "Monthly", "daysOfWeek": ["Monday"]},
            "schedule.daysOfWeek",
        ),
        ({"baseDate": "2030-01-01T06:00:00Z", "frequency": "Daily", "dayOfMonth": 3}, "dayOfMonth"),
    ],
)
async def test_a_bad_schedule_is_refused(client, alice, schedule, field):
    r = await client.post(TEMPLATES, headers=alice.headers, json=template_body(schedule=schedule))
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field


async def test_put_with_another_template_id_in_the_body_is_refused(client, alice):
    template_id = (await client.post(TEMPLATES, headers=alice.headers, json=template_body())).json()["id"]
    r = await client.put(
        f"{TEMPLATES}/{template_id}", headers=alice.headers, json=template_body(templateId=str(uuid.uuid4()))
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "templateId"


async def test_template_filters_are_validated_like_the_history_server(client, alice):
    r = await client.post(
        TEMPLATES,
        headers=alice.headers,
        json=template_body(filters=[{"entryType": "Between", "field": "createdAt", "value": ["x", "y"]}]),
    )
    assert r.status_code == 400 and r.json()["details"]["field"].startswith("filters[0].value")


# --- who may call what ----------------------------------------------------------------------------


async def test_every_route_needs_a_token(client):
    some = str(uuid.uuid4())
    calls = [
        ("POST", REPORTS),
        ("GET", REPORTS),
        ("GET", f"{REPORTS}/{some}"),
        ("DELETE", f"{REPORTS}/{some}"),
        ("GET", f"{REPORTS}/{some}/download"),
        ("GET", TEMPLATES),
        ("POST", TEMPLATES),
        ("GET", f"{TEMPLATES}/{some}"),
        ("PUT", f"{TEMPLATES}/{some}"),
        ("DELETE", f"{TEMPLATES}/{some}"),
        ("POST", f"{TEMPLATES}/{some}/run"),
    ]
    for method, url in calls:
        r = await client.request(method, url, json={})
        assert r.status_code == 401, (method, url)


async def test_roles_without_report_operations_get_403(client, container, alice):
    report_id = await create(client, alice, transfers_report())
    template_id = (await client.post(TEMPLATES, headers=alice.headers, json=template_body())).json()["id"]
    trader = await person(client, container, "tom", Role.TRADER)
    support = await person(client, container, "sue", Role.SUPPORT)
    for who in (trader, support):
        for method, url in [
            ("POST", REPORTS),
            ("GET", REPORTS),
            ("GET", f"{REPORTS}/{report_id}"),
            ("DELETE", f"{REPORTS}/{report_id}"),
            ("GET", f"{REPORTS}/{report_id}/download"),
            ("GET", TEMPLATES),
            ("POST", TEMPLATES),
            ("GET", f"{TEMPLATES}/{template_id}"),
            ("PUT", f"{TEMPLATES}/{template_id}"),
            ("DELETE", f"{TEMPLATES}/{template_id}"),
            ("POST", f"{TEMPLATES}/{template_id}/run"),
        ]:
            r = await client.request(method, url, headers=who.headers, json=transfers_report())
            assert r.status_code == 403, (who.username, method, url, r.text)
    assert (await get(client, alice, report_id))["statusType"] == "New"


async def test_one_user_never_reaches_anothers_reports_or_templates(client, container, alice, bob, funded):
    report_id = await create(client, alice, transfers_report())
    template_id = (await client.post(TEMPLATES, headers=alice.headers, json=template_body())).json()["id"]
    await run_all(container)
    admin = await person(client, container, "root", Role.ADMIN)
    for who in (bob, admin):
        assert (await client.get(REPORTS, headers=who.headers)).json()["data"] == []
        assert (await client.get(TEMPLATES, headers=who.headers)).json()["data"] == []
        for method, url in [
            ("GET", f"{REPORTS}/{report_id}"),
            ("GET", f"{REPORTS}/{report_id}/download"),
            ("DELETE", f"{REPORTS}/{report_id}"),
            ("GET", f"{TEMPLATES}/{template_id}"),
            ("PUT", f"{TEMPLATES}/{template_id}"),
            ("DELETE", f"{TEMPLATES}/{template_id}"),
            ("POST", f"{TEMPLATES}/{template_id}/run"),
        ]:
            body = template_body() if method == "PUT" else None
            r = await client.request(method, url, headers=who.headers, json=body)
            assert r.status_code == 404, (who.username, method, url, r.text)
            assert "Deposits" not in r.text
    # Still alice's, untouched.
    assert (await get(client, alice, report_id))["statusType"] == "Completed"
    r = await client.get(f"{REPORTS}/{report_id}/download", headers=alice.headers)
    assert r.status_code == 200
    assert (await client.get(f"{TEMPLATES}/{template_id}", headers=alice.headers)).json()["deletedAt"] is None


async def test_unknown_and_malformed_ids_are_404(client, alice):
    for url in (f"{REPORTS}/{uuid.uuid4()}", f"{REPORTS}/not-a-uuid", f"{REPORTS}/../x", f"{TEMPLATES}/nope"):
        assert (await client.get(url, headers=alice.headers)).status_code == 404, url
    assert (await client.get(f"{REPORTS}/not-a-uuid/download", headers=alice.headers)).status_code == 404


async def test_scheduler_turns_a_due_template_into_one_report_per_due_time(client, container, alice, clock):
    base = clock.now().replace(microsecond=0) + timedelta(minutes=1)
    schedule = {"baseDate": base.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "frequency": "Daily"}
    template_id = (
        await client.post(TEMPLATES, headers=alice.headers, json=template_body(schedule=schedule))
    ).json()["id"]
    assert await container.reports.schedule_due() == 0
    clock.advance(minutes=1)
    assert await container.reports.schedule_due() == 1
    assert await container.reports.schedule_due() == 0, "the same due time is not run twice"
    clock.advance(days=3)  # three missed runs collapse into one
    assert await container.reports.schedule_due() == 1
    reports = await container.reports.list_reports(alice.principal)
    assert len(reports) == 2 and {r.template_id for r in reports} == {template_id}
    assert [r.due_at for r in reports] == [base + timedelta(days=3), base]
    assert reports[1].name == f"Daily deposits {base:%Y-%m-%d %H:%M}"


async def test_a_report_interrupted_by_a_stopping_process_is_handed_back(
    client, container, alice, funded, monkeypatch
):
    report_id = await create(client, alice, transfers_report())
    started = asyncio.Event()

    async def slow(report):
        started.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(container.reports, "_produce", slow)
    task = asyncio.create_task(container.reports.work_once())
    await started.wait()
    assert (await get(client, alice, report_id))["statusType"] == "InProgress"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await get(client, alice, report_id))["statusType"] == "New"
    monkeypatch.undo()
    again = await container.reports.claim()
    assert again is not None and again.id == report_id and again.attempts == 2
    await container.reports.process(again)
    assert (await get(client, alice, report_id))["statusType"] == "Completed"
