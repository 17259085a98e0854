"""Report files under the data dir (``<data_dir>/reports/<reportId>.<csv|xlsx>``), written row by
row: CSV through the ``csv`` module, XLSX through openpyxl's write-only workbook (rows go to a
temporary file as they come, never a sheet in memory). A file is written as ``.partial`` and
renamed when complete, so a half-written report is never served.

Values: amounts (Decimal) in plain decimal notation in CSV, exact; in XLSX as numbers when they
have at most 15 significant digits (what a spreadsheet's double holds), else as text, so no digit
is silently lost. A text that a spreadsheet would run as a formula (``= + - @`` first) is written
as text: in CSV behind a ``'``, in XLSX as a string cell.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bourse.domain.reports import ReportFormat

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XLSX_DIGITS = 15


def decimal_text(value: Decimal) -> str:
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class CsvReportWriter:
    def __init__(self, partial: Path, final: Path, columns: Sequence[str]) -> None:
        self._partial, self._final = partial, final
        self._file: TextIO = partial.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._csv.writerows([_csv_value(v) for v in row] for row in rows)

    def finish(self) -> int:
        self._file.close()
        os.replace(self._partial, self._final)
        return self._final.stat().st_size

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


class XlsxReportWriter:
    def __init__(self, partial: Path, final: Path, columns: Sequence[str]) -> None:
        self._partial, self._final = partial, final
        self._book = Workbook(write_only=True)
        self._sheet: WriteOnlyWorksheet = self._book.create_sheet("Report")
        self._sheet.append(list(columns))

    def _cell(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            text = decimal_text(value)
            digits = text.replace("-", "").replace(".", "").lstrip("0")
            return float(text) if len(digits) <= _XLSX_DIGITS else text
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(self._sheet, value=value)
            cell.data_type = "s"  # openpyxl would store it as a formula
            return cell
        return value

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._sheet.append([self._cell(v) for v in row])

    def finish(self) -> int:
        self._book.save(self._partial)
        os.replace(self._partial, self._final)
        return self._final.stat().st_size

    def abort(self) -> None:
        # Finish the sheet's stream and drop the temporary file it was written to (saving would).
        with contextlib.suppress(Exception):
            self._sheet.close()
        writer = getattr(self._sheet, "_writer", None)
        if writer is not None and isinstance(getattr(writer, "out", None), str):
            Path(writer.out).unlink(missing_ok=True)
        self._partial.unlink(missing_ok=True)


class LocalReportFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, report_id: str, fmt: ReportFormat) -> Path:
        # The id names the file: only a UUID's characters ever reach the path.
        return self.directory / f"{uuid.UUID(report_id)}.{fmt.extension}"

    def create(
        self, report_id: str, fmt: ReportFormat, columns: Sequence[str]
    ) -> CsvReportWriter | XlsxReportWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self._file(report_id, fmt)
        partial = final.with_name(final.name + ".partial")
        if fmt is ReportFormat.CSV:
            return CsvReportWriter(partial, final, columns)
        return XlsxReportWriter(partial, final, columns)

    def path(self, report_id: str, fmt: ReportFormat) -> Path | None:
        final = self._file(report_id, fmt)
        return final if final.is_file() else None

    def delete(self, report_id: str, fmt: ReportFormat) -> None:
        final = self._file(report_id, fmt)
        final.unlink(missing_ok=True)
        final.with_name(final.name + ".partial").unlink(missing_ok=True)
