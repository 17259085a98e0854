"""Markets in files: the back office's bulk import (CSV or XLSX) and export.

A file is a header row of back-office field names (the JSON body's, e.g.
``marketId``, ``tickSize``) and one market per row. Here a row's cells become
the same field mapping a ``POST``/``PUT /markets`` body is, so a row is checked
by the markets' own rules (``domain/markets.py``), never by a second validator;
only the cell types are read here (a cell holds ``7`` or ``"7"`` where JSON
would have the integer 7).

An empty cell clears an optional field (``maxBaseAmount`` empty = no maximum); for
a field that cannot be null it means "not given": the default on create, the
current value on update. A column missing from the header is not given either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.markets import (
    CREATE_ONLY_FIELDS,
    NOT_NULL_FIELDS,
    Market,
    SwapSettings,
    amount_text,
    calendar_to_json,
)
from bourse.domain.values import format_decimal

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000  # markets (data rows) in one file
MAX_COLUMNS = 100
# An XLSX is a zip: what it may unpack to, so a small upload cannot become gigabytes of XML.
MAX_XLSX_UNPACKED_BYTES = 64 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"


class FileKind(StrEnum):
    IMPORT = "Import"
    EXPORT = "Export"


class FileStatus(StrEnum):
    IN_PROCESS = "InProcess"
    COMPLETED = "Completed"
    FAILED = "Failed"


class FileFormat(StrEnum):
    CSV = "Csv"
    XLSX = "Xlsx"

    @property
    def extension(self) -> str:
        return ".csv" if self is FileFormat.CSV else ".xlsx"

    @property
    def media_type(self) -> str:
        if self is FileFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    JSON = "json"  # an object, as JSON text in the cell (calendar, swapSettings)
    IDS = "ids"  # a list of ids: "a;b;c", or a JSON array


# The file's columns, in the order an export writes them: every field of a back-office market body.
COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("marketId", Kind.TEXT),
    ("baseAssetId", Kind.TEXT),
    ("quoteAssetId", Kind.TEXT),
    ("type", Kind.TEXT),
    ("displayName", Kind.TEXT),
    ("fullName", Kind.TEXT),
    ("subtype", Kind.TEXT),
    ("status", Kind.TEXT),
    ("priceScale", Kind.INT),
    ("amountScale", Kind.INT),
    ("tickSize", Kind.DECIMAL),
    ("lotStep", Kind.DECIMAL),
    ("minAmount", Kind.DECIMAL),
    ("maxBaseAmount", Kind.DECIMAL),
    ("minQuoteAmount", Kind.DECIMAL),
    ("priceDeviation", Kind.DECIMAL),
    ("slippageRate", Kind.DECIMAL),
    ("isOtc", Kind.BOOL),
    ("isHidden", Kind.BOOL),
    ("isSynchronized", Kind.BOOL),
    ("marketGroupId", Kind.TEXT),
    ("calendarId", Kind.TEXT),
    ("calendar", Kind.JSON),
    ("externalTtl", Kind.INT),
    ("internalTtl", Kind.INT),
    ("tradingSessionIds", Kind.IDS),
    ("marketDataSessionIds", Kind.IDS),
    ("lotSize", Kind.INT),
    ("minLotAmount", Kind.DECIMAL),
    ("maxLotAmount", Kind.INT),
    ("swapSettings", Kind.JSON),
    ("maxLeverage", Kind.INT),
    ("isConstLeverage", Kind.BOOL),
    ("fundingStartTime", Kind.TEXT),
    ("fundingIntervalInHours", Kind.INT),
)
COLUMN_KINDS: Mapping[str, Kind] = dict(COLUMNS)
HEADER: tuple[str, ...] = tuple(name for name, _ in COLUMNS)
_BY_LOWER = {name.lower(): name for name in HEADER}
# Left empty, these fields are "not given" rather than null (they cannot be null).
_EMPTY_MEANS_ABSENT = NOT_NULL_FIELDS | CREATE_ONLY_FIELDS


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # the row's number in the file, the header being row 1
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class MarketFile:
    """An import or export and how far it got. ``created``/``updated``/``row_errors`` are an import's."""

    id: str
    kind: FileKind
    format: FileFormat
    status: FileStatus
    file_name: str
    requested_by: str
    created_at: datetime
    updated_at: datetime
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # rows naming an existing market exactly as it is (nothing written)
    row_errors: tuple[RowError, ...] = ()
    error: str | None = None  # why the whole file failed

    @property
    def incorrect_rows(self) -> list[int]:
        return sorted({e.row for e in self.row_errors})


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a running import stands: the next data row (0-based, blank rows skipped) and the tallies."""

    next_row: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    row_errors: tuple[RowError, ...] = field(default=())


# A sheet as read: (row number in the file, cells) for every row that is not blank.
Sheet = Sequence[tuple[int, Sequence[object]]]


def detect_format(file_name: str | None, content: bytes) -> FileFormat:
    """CSV or XLSX, by the name's extension, else by the content (an XLSX is a zip)."""
    if not content:
        raise InvalidInput("the file is empty", field="file")
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_FILE_BYTES} bytes", field="file")
    name = (file_name or "").lower()
    is_zip = content.startswith(XLSX_MAGIC)
    if name.endswith(".xlsx") or (not name.endswith(".csv") and is_zip):
        if not is_zip:
            raise InvalidInput("the file is not an XLSX workbook", field="file")
        return FileFormat.XLSX
    if name and "." in name and not name.endswith(".csv"):
        raise InvalidInput("the file must be a .csv or an .xlsx", field="file")
    try:
        content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("a CSV file must be UTF-8 text", field="file") from None
    return FileFormat.CSV


def parse_header(cells: Sequence[object]) -> list[str | None]:
    """The field each column holds (None for a column without a header, which must stay empty)."""
    names: list[str | None] = []
    seen: set[str] = set()
    for i, cell in enumerate(cells):
        text = "" if cell is None else str(cell).strip()
        if not text:
            names.append(None)
            continue
        name = _BY_LOWER.get(text.lower())
        if name is None:
            raise InvalidInput(f"unknown column {text!r} (column {i + 1})", field=text)
        if name in seen:
            raise InvalidInput(f"column {name} appears twice", field=name)
        seen.add(name)
        names.append(name)
    if "marketId" not in seen and not {"baseAssetId", "quoteAssetId"} <= seen:
        raise InvalidInput("the header must name marketId, or baseAssetId and quoteAssetId", field="marketId")
    return names


def split_sheet(sheet: Sheet) -> tuple[list[str | None], list[tuple[int, Sequence[object]]]]:
    """The header's fields and the data rows; InvalidInput for a file without a header or too many rows."""
    if not sheet:
        raise InvalidInput("the file has no header row", field="file")
    (_, header_cells), rows = sheet[0], list(sheet[1:])
    header = parse_header(header_cells)
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"the file has more than {MAX_ROWS} rows of markets", field="file")
    return header, rows


def row_fields(header: Sequence[str | None], cells: Sequence[object]) -> dict[str, Any]:
    """One data row as a back-office market body."""
    fields: dict[str, Any] = {}
    for i, cell in enumerate(cells):
        name = header[i] if i < len(header) else None
        empty = cell is None or (isinstance(cell, str) and not cell.strip())
        if name is None:
            if not empty:
                raise InvalidInput(f"column {i + 1} has a value but no header", field=None)
            continue
        if empty:
            if name not in _EMPTY_MEANS_ABSENT:
                fields[name] = None
            continue
        fields[name] = _cell(COLUMN_KINDS[name], cell, name)
    for name in header:
        # A row shorter than the header leaves its last cells empty.
        if name is not None and name not in fields and name not in _EMPTY_MEANS_ABSENT:
            fields[name] = None
    return fields


def _number_text(value: float) -> str:
    # A spreadsheet keeps numbers as binary doubles; it shows (and its user meant) 15 significant
    # digits, so that is the decimal read. Exports write amounts as text and never come this way.
    return format_decimal(Decimal(format(value, ".15g")))


def _cell(kind: Kind, value: object, name: str) -> object:
    if kind is Kind.TEXT:
        if isinstance(value, time):
            return value.strftime("%H:%M:%S")
        if isinstance(value, (bool, datetime)):
            raise InvalidInput(f"{name} must be text", field=name)
        if isinstance(value, float):
            return _number_text(value)
        return str(value).strip()
    if kind is Kind.INT:
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be an integer", field=name)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
            return int(value.strip())
        raise InvalidInput(f"{name} must be an integer", field=name)
    if kind is Kind.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidInput(f"{name} must be a decimal number", field=name)
        return _number_text(value) if isinstance(value, float) else str(value).strip()
    if kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise InvalidInput(f"{name} must be true or false", field=name)
    if kind is Kind.JSON:
        try:
            return json.loads(str(value))
        except ValueError:
            raise InvalidInput(f"{name} must be JSON (as in the market's JSON body)", field=name) from None
    # Kind.IDS
    text = str(value).strip()
    if text.startswith("["):
        try:
            ids = json.loads(text)
        except ValueError:
            raise InvalidInput(f"{name} must be ids separated by ; or a JSON array", field=name) from None
        return ids
    return [part.strip() for part in text.split(";") if part.strip()]


# --- export -------------------------------------------------------------------------------------


def _swap_json(swap: SwapSettings | None) -> str | None:
    if swap is None:
        return None

    def leg(x: Any) -> dict[str, str] | None:
        return None if x is None else {"swapSize": format_decimal(x.size), "assetId": str(x.asset_id)}

    return json.dumps(
        {
            "type": swap.type.value,
            "shortPositionSettings": leg(swap.short),
            "longPositionSettings": leg(swap.long),
        },
        separators=(",", ":"),
    )


def _ids_text(ids: Sequence[str]) -> str | None:
    if not ids:
        return None
    if any(";" in i or i.startswith("[") for i in ids):
        return json.dumps(list(ids))
    return ";".join(ids)


def market_row(m: Market) -> list[object]:
    """A market as a data row under ``HEADER``: text, integers, booleans and None (empty)."""
    values: dict[str, object] = {
        "marketId": m.id,
        "baseAssetId": str(m.base_asset),
        "quoteAssetId": str(m.quote_asset),
        "type": m.type.value,
        "displayName": m.display_name,
        "fullName": m.full_name,
        "subtype": m.subtype,
        "status": m.status.value,
        "priceScale": m.price_scale,
        "amountScale": m.amount_scale,
        "tickSize": format_decimal(m.tick_size),
        "lotStep": format_decimal(m.lot_step),
        "minAmount": format_decimal(m.min_amount),
        "maxBaseAmount": amount_text(m.max_base_amount),
        "minQuoteAmount": amount_text(m.min_quote_amount),
        "priceDeviation": format_decimal(m.price_deviation),
        "slippageRate": format_decimal(m.slippage_rate),
        "isOtc": m.is_otc,
        "isHidden": m.is_hidden,
        "isSynchronized": m.is_synchronized,
        "marketGroupId": m.market_group_id,
        "calendarId": m.calendar_id,
        "calendar": None
        if m.calendar is None
        else json.dumps(calendar_to_json(m.calendar), separators=(",", ":")),
        "externalTtl": m.external_ttl,
        "internalTtl": m.internal_ttl,
        "tradingSessionIds": _ids_text(m.trading_session_ids),
        "marketDataSessionIds": _ids_text(m.market_data_session_ids),
        "lotSize": m.lot_size,
        "minLotAmount": amount_text(m.min_lot_amount),
        "maxLotAmount": m.max_lot_amount,
        "swapSettings": _swap_json(m.swap_settings),
        "maxLeverage": m.max_leverage,
        "isConstLeverage": m.is_const_leverage,
        "fundingStartTime": None
        if m.funding_start_time is None
        else m.funding_start_time.strftime("%H:%M:%S"),
        "fundingIntervalInHours": m.funding_interval_in_hours,
    }
    return [values[name] for name in HEADER]


def export_name(fmt: FileFormat, at: datetime) -> str:
    return f"markets-{at.strftime('%Y%m%dT%H%M%SZ')}{fmt.extension}"
