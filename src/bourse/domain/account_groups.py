"""Account groups: accounts that share risk settings.

Every account belongs to one group (``default`` unless chosen). A group's
levels are ratios of an account's equity to the margin its positions use
(1 = 100%): at ``marginCallLevel`` the trader is warned, at ``stopOutLevel``
positions are closed. Spot trading uses no margin; the derivatives issue applies
them. They are checked now so a stored group is one that issue can run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.values import decimal_places, parse_decimal

DEFAULT_GROUP_ID = "default"
DEFAULT_MARGIN_CALL_LEVEL = Decimal("1")  # 100%
DEFAULT_STOP_OUT_LEVEL = Decimal("0.5")  # 50%
MAX_LEVEL = Decimal(100)  # 10,000%
MAX_LEVEL_DECIMALS = 8
MAX_NAME_LENGTH = 128
GROUP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class AccountGroup:
    id: str
    name: str
    margin_call_level: Decimal
    stop_out_level: Decimal

    def __post_init__(self) -> None:
        if not GROUP_ID_RE.match(self.id):
            raise InvalidInput("an account group id is 1-64 letters, digits or . _ -", field="id")
        if not self.name.strip() or len(self.name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"name must be 1-{MAX_NAME_LENGTH} characters", field="name")
        for name, level in (
            ("marginCallLevel", self.margin_call_level),
            ("stopOutLevel", self.stop_out_level),
        ):
            if not 0 < level <= MAX_LEVEL or decimal_places(level) > MAX_LEVEL_DECIMALS:
                raise InvalidInput(
                    f"{name} must be above 0 and at most {MAX_LEVEL} (1 = 100%),"
                    f" with at most {MAX_LEVEL_DECIMALS} decimals",
                    field=name,
                )
        # The warning has to come before the closing, or a trader is closed out unwarned.
        if self.stop_out_level >= self.margin_call_level:
            raise InvalidInput("stopOutLevel must be below marginCallLevel", field="stopOutLevel")


_FIELDS = frozenset({"id", "name", "marginCallLevel", "stopOutLevel"})


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {name}", field=name)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value.strip()


def _level(body: Mapping[str, Any], name: str, default: Decimal) -> Decimal:
    value = body.get(name)
    return default if value is None else parse_decimal(value, name)


def new_group(body: Mapping[str, Any]) -> AccountGroup:
    """A group from ``{id, name, marginCallLevel?, stopOutLevel?}``; levels default to 1 and 0.5."""
    _check_fields(body, _FIELDS)
    if body.get("id") is None:
        raise InvalidInput("id is required", field="id")
    if body.get("name") is None:
        raise InvalidInput("name is required", field="name")
    return AccountGroup(
        _text(body, "id"),
        _text(body, "name"),
        _level(body, "marginCallLevel", DEFAULT_MARGIN_CALL_LEVEL),
        _level(body, "stopOutLevel", DEFAULT_STOP_OUT_LEVEL),
    )


def changed_group(group: AccountGroup, body: Mapping[str, Any]) -> AccountGroup:
    """``group`` with the fields present in a PUT body applied (the id never changes)."""
    _check_fields(body, _FIELDS)
    if body.get("id") is not None and body["id"] != group.id:
        raise InvalidInput("id cannot be changed", field="id")
    values: dict[str, Any] = {}
    if body.get("name") is not None:
        values["name"] = _text(body, "name")
    if body.get("marginCallLevel") is not None:
        values["margin_call_level"] = parse_decimal(body["marginCallLevel"], "marginCallLevel")
    if body.get("stopOutLevel") is not None:
        values["stop_out_level"] = parse_decimal(body["stopOutLevel"], "stopOutLevel")
    return replace(group, **values)
