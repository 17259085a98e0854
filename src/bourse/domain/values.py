"""Typed identifiers and small value helpers shared by every part of the domain."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NewType

from bourse.domain.errors import InvalidInput

UserId = NewType("UserId", int)
AccountId = NewType("AccountId", str)
AssetId = NewType("AssetId", str)
RequestId = NewType("RequestId", str)


def parse_decimal(value: object, field: str) -> Decimal:
    """A finite Decimal from a JSON string or int; floats are refused (they already lost precision)."""
    if isinstance(value, bool | float):
        raise InvalidInput(f"{field} must be a decimal string", field=field)
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InvalidInput(f"{field} must be a decimal number", field=field)
    return number


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def format_decimal(value: Decimal) -> str:
    """Plain notation (never 1E+2), without trailing zeros beyond the integer part."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text
