"""Array parameters sent as one PostgreSQL array literal each, for the order path's batch statement.

asyncpg encodes an array parameter element by element, and checks every element against
``collections.abc`` (Iterable, Sized, Mapping: is it a nested array?) through Python-level
``ABCMeta.__instancecheck__``. Client CPU per element, measured: ~170 ns a bigint, ~190 a
boolean, ~320 a text, ~780 a timestamptz. A batch statement carries ~60 array elements per
order. As one ``text`` parameter holding the array's literal, which PostgreSQL's ``array_in``
parses (``CAST(CAST(:p AS text) AS bigint[])``), the client builds each element with ``str``
and ``join`` instead (~100 ns) and asyncpg encodes one string.

The literal syntax (PostgreSQL manual, "Array Value Input"): elements between braces, separated
by commas; NULL unquoted; every other element here double-quoted where it could hold anything
but digits, with a backslash before each double quote and backslash inside. The values are the
same ones asyncpg would have sent: exact decimals, integers, texts, booleans, and timestamps to
the microsecond with their offset (naive ones read in the session's time zone, UTC, as before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any


def cast(param: str, kind: str) -> str:
    """The SQL that reads parameter ``param`` (an array literal) as a ``kind[]``."""
    return f"CAST(CAST(:{param} AS text) AS {kind}[])"


def numerics(values: Iterable[Decimal | None]) -> str:
    """``str`` of a Decimal is exact and has no comma, brace, quote or space to escape."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def bigints(values: Iterable[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def booleans(values: Iterable[bool | None]) -> str:
    return "{" + ",".join("NULL" if v is None else ("t" if v else "f") for v in values) + "}"


def _quoted(text: str) -> str:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def texts(values: Iterable[str | None]) -> str:
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


def timestamps(values: Iterable[datetime | None]) -> str:
    # isoformat() keeps the microseconds and the offset: PostgreSQL reads back the same instant.
    return "{" + ",".join("NULL" if v is None else '"' + v.isoformat() + '"' for v in values) + "}"


def byteas(values: Iterable[bytes | None]) -> str:
    # bytea's hex input (\x...), its backslash escaped for the array literal.
    return "{" + ",".join("NULL" if v is None else '"\\\\x' + v.hex() + '"' for v in values) + "}"


LITERALS: dict[str, Callable[[Iterable[Any]], str]] = {
    "numeric": numerics,
    "bigint": bigints,
    "boolean": booleans,
    "text": texts,
    "timestamptz": timestamps,
    "bytea": byteas,
}
