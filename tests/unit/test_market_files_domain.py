"""Market files: the columns cover the market body, and cells read as a JSON body would hold them."""

from datetime import time

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.market_files import HEADER, FileFormat, detect_format, parse_header, row_fields
from bourse.domain.markets import CREATE_ONLY_FIELDS, UPDATABLE_FIELDS


def test_the_columns_are_every_field_of_a_market_body():
    assert len(HEADER) == len(set(HEADER))
    assert set(HEADER) == set(UPDATABLE_FIELDS) | CREATE_ONLY_FIELDS


def test_cells_become_body_values():
    header = parse_header(
        [
            "MARKETID",
            "priceScale",
            "tickSize",
            "isOtc",
            "tradingSessionIds",
            "marketDataSessionIds",
            "swapSettings",
            "fundingStartTime",
            "maxBaseAmount",
            "displayName",
            None,
        ]
    )
    fields = row_fields(
        header,
        ["BTCUSDT", 2.0, 0.1, "TRUE", "a; b;", '["x;y"]', '{"type": "Fixed"}', time(8, 0), "", "", None],
    )
    assert fields == {
        "marketId": "BTCUSDT",
        "priceScale": 2,
        "tickSize": "0.1",  # the double 0.1, read as the spreadsheet shows it
        "isOtc": True,
        "tradingSessionIds": ["a", "b"],
        "marketDataSessionIds": ["x;y"],
        "swapSettings": {"type": "Fixed"},
        "fundingStartTime": "08:00:00",
        "maxBaseAmount": None,  # empty clears an optional field
        # displayName cannot be null: empty means not given
    }


@pytest.mark.parametrize(
    ("cells", "field"),
    [
        (["BTCUSDT", "2.5"], "priceScale"),
        (["BTCUSDT", True], "priceScale"),
        (["BTCUSDT", "2", "maybe"], "isOtc"),
        (["BTCUSDT", "2", "true", "{not json"], "calendar"),
    ],
)
def test_cells_of_the_wrong_kind_name_their_column(cells, field):
    header = parse_header(["marketId", "priceScale", "isOtc", "calendar"])
    with pytest.raises(InvalidInput) as caught:
        row_fields(header, cells)
    assert caught.value.details["field"] == field


def test_a_value_without_a_header_is_refused():
    with pytest.raises(InvalidInput):
        row_fields(parse_header(["marketId", ""]), ["BTCUSDT", "stray"])
    assert row_fields(parse_header(["marketId", ""]), ["BTCUSDT", ""]) == {"marketId": "BTCUSDT"}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", b"marketId\n", FileFormat.CSV),
        ("A.XLSX", b"PK\x03\x04...", FileFormat.XLSX),
        (None, b"PK\x03\x04...", FileFormat.XLSX),
        ("upload", b"marketId\n", FileFormat.CSV),
    ],
)
def test_detect_format(name, content, expected):
    assert detect_format(name, content) is expected
