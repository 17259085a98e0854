"""Typed identifiers and small value helpers shared by every part of the domain."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import NewType

from bourse.domain.errors import InvalidInput

UserId = NewType("UserId", int)
AccountId = NewType("AccountId", str)
AssetId = NewType("AssetId", str)
RequestId = NewType("RequestId", str)

# Enough digits for every amount the platform stores (NUMERIC(38, 18)) and for the product of
# two. Decimal's default context keeps 28 significant digits, and normalize(), negation, sums
# and products in it round larger amounts silently (a 13-digit token balance with 18 decimals
# has 31).
EXACT = Context(prec=100)


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


def normalized(value: Decimal) -> Decimal:
    """``value`` without trailing zeros, never rounded (``Decimal.normalize()`` rounds to the
    current context's precision)."""
    return value.normalize(EXACT)


def decimal_places(value: Decimal) -> int:
    exponent = normalized(value).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def format_decimal(value: Decimal) -> str:
    """Plain notation (never 1E+2), without trailing zeros beyond the integer part."""
    if value == 0:
        return "0"
    text = format(normalized(value), "f")
    return text
