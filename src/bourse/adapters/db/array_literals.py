"""Array parameters sent as one PostgreSQL array literal each, for the order path's batch statement.

asyncpg encodes an array parameter element by element, and checks every element against
``collections.abc`` (Iterable, Sized, Mapping: is it a nested array?) through Python-level
``ABCMeta.__instancecheck__``. Client CPU per element, measured: ~170 ns a bigint, ~190 a
boolean, ~320 a text, ~780 a timestamptz. A batch statement carries ~60 array elements per
order. As one ``text`` parameter holding the array's literal, which PostgreSQL's ``array_in``
parses (``CAST(CAST(:p AS text) AS bigint[])``), asyncpg encodes one string, and the literal is
built with C-level ``map``/``join`` wherever that is exact, without a Python step per element.

The literal syntax (PostgreSQL manual, "Array Value Input"): elements between braces, separated
by commas; NULL unquoted; every other element here double-quoted where it could hold anything
but digits, with a backslash before each double quote and backslash inside. The values are the
same ones asyncpg would have sent: exact decimals, integers, texts, booleans, and timestamps to
the microsecond with their offset (naive ones read in the session's time zone, UTC, as before).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any


def cast(param: str, kind: str) -> str:
    """The SQL that reads parameter ``param`` (an array literal) as a ``kind[]``."""
    return f"CAST(CAST(:{param} AS text) AS {kind}[])"


def _unquoted(values: Iterable[Decimal | int | None]) -> str:
    """``str`` of a Decimal or an int is exact and has no comma, brace, quote or space to escape;
    neither's text contains "None", so ``str(None)`` is turned into NULL after the join (all in C,
    no Python step per element)."""
    return "{" + ",".join(map(str, values)).replace("None", "NULL") + "}"


numerics: Callable[[Iterable[Decimal | None]], str] = _unquoted
bigints: Callable[[Iterable[int | None]], str] = _unquoted


_BOOLEANS = {True: "t", False: "f", None: "NULL"}


def booleans(values: Iterable[bool | None]) -> str:
    return "{" + ",".join(map(_BOOLEANS.__getitem__, values)) + "}"


def _quoted(text: str | None) -> str:
    if text is None:
        return "NULL"
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def texts(values: Sequence[str | None]) -> str:
    if values and None not in values:
        plain: Sequence[str] = values  # type: ignore[assignment]  # no None, checked above
        whole = "".join(plain)
        # No element holds a quote or a backslash (one would show in the whole): quoted as they
        # are, in one join, without a Python step per element.
        if '"' not in whole and "\\" not in whole:
            return '{"' + '","'.join(plain) + '"}'
    return "{" + ",".join(map(_quoted, values)) + "}"


@functools.lru_cache(maxsize=256)
def _timestamp(moment: datetime | None) -> str:
    # isoformat() keeps the microseconds and the offset: PostgreSQL reads back the same instant.
    # Cached: a batch's rows mostly carry the batch's one timestamp.
    return "NULL" if moment is None else '"' + moment.isoformat() + '"'


def timestamps(values: Iterable[datetime | None]) -> str:
    return "{" + ",".join(map(_timestamp, values)) + "}"


def byteas(values: Iterable[bytes | None]) -> str:
    # bytea's hex input (\x...), its backslash escaped for the array literal.
    return "{" + ",".join("NULL" if v is None else '"\\\\x' + v.hex() + '"' for v in values) + "}"


LITERALS: dict[str, Callable[[Sequence[Any]], str]] = {
    "numeric": numerics,
    "bigint": bigints,
    "boolean": booleans,
    "text": texts,
    "timestamptz": timestamps,
    "bytea": byteas,
}
