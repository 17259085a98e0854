"""Markets file import (CSV, XLSX) and export, through the background job."""

import asyncio
import csv
import io

import openpyxl
import pytest

from bourse.domain.identity import Role
from bourse.jobs.runner import market_files_job
from bourse.service import market_files as market_files_service
from tests.conftest import bearer, login

BO = "/back-api/backoffice/v2"
HEADER = ["marketId", "baseAssetId", "quoteAssetId", "priceScale", "amountScale", "tickSize", "minAmount"]

DERIVATIVE = {
    "baseAssetId": "ETH",
    "quoteAssetId": "USDT",
    "marketId": "ETH-PERP",
    "type": "Perpetual",
    "displayName": "=ETH perp",  # a spreadsheet would run this as a formula, were it not kept as text
    "priceScale": 2,
    "amountScale": 3,
    "lotSize": 10,
    "minLotAmount": "0.5",
    "maxLotAmount": 1000,
    "maxLeverage": 20,
    "isConstLeverage": True,
    "swapSettings": {
        "type": "Percent",
        "shortPositionSettings": {"swapSize": "0.01", "assetId": "USDT"},
        "longPositionSettings": {"swapSize": "-0.02", "assetId": "USDT"},
    },
    "tradingSessionIds": ["ts-1"],
    "marketDataSessionIds": ["md-1", "md;2"],
    "isOtc": True,
    "isHidden": True,
    "calendar": {
        "timeZoneId": "America/New_York",
        "tradingSessions": [
            {"dayOfWeek": "Monday", "timeIntervals": [{"start": "09:30:00", "end": "16:00:00"}]}
        ],
        "sessionOverrides": [{"date": "2025-12-25", "timeIntervals": []}],
    },
    "fundingStartTime": "08:00:00",
    "fundingIntervalInHours": 8,
}


@pytest.fixture
async def staff(client, container):
    await container.identity.create_user("ops", "ops-pass-123", roles=(Role.ADMIN,))
    return bearer(await login(client, "ops", "ops-pass-123"))


@pytest.fixture
async def trader(client, container):
    await container.identity.create_user("alice", "alice-pass-1")
    return bearer(await login(client, "alice", "alice-pass-1"))


@pytest.fixture
async def assets(container):
    for asset, scale in (("BTC", 8), ("ETH", 8), ("USDT", 6), ("EUR", 2)):
        await container.ledger.create_asset(asset, asset, scale, "Crypto")


def csv_bytes(rows):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(client, staff, content, name="markets.csv"):
    r = await client.post(f"{BO}/markets/file", headers=staff, files={"file": (name, content, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "InProcess"
    return r.json()["id"]


async def status(client, staff, file_id):
    r = await client.get(f"{BO}/markets/file/{file_id}", headers=staff)
    assert r.status_code == 200, r.text
    return r.json()


async def run_jobs(container):
    while await container.market_files.process_next():
        pass


async def market(client, staff, market_id):
    return await client.get(f"{BO}/markets/{market_id}", headers=staff)


# --- import -------------------------------------------------------------------------------------


async def test_csv_import_creates_markets(client, container, staff, assets):
    content = csv_bytes(
        [
            HEADER,
            ["BTCUSDT", "BTC", "USDT", "2", "6", "0.01", "0.0001"],
            ["", "ETH", "USDT", "1", "3", "", ""],
        ]
    )
    file_id = await upload(client, staff, content)
    assert (await status(client, staff, file_id))["status"] == "InProcess"
    assert (await market(client, staff, "BTCUSDT")).status_code == 404  # nothing before the job runs
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert {k: got[k] for k in ("status", "created", "updated", "errors", "incorrectRows")} == {
        "status": "Completed",
        "created": 2,
        "updated": 0,
        "errors": 0,
        "incorrectRows": [],
    }
    assert (got["fileName"], got["format"], got["rowErrors"], got["error"]) == (
        "markets.csv",
        "Csv",
        [],
        None,
    )
    btc = (await market(client, staff, "BTCUSDT")).json()
    assert (btc["priceScale"], btc["amountScale"], btc["tickSize"], btc["minAmount"]) == (
        2,
        6,
        "0.01",
        "0.0001",
    )
    # empty cells of fields that cannot be null take the defaults; the id is derived
    eth = (await market(client, staff, "ETHUSDT")).json()
    assert (eth["tickSize"], eth["lotStep"], eth["minAmount"], eth["displayName"]) == (
        "0.1",
        "0.001",
        "0.001",
        "ETH/USDT",
    )


async def test_xlsx_import_reads_typed_cells(client, container, staff, assets):
    header = [
        "marketId",
        "baseAssetId",
        "quoteAssetId",
        "priceScale",
        "amountScale",
        "tickSize",
        "lotStep",
        "minAmount",
        "isOtc",
        "maxBaseAmount",
        "priceDeviation",
        "externalTtl",
    ]
    content = xlsx_bytes(
        [
            header,
            # numbers typed into a spreadsheet arrive as numbers: 0.1 and 0.0001 must stay exact
            ["BTCUSDT", "BTC", "USDT", 2, 4.0, 0.01, 0.0001, 0.0003, True, None, 0.1, 30],
            [None] * len(header),  # blank rows are skipped
            ["ETHEUR", "ETH", "EUR", "2", "3", "0.05", "0.001", "0.001", "FALSE", "1000", "0.2", None],
        ]
    )
    file_id = await upload(client, staff, content, name="Markets.XLSX")
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert (got["status"], got["created"], got["errors"], got["format"]) == ("Completed", 2, 0, "Xlsx"), got
    btc = (await market(client, staff, "BTCUSDT")).json()
    assert (btc["amountScale"], btc["tickSize"], btc["lotStep"], btc["minAmount"], btc["priceDeviation"]) == (
        4,
        "0.01",
        "0.0001",
        "0.0003",
        "0.1",
    )
    assert (btc["isOtc"], btc["maxBaseAmount"], btc["externalTtl"]) == (True, None, 30)
    eth = (await market(client, staff, "ETHEUR")).json()
    assert (eth["isOtc"], eth["maxBaseAmount"], eth["tickSize"]) == (False, "1000", "0.05")


async def test_rows_create_update_or_fail_alone(client, container, staff, assets):
    r = await client.post(
        f"{BO}/markets",
        headers=staff,
        json={
            "baseAssetId": "BTC",
            "quoteAssetId": "USDT",
            "priceScale": 2,
            "amountScale": 4,
            "maxBaseAmount": "5",
        },
    )
    assert r.status_code == 201
    r = await client.post(
        f"{BO}/markets",
        headers=staff,
        json={"baseAssetId": "ETH", "quoteAssetId": "USDT", "priceScale": 2, "amountScale": 4},
    )
    before_eth = (await market(client, staff, "ETHUSDT")).json()
    header = [
        "marketId",
        "baseAssetId",
        "quoteAssetId",
        "priceScale",
        "amountScale",
        "tickSize",
        "status",
        "maxBaseAmount",
    ]
    content = csv_bytes(
        [
            header,
            # 2: an update (the empty cell clears maxBaseAmount)
            ["BTCUSDT", "BTC", "USDT", "2", "4", "0.5", "Halted", ""],
            ["ETHUSDT", "ETH", "USDT", "2", "4", "0.01", "Active", ""],  # 3: exactly as it is
            ["XRPUSDT", "XRP", "USDT", "2", "4", "", "", ""],  # 4: unknown asset
            ["ETHEUR", "ETH", "EUR", "2", "4", "0.001", "", ""],  # 5: tick finer than priceScale
            ["BTCEUR", "BTC", "EUR", "two", "4", "", "", ""],  # 6: not an integer
            ["ETHUSDT", "ETH", "EUR", "2", "4", "", "", ""],  # 7: a market never changes its quote
            [],
            ["BTCEUR", "BTC", "EUR", "2", "4", "", "", "7"],  # 9: create
            ["ETHBTC", "ETH", "BTC", "2", "4", "", "Sleeping", ""],  # 10: unknown status
        ]
    )
    file_id = await upload(client, staff, content)
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert {k: got[k] for k in ("status", "created", "updated", "unchanged", "errors", "incorrectRows")} == {
        "status": "Completed",
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "errors": 5,
        "incorrectRows": [4, 5, 6, 7, 10],
    }
    assert [(e["row"], e["field"]) for e in got["rowErrors"]] == [
        (4, "baseAssetId"),
        (5, "tickSize"),
        (6, "priceScale"),
        (7, "quoteAssetId"),
        (10, "status"),
    ]
    assert all(e["message"] for e in got["rowErrors"])
    btc = (await market(client, staff, "BTCUSDT")).json()
    assert (btc["tickSize"], btc["status"], btc["maxBaseAmount"]) == ("0.5", "Halted", None)
    assert (await market(client, staff, "ETHUSDT")).json() == before_eth  # not even updatedAt moved
    assert (await market(client, staff, "BTCEUR")).json()["maxBaseAmount"] == "7"
    # a bad row leaves nothing behind: no market, no audit entry
    for missing in ("XRPUSDT", "ETHEUR", "ETHBTC"):
        assert (await market(client, staff, missing)).status_code == 404
    async with container.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT action, subject, request_id IS NOT NULL FROM audit_log"
                " WHERE action LIKE 'market.%' AND actor = 'ops' ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows][2:] == [
        ("market.updated", "market:BTCUSDT", True),
        ("market.created", "market:BTCEUR", True),
    ]


async def test_a_file_that_cannot_be_read_fails_whole(client, container, staff, assets):
    unknown_column = await upload(client, staff, csv_bytes([["marketId", "colour"], ["BTCUSDT", "red"]]))
    no_id = await upload(client, staff, csv_bytes([["priceScale"], ["2"]]))
    duplicate = await upload(client, staff, csv_bytes([["marketId", "MarketId"], ["A", "B"]]))
    not_a_workbook = await upload(client, staff, b"PK\x03\x04 not really a zip", name="m.xlsx")
    wide = [["marketId"], ["BTCUSDT", *[None] * 99, "column 101"]]
    wide_xlsx = await upload(client, staff, xlsx_bytes(wide), name="m.xlsx")
    wide_csv = await upload(client, staff, csv_bytes([["marketId"], ["BTCUSDT", *[""] * 99, "x"]]))
    await run_jobs(container)
    for file_id, words in (
        (unknown_column, "colour"),
        (no_id, "marketId"),
        (duplicate, "twice"),
        (not_a_workbook, "XLSX"),
        (wide_xlsx, "more than 100 columns"),
        (wide_csv, "more than 100 columns"),
    ):
        got = await status(client, staff, file_id)
        assert (got["status"], got["created"], got["errors"]) == ("Failed", 0, 0), got
        assert words in got["error"]
    assert (await client.post(f"{BO}/markets/list", headers=staff, json={})).json() == {"markets": []}


async def test_too_many_rows_fail_whole(client, container, staff, assets, monkeypatch):
    monkeypatch.setattr("bourse.domain.market_files.MAX_ROWS", 2)
    monkeypatch.setattr(market_files_service, "MAX_ROWS", 2)
    rows = [HEADER] + [[f"M{i}USDT", "BTC", "USDT", "2", "4", "", ""] for i in range(3)]
    file_id = await upload(client, staff, csv_bytes(rows))
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert got["status"] == "Failed" and "more than 2 rows" in got["error"]
    assert (await market(client, staff, "M0USDT")).status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("m.csv", b"", "empty"),
        ("m.xls", b"\xd0\xcf\x11\xe0old excel", ".csv or an .xlsx"),
        ("m.xlsx", b"marketId\nBTCUSDT\n", "XLSX"),
        ("m.csv", "marketId\nBTCUSDT\n".encode("utf-16"), "UTF-8"),
    ],
)
async def test_upload_refuses_what_is_no_markets_file(client, staff, name, content, words):
    r = await client.post(f"{BO}/markets/file", headers=staff, files={"file": (name, content)})
    assert r.status_code == 400
    assert r.json()["details"]["field"] == "file" and words in r.json()["message"]


async def test_upload_size_limit_and_shape(client, staff):
    big = b"marketId\n" + b"A" * (5 * 1024 * 1024)
    r = await client.post(f"{BO}/markets/file", headers=staff, files={"file": ("m.csv", big)})
    assert r.status_code == 400 and "larger than" in r.json()["message"]
    r = await client.post(f"{BO}/markets/file", headers=staff, files={"other": ("m.csv", b"marketId\n")})
    assert r.status_code == 400 and r.json()["details"]["field"] == "file"
    r = await client.post(f"{BO}/markets/file", headers=staff, json={"file": "marketId"})
    assert r.status_code == 400


async def test_status_lookups(client, staff, container, assets):
    assert (
        await client.get(f"{BO}/markets/file/123e4567-e89b-12d3-a456-426614174000", headers=staff)
    ).status_code == 404
    assert (await client.get(f"{BO}/markets/file/not-a-uuid", headers=staff)).status_code == 400
    file_id = await upload(client, staff, csv_bytes([HEADER]))
    # an import is not an export, and the other way round
    assert (await client.get(f"{BO}/markets/download/{file_id}", headers=staff)).status_code == 404
    export_id = (await client.get(f"{BO}/markets/download", headers=staff)).json()["id"]
    assert (await client.get(f"{BO}/markets/file/{export_id}", headers=staff)).status_code == 404


# --- export -------------------------------------------------------------------------------------


async def export(client, container, staff, fmt):
    r = await client.get(f"{BO}/markets/download", headers=staff, params={"format": fmt})
    assert r.status_code == 200, r.text
    started = r.json()
    assert started["status"] == "InProcess" and set(started) == {"id", "status"}
    # not ready yet
    r = await client.get(f"{BO}/markets/download/{started['id']}/file", headers=staff)
    assert r.status_code == 409
    await run_jobs(container)
    state = (await client.get(f"{BO}/markets/download/{started['id']}", headers=staff)).json()
    assert state["status"] == "Completed" and state["format"] == fmt
    r = await client.get(f"{BO}/markets/download/{started['id']}/file", headers=staff)
    assert r.status_code == 200
    assert state["fileName"] in r.headers["content-disposition"]
    return r


async def all_markets(client, staff):
    markets = (await client.post(f"{BO}/markets/list", headers=staff, json={})).json()["markets"]
    for m in markets:
        m.pop("updatedAt")
    return markets


@pytest.mark.parametrize("fmt", ["Csv", "Xlsx"])
async def test_export_round_trips_through_import(client, container, staff, assets, fmt):
    for body in (
        DERIVATIVE,
        {
            "baseAssetId": "BTC",
            "quoteAssetId": "USDT",
            "priceScale": 2,
            "amountScale": 6,
            "maxBaseAmount": "100",
            "minQuoteAmount": "10",
            "subtype": "+main",
            "marketGroupId": "majors",
        },
        {
            "baseAssetId": "BTC",
            "quoteAssetId": "EUR",
            "priceScale": 1,
            "amountScale": 8,
            "status": "CloseOnly",
        },
    ):
        r = await client.post(f"{BO}/markets", headers=staff, json=body)
        assert r.status_code == 201, r.text
    exported = await all_markets(client, staff)
    r = await export(client, container, staff, fmt)
    content = r.content
    if fmt == "Csv":
        assert r.headers["content-type"].startswith("text/csv")
        lines = content.decode().splitlines()
        assert lines[0].startswith("marketId,baseAssetId,quoteAssetId,type,displayName")
        assert len(lines) == 4
        assert "'=ETH perp" in content.decode()  # escaped for spreadsheet programs
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
        cells = {c.value: c for row in sheet.iter_rows() for c in row}
        assert cells["=ETH perp"].data_type == "s"  # text, not a formula
    # change the markets, then import the export: they are as they were
    for market_id, change in (
        ("ETH-PERP", {"maxLeverage": 5, "calendar": None, "displayName": "changed"}),
        ("BTCUSDT", {"maxBaseAmount": None, "tickSize": "0.05", "marketDataSessionIds": ["x"]}),
    ):
        r = await client.put(f"{BO}/markets/{market_id}", headers=staff, json=change)
        assert r.status_code == 204, r.text
    file_id = await upload(client, staff, content, name=f"export.{fmt.lower()}")
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert (got["status"], got["created"], got["updated"], got["unchanged"], got["errors"]) == (
        "Completed",
        0,
        2,
        1,
        0,
    ), got
    assert await all_markets(client, staff) == exported


async def test_export_of_no_markets_is_a_header(client, container, staff):
    r = await export(client, container, staff, "Csv")
    assert r.content.decode().count("\n") == 1


# --- the job ------------------------------------------------------------------------------------


async def test_workers_never_share_a_file(client, container, staff, assets):
    ids = [
        await upload(client, staff, csv_bytes([HEADER, [f"M{i}USDT", "BTC", "USDT", "2", "4", "", ""]]))
        for i in range(4)
    ]
    processed = await asyncio.gather(*(container.market_files.process_next() for _ in range(6)))
    assert sum(processed) == 4
    for file_id in ids:
        got = await status(client, staff, file_id)
        assert (got["status"], got["created"], got["updated"], got["unchanged"]) == ("Completed", 1, 0, 0)


async def test_a_file_left_by_a_dead_worker_is_resumed_after_its_lease(
    client, container, staff, assets, clock, monkeypatch
):
    monkeypatch.setattr(market_files_service, "CHUNK", 2)
    rows = [HEADER] + [[f"M{i}USDT", "BTC", "USDT", "2", "4", "", ""] for i in range(5)]
    file_id = await upload(client, staff, csv_bytes(rows))
    markets = container.markets
    create = markets.create
    calls = []

    async def dying(principal, fields, meta):
        calls.append(fields["marketId"])
        if fields["marketId"] == "M3USDT":
            raise RuntimeError("the worker died")
        return await create(principal, fields, meta)

    monkeypatch.setattr(markets, "create", dying)
    with pytest.raises(RuntimeError):
        await container.market_files.process_next()
    got = await status(client, staff, file_id)
    assert (got["status"], got["created"]) == ("InProcess", 2)  # the first chunk was saved
    # the lease holds: nobody else takes the file
    assert await container.market_files.process_next() is False
    monkeypatch.setattr(markets, "create", create)
    clock.advance(minutes=3)
    assert await container.market_files.process_next() is True
    got = await status(client, staff, file_id)
    # M2USDT was created by the dead worker in the unsaved chunk: applied again, it is unchanged
    assert (got["status"], got["created"], got["unchanged"], got["errors"]) == ("Completed", 4, 1, 0)
    assert calls == ["M0USDT", "M1USDT", "M2USDT", "M3USDT"]
    listed = (await client.post(f"{BO}/markets/list", headers=staff, json={})).json()["markets"]
    assert [m["marketId"] for m in listed] == [f"M{i}USDT" for i in range(5)]


async def test_a_file_that_keeps_killing_workers_is_given_up(
    client, container, staff, assets, clock, monkeypatch
):
    file_id = await upload(client, staff, csv_bytes([HEADER, ["M0USDT", "BTC", "USDT", "2", "4", "", ""]]))

    async def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(container.markets, "create", crash)
    for _ in range(market_files_service.MAX_ATTEMPTS):
        with pytest.raises(RuntimeError):
            await container.market_files.process_next()
        clock.advance(minutes=3)
    assert await container.market_files.process_next() is True
    got = await status(client, staff, file_id)
    assert got["status"] == "Failed" and "given up" in got["error"]


async def test_rows_act_as_the_uploader_when_the_job_runs(client, container, staff, assets):
    await container.identity.create_user("op2", "op2-pass-123", roles=(Role.OPERATOR,))
    operator = bearer(await login(client, "op2", "op2-pass-123"))
    file_id = await upload(client, operator, csv_bytes([HEADER, ["M0USDT", "BTC", "USDT", "2", "4", "", ""]]))
    async with container.uow() as uow:
        user = await uow.users.get_by_username("op2")
        await uow.users.revoke_role(user.uid, Role.OPERATOR)
        await uow.commit()
    await run_jobs(container)
    got = await status(client, staff, file_id)
    assert got["status"] == "Failed" and "no longer manage markets" in got["error"]
    assert (await market(client, staff, "M0USDT")).status_code == 404


async def test_the_background_job_processes_uploads(client, container, staff, assets):
    file_id = await upload(client, staff, csv_bytes([HEADER, ["M0USDT", "BTC", "USDT", "2", "4", "", ""]]))
    job = market_files_job(container, interval=0.05)
    job.start()
    try:
        for _ in range(200):
            if (await status(client, staff, file_id))["status"] != "InProcess":
                break
            await asyncio.sleep(0.05)
    finally:
        await job.stop()
    assert (await status(client, staff, file_id))["created"] == 1


# --- who may call what --------------------------------------------------------------------------

ROUTES = [
    ("POST", f"{BO}/markets/file"),
    ("GET", f"{BO}/markets/file/123e4567-e89b-12d3-a456-426614174000"),
    ("GET", f"{BO}/markets/download"),
    ("GET", f"{BO}/markets/download/123e4567-e89b-12d3-a456-426614174000"),
    ("GET", f"{BO}/markets/download/123e4567-e89b-12d3-a456-426614174000/file"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_manage_markets(client, container, trader, method, path):
    files = {"file": ("m.csv", csv_bytes([HEADER]))} if method == "POST" else None
    assert (await client.request(method, path, files=files)).status_code == 401
    assert (await client.request(method, path, files=files, headers=trader)).status_code == 403
    await container.identity.create_user("sup", "support-pass-1", roles=(Role.SUPPORT,))
    support = bearer(await login(client, "sup", "support-pass-1"))
    assert (await client.request(method, path, files=files, headers=support)).status_code == 403
