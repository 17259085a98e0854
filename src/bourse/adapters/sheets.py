"""Sheets of cells in and out of CSV and XLSX files (the markets file import/export).

Reading returns the rows that are not blank, each with its row number in the file;
cells are text, integers, floats, booleans, dates/times or None, as the file has
them (CSV: text only). Writing takes text, integers, booleans and None.

CSV: UTF-8 (a byte-order mark is skipped), comma-separated (a header with
semicolons and no commas is read as semicolon-separated, as spreadsheet programs in
comma-decimal locales write it). A text cell that a spreadsheet program would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) is written with a
leading ``'`` and read back without it. XLSX: the first worksheet; text cells are
always written as text, never as formulas.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

from bourse.domain.errors import InvalidInput
from bourse.domain.market_files import MAX_COLUMNS, MAX_XLSX_UNPACKED_BYTES, FileFormat, Sheet

_FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")


def _blank(cells: Sequence[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


class CsvXlsxCodec:
    def read(self, fmt: FileFormat, content: bytes, max_rows: int) -> Sheet:
        """At most ``max_rows`` non-blank rows; InvalidInput when the file cannot be read."""
        if fmt is FileFormat.CSV:
            return _read_csv(content, max_rows)
        return _read_xlsx(content, max_rows)

    def write(self, fmt: FileFormat, rows: Sequence[Sequence[object]]) -> bytes:
        if fmt is FileFormat.CSV:
            return _write_csv(rows)
        return _write_xlsx(rows)


def _read_csv(content: bytes, max_rows: int) -> Sheet:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("a CSV file must be UTF-8 text", field="file") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    rows: list[tuple[int, Sequence[object]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        # Numbered by record, blank ones included: the row numbers a spreadsheet program shows.
        for number, cells in enumerate(reader, start=1):
            if len(rows) >= max_rows:
                break
            if len(cells) > MAX_COLUMNS:
                raise InvalidInput(f"row {number} has more than {MAX_COLUMNS} columns", field="file")
            if not _blank(cells):
                rows.append((number, [_unescape(c) for c in cells]))
    except csv.Error as e:
        raise InvalidInput(f"the CSV file cannot be read: {e}", field="file") from e
    return rows


def _unescape(cell: str) -> str:
    return cell[1:] if _ESCAPED.match(cell) else cell


def _escape(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if isinstance(value, str) and _FORMULA_START.match(text) else text


def _write_csv(rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_escape(v) for v in row])
    return out.getvalue().encode("utf-8")


def _read_xlsx(content: bytes, max_rows: int) -> Sheet:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as e:
        raise InvalidInput("the file is not a readable XLSX workbook", field="file") from e
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise InvalidInput(f"the workbook unpacks to more than {MAX_XLSX_UNPACKED_BYTES} bytes", field="file")
    rows: list[tuple[int, Sequence[object]]] = []
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            if not book.worksheets:
                return rows
            sheet = book.worksheets[0]
            # One column past the limit is read to refuse a sheet that uses it (reading every
            # column could mean 16,384 cells per row).
            sheet_rows = sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)
            for number, cells in enumerate(sheet_rows, start=1):
                if len(rows) >= max_rows:
                    break
                if len(cells) > MAX_COLUMNS and not _blank(cells[MAX_COLUMNS:]):
                    raise InvalidInput(f"row {number} has more than {MAX_COLUMNS} columns", field="file")
                if not _blank(cells):
                    rows.append((number, list(cells[:MAX_COLUMNS])))
        finally:
            book.close()
    except InvalidInput:
        raise
    except Exception as e:  # openpyxl raises many kinds (KeyError, ValueError, XML errors) on bad files
        raise InvalidInput("the file is not a readable XLSX workbook", field="file") from e
    return rows


def _write_xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Markets")
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text: "=..." is a name, not a formula
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
