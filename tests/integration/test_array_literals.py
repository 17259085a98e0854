"""The batch statement's array literals read back in PostgreSQL as exactly the values given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bourse.adapters.db.array_literals import LITERALS, cast

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_VALUES: dict[str, Any] = {
    "text": _TEXT
    | st.sampled_from(["", "NULL", "null", " a ", '"', "\\", "{}", "a,b", '\\"', "é€以", 'x","y', '","']),
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "boolean": st.booleans(),
    "numeric": st.decimals(
        allow_nan=False, allow_infinity=False, places=8, min_value=-(10**20), max_value=10**20
    ),
    "timestamptz": st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
    | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)).map(
        lambda d: d.replace(tzinfo=timezone(timedelta(hours=5, minutes=30)))
    ),
    "bytea": st.binary(max_size=12),
}


async def _read_back(container: Any, kind: str, values: list[Any]) -> list[Any]:
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(text(f"SELECT {cast('p', kind)} AS v"), {"p": LITERALS[kind](values)})
        ).one()
    return list(row.v)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_every_kind_reads_back_exactly(container: Any, data: st.DataObject) -> None:
    for kind, strategy in _VALUES.items():
        values = data.draw(st.lists(st.none() | strategy, max_size=8), label=kind)
        back = await _read_back(container, kind, values)
        if kind == "bytea":
            back = [None if v is None else bytes(v) for v in back]
        assert back == values, kind
        if kind == "numeric":  # the same scale too, not only the same number
            assert [None if v is None else str(v) for v in back] == [
                None if v is None else str(v) for v in values
            ]


async def test_an_empty_array_and_all_nulls(container: Any) -> None:
    for kind in LITERALS:
        assert await _read_back(container, kind, []) == []
        assert await _read_back(container, kind, [None, None]) == [None, None]


async def test_a_decimal_keeps_its_trailing_zeros(container: Any) -> None:
    assert [str(v) for v in await _read_back(container, "numeric", [Decimal("1.500"), Decimal("0E-8")])] == [
        "1.500",
        "0E-8",
    ]


async def test_texts_without_a_null_read_back_whole_whatever_they_hold(container: Any) -> None:
    """The one-join path (no NULL, nothing to escape) and the per-element path meet here."""
    for values in (["x", "y"], ['x","y'], ['a"', "b"], ["a\\", "b"], ["", ""], ["NULL"], ["a", None, 'b"']):
        assert await _read_back(container, "text", values) == values, values
