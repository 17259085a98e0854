"""The shared value helpers: exact whatever the caller's decimal context."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from bourse.domain.values import decimal_places, format_decimal, normalized

WIDE = Decimal("1000000000000.123456789012345678")  # 31 significant digits: the default context keeps 28


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (WIDE, "1000000000000.123456789012345678"),
        (Decimal("99999999999999999999.999999999999999999"), "99999999999999999999.999999999999999999"),
        (Decimal("1.500"), "1.5"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.000"), "0"),
    ],
)
def test_format_decimal_shows_every_digit(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


def test_decimal_places_counts_the_places_a_wide_amount_needs() -> None:
    # A 19th decimal on 32 digits: rounding to 28 first would report 15 and let it through.
    assert decimal_places(Decimal("1000000000000.1234567890123456789")) == 19
    assert decimal_places(WIDE) == 18
    assert decimal_places(Decimal("5.0000000000000000000000000000000")) == 0


def test_normalized_ignores_a_narrow_current_context() -> None:
    with localcontext() as ctx:
        ctx.prec = 5
        assert normalized(WIDE) == WIDE
        assert normalized(Decimal("120.000")) == Decimal("120")
