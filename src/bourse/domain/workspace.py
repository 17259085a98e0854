"""The trader's workspace: UI settings, layouts (tabs of widgets) and the platform's templates.

Layouts are JSON the trading UI draws; the server keeps them per user and checks
their shape so one client cannot store something another client (or another
version of the UI) cannot draw. Everything here is pure: parsing, limits, ordering.
docs/api/brokerage.md "Trader workspace" is the reference for clients.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.markets import MARKET_ID_RE

MAX_LAYOUTS_PER_USER = 50
MAX_LAYOUT_BYTES = 64 * 1024  # the stored JSON of one layout (id, name, tabs), UTF-8
MAX_TABS = 20
MAX_WIDGETS_PER_TAB = 50
MAX_PAIRS = 100
MAX_GRID = 10_000  # any size coordinate
MAX_NAME_CHARS = 64
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
# PUT /ui/layouts/order is the reordering route, so no layout can be called "order".
RESERVED_LAYOUT_IDS = frozenset({"order"})


class Theme(StrEnum):
    LIGHT = "Light"
    DARK = "Dark"


class WidgetType(StrEnum):
    BBP_FAVORITES = "BbpFavorites"  # the trader's favourite markets (settings.pairs)
    MARKETS = "Markets"
    CHART = "Chart"
    ORDER_BOOK = "OrderBook"
    TRADES = "Trades"
    ORDER_FORM = "OrderForm"
    OPEN_ORDERS = "OpenOrders"
    ORDER_HISTORY = "OrderHistory"
    TRADE_HISTORY = "TradeHistory"
    BALANCES = "Balances"
    TICKER = "Ticker"
    NOTIFICATIONS = "Notifications"
    PRICE_ALERTS = "PriceAlerts"


@dataclass(frozen=True, slots=True)
class Sizes:
    x: int
    y: int
    cols: int
    rows: int
    layer_index: int


@dataclass(frozen=True, slots=True)
class Widget:
    id: str
    type: WidgetType
    pairs: tuple[str, ...] | None = None  # settings.pairs; None: the widget has no settings


@dataclass(frozen=True, slots=True)
class Tab:
    id: str
    selected_widget_id: str | None
    sizes: Sizes
    widgets: tuple[Widget, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    id: str
    name: str
    tabs: tuple[Tab, ...]

    def market_ids(self) -> dict[str, str]:
        """Every market named in a widget's settings.pairs, with where it is first named."""
        out: dict[str, str] = {}
        for i, tab in enumerate(self.tabs):
            for j, w in enumerate(tab.widgets):
                for k, pair in enumerate(w.pairs or ()):
                    out.setdefault(pair, f"tabs[{i}].widgets[{j}].settings.pairs[{k}]")
        return out


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    is_default: bool
    tabs: tuple[Tab, ...]


@dataclass(frozen=True, slots=True)
class UiSettings:
    selected_layout_id: str | None = None
    is_introduction_tour_completed: bool = False
    is_24h_time_format_used: bool = True
    theme: Theme = Theme.DARK


# --- JSON in ----------------------------------------------------------------------------------


def _object(value: object, field: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field or 'the body'} must be a JSON object", field=field or "body")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        where = f"{field}.{unknown[0]}" if field else unknown[0]
        raise InvalidInput(f"unknown field {where}", field=where)
    return value


def _list(value: object, field: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be a JSON array", field=field)
    if len(value) > most:
        raise InvalidInput(f"{field} holds at most {most} items", field=field)
    return value


def parse_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise InvalidInput(
            f"{field} must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
            field=field,
        )
    return value


def parse_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    name = value.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS or any(ord(ch) < 32 for ch in name):
        raise InvalidInput(
            f"{field} must have 1-{MAX_NAME_CHARS} characters and no control characters", field=field
        )
    return name


def _int(value: object, field: str, least: int) -> int:
    # bool is an int in Python, never in a layout.
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_GRID:
        raise InvalidInput(f"{field} must be an integer from {least} to {MAX_GRID}", field=field)
    return value


def _sizes(value: object, field: str) -> Sizes:
    body = _object(value, field, ("x", "y", "cols", "rows", "layerIndex"))
    for key in ("x", "y", "cols", "rows", "layerIndex"):
        if key not in body:
            raise InvalidInput(f"{field}.{key} is required", field=f"{field}.{key}")
    return Sizes(
        x=_int(body["x"], f"{field}.x", 0),
        y=_int(body["y"], f"{field}.y", 0),
        cols=_int(body["cols"], f"{field}.cols", 1),
        rows=_int(body["rows"], f"{field}.rows", 1),
        layer_index=_int(body["layerIndex"], f"{field}.layerIndex", 0),
    )


def _widget(value: object, field: str, *, settings_allowed: bool) -> Widget:
    body = _object(value, field, ("id", "type", "settings") if settings_allowed else ("id", "type"))
    widget_id = parse_id(body.get("id"), f"{field}.id")
    try:
        kind = WidgetType(str(body.get("type")))
    except ValueError:
        raise InvalidInput(
            f"{field}.type must be one of {', '.join(t.value for t in WidgetType)}", field=f"{field}.type"
        ) from None
    pairs: tuple[str, ...] | None = None
    if body.get("settings") is not None:
        settings = _object(body["settings"], f"{field}.settings", ("pairs",))
        raw = _list(settings.get("pairs", []), f"{field}.settings.pairs", MAX_PAIRS)
        seen: list[str] = []
        for i, pair in enumerate(raw):
            where = f"{field}.settings.pairs[{i}]"
            if not isinstance(pair, str) or not MARKET_ID_RE.match(pair):
                raise InvalidInput(f"{where} must be a market id, e.g. BTCUSDT", field=where)
            if pair in seen:
                raise InvalidInput(f"{where}: {pair} is listed twice", field=where)
            seen.append(pair)
        pairs = tuple(seen)
    return Widget(widget_id, kind, pairs)


def _tab(value: object, field: str, *, settings_allowed: bool) -> Tab:
    body = _object(value, field, ("id", "selectedWidgetId", "sizes", "widgets"))
    tab_id = parse_id(body.get("id"), f"{field}.id")
    if "sizes" not in body:
        raise InvalidInput(f"{field}.sizes is required", field=f"{field}.sizes")
    sizes = _sizes(body["sizes"], f"{field}.sizes")
    widgets: list[Widget] = []
    for i, raw in enumerate(_list(body.get("widgets", []), f"{field}.widgets", MAX_WIDGETS_PER_TAB)):
        widget = _widget(raw, f"{field}.widgets[{i}]", settings_allowed=settings_allowed)
        if any(w.id == widget.id for w in widgets):
            raise InvalidInput(
                f"widget id {widget.id} is used twice in the tab", field=f"{field}.widgets[{i}].id"
            )
        widgets.append(widget)
    selected = body.get("selectedWidgetId")
    if selected is not None and not any(w.id == selected for w in widgets):
        raise InvalidInput(
            f"{field}.selectedWidgetId must be the id of one of the tab's widgets",
            field=f"{field}.selectedWidgetId",
        )
    return Tab(tab_id, selected, sizes, tuple(widgets))


def parse_tabs(value: object, *, field: str = "tabs", settings_allowed: bool = True) -> tuple[Tab, ...]:
    tabs: list[Tab] = []
    for i, raw in enumerate(_list(value, field, MAX_TABS)):
        tab = _tab(raw, f"{field}[{i}]", settings_allowed=settings_allowed)
        if any(t.id == tab.id for t in tabs):
            raise InvalidInput(f"tab id {tab.id} is used twice in the layout", field=f"{field}[{i}].id")
        tabs.append(tab)
    return tuple(tabs)


def parse_new_layout(body: object) -> Layout:
    """A POST /ui/layouts body: ``{id, name, tabs}``."""
    fields = _object(body, "", ("id", "name", "tabs"))
    layout_id = parse_id(fields.get("id"), "id")
    if layout_id in RESERVED_LAYOUT_IDS:
        raise InvalidInput(f"{layout_id} cannot be a layout id (it is a route)", field="id")
    layout = Layout(
        id=layout_id,
        name=parse_name(fields.get("name")),
        tabs=parse_tabs(fields.get("tabs", [])),
    )
    check_size(layout)
    return layout


def parse_layout_tabs(body: object) -> tuple[Tab, ...]:
    """A PUT /ui/layouts/{id} body: ``{tabs}``."""
    fields = _object(body, "", ("tabs",))
    if "tabs" not in fields:
        raise InvalidInput("tabs is required", field="tabs")
    return parse_tabs(fields["tabs"])


def parse_layout_name(body: object) -> str:
    fields = _object(body, "", ("name",))
    return parse_name(fields.get("name"))


def parse_layout_order(body: object) -> list[str]:
    fields = _object(body, "", ("layoutOrder",))
    ids = [
        parse_id(v, f"layoutOrder[{i}]")
        for i, v in enumerate(_list(fields.get("layoutOrder"), "layoutOrder", MAX_LAYOUTS_PER_USER))
    ]
    if len(set(ids)) != len(ids):
        raise InvalidInput("layoutOrder names a layout twice", field="layoutOrder")
    return ids


def check_size(layout: Layout) -> None:
    size = len(json.dumps(layout_json(layout), separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_LAYOUT_BYTES:
        raise InvalidInput(
            f"a layout is at most {MAX_LAYOUT_BYTES} bytes of JSON; this one is {size}", field="tabs"
        )


def with_tabs(layout: Layout, tabs: Sequence[Tab]) -> Layout:
    changed = replace(layout, tabs=tuple(tabs))
    check_size(changed)
    return changed


def reorder(current: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """``wanted`` must name every one of ``current`` exactly once (checked by the caller for strangers)."""
    missing = [i for i in current if i not in wanted]
    if missing or len(wanted) != len(current):
        raise InvalidInput(
            f"layoutOrder must list every one of your layouts once; missing {', '.join(missing)}",
            field="layoutOrder",
        )
    return list(wanted)


# --- settings ---------------------------------------------------------------------------------

_SETTINGS_FIELDS = ("selectedLayoutId", "isIntroductionTourCompleted", "is24HTimeFormatUsed", "theme")


@dataclass(frozen=True, slots=True)
class SettingsPatch:
    """What a PATCH /ui/settings changes; None leaves a field as it is."""

    select_layout: bool = False  # selectedLayoutId was given (null clears the selection)
    selected_layout_id: str | None = None
    is_introduction_tour_completed: bool | None = None
    is_24h_time_format_used: bool | None = None
    theme: Theme | None = None

    def apply(self, settings: UiSettings) -> UiSettings:
        return UiSettings(
            selected_layout_id=self.selected_layout_id if self.select_layout else settings.selected_layout_id,
            is_introduction_tour_completed=(
                settings.is_introduction_tour_completed
                if self.is_introduction_tour_completed is None
                else self.is_introduction_tour_completed
            ),
            is_24h_time_format_used=(
                settings.is_24h_time_format_used
                if self.is_24h_time_format_used is None
                else self.is_24h_time_format_used
            ),
            theme=settings.theme if self.theme is None else self.theme,
        )


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def parse_theme(value: object, field: str = "theme") -> Theme:
    try:
        return Theme(str(value))
    except ValueError:
        raise InvalidInput(
            f"{field} must be one of {', '.join(t.value for t in Theme)}", field=field
        ) from None


def parse_settings_patch(body: object) -> SettingsPatch:
    fields = _object(body, "", _SETTINGS_FIELDS)
    selected = fields.get("selectedLayoutId")
    return SettingsPatch(
        select_layout="selectedLayoutId" in fields,
        selected_layout_id=None if selected is None else parse_id(selected, "selectedLayoutId"),
        is_introduction_tour_completed=(
            _bool(fields["isIntroductionTourCompleted"], "isIntroductionTourCompleted")
            if "isIntroductionTourCompleted" in fields
            else None
        ),
        is_24h_time_format_used=(
            _bool(fields["is24HTimeFormatUsed"], "is24HTimeFormatUsed")
            if "is24HTimeFormatUsed" in fields
            else None
        ),
        theme=parse_theme(fields["theme"]) if "theme" in fields else None,
    )


# --- JSON out ---------------------------------------------------------------------------------


def _widget_json(w: Widget) -> dict[str, Any]:
    out: dict[str, Any] = {"id": w.id, "type": w.type.value}
    if w.pairs is not None:
        out["settings"] = {"pairs": list(w.pairs)}
    return out


def tabs_json(tabs: Sequence[Tab]) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "selectedWidgetId": t.selected_widget_id,
            "sizes": {
                "x": t.sizes.x,
                "y": t.sizes.y,
                "cols": t.sizes.cols,
                "rows": t.sizes.rows,
                "layerIndex": t.sizes.layer_index,
            },
            "widgets": [_widget_json(w) for w in t.widgets],
        }
        for t in tabs
    ]


def layout_json(layout: Layout) -> dict[str, Any]:
    return {"id": layout.id, "name": layout.name, "tabs": tabs_json(layout.tabs)}


def template_json(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "isDefault": template.is_default,
        "tabs": tabs_json(template.tabs),
    }


def settings_json(settings: UiSettings) -> dict[str, Any]:
    return {
        "selectedLayoutId": settings.selected_layout_id,
        "isIntroductionTourCompleted": settings.is_introduction_tour_completed,
        "is24HTimeFormatUsed": settings.is_24h_time_format_used,
        "theme": settings.theme.value,
    }
