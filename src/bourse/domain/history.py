"""History server queries (brokerage ``/api/...``): what each query filters and sorts on, what
every ``entryType`` means, and the conversion of amounts into the root asset (RAT).

A request body is ``{"filters": [{"entryType", "field", "value"}, ...], "sort": {"field" | "column",
"direction"}, "limit", "offset"}``. ``parse_query`` turns it into a ``HistoryQuery`` whose values are
typed (Decimal, datetime, int, str), or raises ``InvalidInput`` naming what is wrong: an unknown
field, an entryType the field's type does not support, a value of the wrong type, an unknown key.
Nothing is ignored. Filters are ANDed.

Each query's fields are the names of its response rows. Aggregating queries (commissions, markups,
billing, active accounts) also take *period* filters, which select the executions or trades that are
aggregated (``createdAt``: their time; ``marketId``: their market) rather than the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.order_views import iso_millis
from bourse.domain.orders import OrderStatus, OrderType, Side, TimeInForce
from bourse.domain.trading import parse_time
from bourse.domain.transfers import TransferStatus, TransferType
from bourse.domain.values import AssetId
from bourse.domain.venues import ExternalOrderStatus

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_FILTERS = 50
MAX_IN_VALUES = 1000
MAX_TEXT = 256
MAX_ID = 2**63 - 1
# Amounts in the root asset and rates are rounded (half away from zero, as PostgreSQL round()) to
# this many decimals: the storage's.
RAT_SCALE = 18
# The orders a customer did not place; none exist yet (they come with margin and dealer trading).
UNSOLICITED_SOURCES = ("StopOut", "Liquidation", "Dealer")
USER_STATUSES = ("Active", "Blocked")


class EntryType(StrEnum):
    EQUALS = "Equals"
    NOT_EQUALS = "NotEquals"
    CONTAINS = "Contains"
    GREATER_THAN = "GreaterThan"
    GREATER_OR_EQUAL = "GreaterOrEqual"
    LESS_THAN = "LessThan"
    LESS_OR_EQUAL = "LessOrEqual"
    IN = "In"
    BETWEEN = "Between"


class FieldType(StrEnum):
    TEXT = "text"  # strings: Equals, NotEquals, Contains (case-insensitive), In
    ID = "id"  # integer ids shown as text (userId, orderId, executionId): compared as numbers
    NUMBER = "number"  # decimal amounts and prices
    INTEGER = "integer"  # counts and scales
    TIME = "time"  # ISO-8601 with a zone, compared to the millisecond
    ENUM = "enum"  # one of the field's values: Equals, NotEquals, In


class SortDirection(StrEnum):
    ASC = "Asc"
    DESC = "Desc"


_E = EntryType
_ORDERED = frozenset(
    {
        _E.EQUALS,
        _E.NOT_EQUALS,
        _E.GREATER_THAN,
        _E.GREATER_OR_EQUAL,
        _E.LESS_THAN,
        _E.LESS_OR_EQUAL,
        _E.IN,
        _E.BETWEEN,
    }
)
ENTRY_TYPES: Mapping[FieldType, frozenset[EntryType]] = MappingProxyType(
    {
        FieldType.TEXT: frozenset({_E.EQUALS, _E.NOT_EQUALS, _E.CONTAINS, _E.IN}),
        FieldType.ID: _ORDERED,
        FieldType.NUMBER: _ORDERED,
        FieldType.INTEGER: _ORDERED,
        FieldType.TIME: _ORDERED,
        FieldType.ENUM: frozenset({_E.EQUALS, _E.NOT_EQUALS, _E.IN}),
    }
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    choices: tuple[str, ...] = ()
    nullable: bool = False
    # Period filters select what is aggregated; they are not columns of the rows.
    period: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    field: str
    entry: EntryType
    # Decimal | int | str | datetime | None, a tuple of those for In, (low, high) for Between.
    value: Any
    period: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    field: str
    descending: bool


class QueryKind(StrEnum):
    ACTIVE_ACCOUNTS = "ActiveAccounts"
    BALANCES = "Balances"
    ACCOUNT_BALANCES = "AccountBalances"
    BILLING_INFO = "BillingInfo"
    COMMISSIONS_ACCOUNTS_ASSETS = "CommissionsAccountsAssets"
    COMMISSIONS_USERS_ASSETS = "CommissionsUsersAssets"
    COMMISSIONS_USERS = "CommissionsUsers"
    COMMISSIONS_ACCOUNTS = "CommissionsAccounts"
    COMMISSIONS_ASSETS = "CommissionsAssets"
    MARKUP_REVENUE = "MarkupRevenue"
    OPEN_ORDERS = "OpenOrders"
    ORDERS = "Orders"
    EXTERNAL_ORDERS = "ExternalOrders"
    TRADES = "Trades"
    UNSOLICITED_TRADES = "UnsolicitedTrades"
    TRANSFERS = "Transfers"


@dataclass(frozen=True, slots=True)
class QuerySchema:
    kind: QueryKind
    fields: Mapping[str, FieldSpec]  # the response row's fields, in the response's order
    period: Mapping[str, FieldSpec]
    key: tuple[str, ...]  # unique per row: appended to every sort so pages never overlap
    default_sort: Sort | None
    rows: bool = True  # False: a single answer (active-accounts, billing-info), no sort or paging

    def filter_field(self, name: str) -> FieldSpec | None:
        return self.period.get(name) or self.fields.get(name)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    kind: QueryKind
    filters: tuple[Filter, ...] = ()
    sort: tuple[Sort, ...] = ()  # the requested (or default) sort, then the key
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def period_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.period)

    @property
    def row_filters(self) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if not f.period)


# --- the schemas --------------------------------------------------------------------------------


def _t(name: str, nullable: bool = False) -> FieldSpec:
    return FieldSpec(name, FieldType.TEXT, nullable=nullable)


def _id(name: str) -> FieldSpec:
    return FieldSpec(name, FieldType.ID)


def _n(name: str, nullable: bool = False) -> FieldSpec:
    return FieldSpec(name, FieldType.NUMBER, nullable=nullable)


def _i(name: str) -> FieldSpec:
    return FieldSpec(name, FieldType.INTEGER)


def _time(name: str, nullable: bool = False) -> FieldSpec:
    return FieldSpec(name, FieldType.TIME, nullable=nullable)


def _enum(name: str, values: Iterable[str]) -> FieldSpec:
    return FieldSpec(name, FieldType.ENUM, tuple(values))


def _fields(*specs: FieldSpec) -> Mapping[str, FieldSpec]:
    return MappingProxyType({s.name: s for s in specs})


def _period(*names: str) -> Mapping[str, FieldSpec]:
    types = {
        "createdAt": FieldType.TIME,
        "marketId": FieldType.TEXT,
        "userId": FieldType.ID,
        "accountId": FieldType.TEXT,
    }
    return MappingProxyType({n: FieldSpec(n, types[n], period=True) for n in names})


_NONE: Mapping[str, FieldSpec] = MappingProxyType({})
_SIDES = [s.value for s in Side]
_TYPES = [t.value for t in OrderType]
_TIFS = [t.value for t in TimeInForce]
_STATUSES = [s.value for s in OrderStatus]
_USER = (_id("userId"), _t("userEmail", nullable=True))
_ACCOUNT = (_t("accountId"), _t("accountName"))
_ASSET = (_t("assetId"), _t("assetName"))
_MARKET = (_t("marketId"), _t("marketDisplayName"))
_BALANCE_AMOUNTS = (
    _n("totalAssetAmount"),
    _n("availableAssetAmount"),
    _n("lockedAssetAmount"),
    _n("rateToRootAsset", nullable=True),
    _n("totalAssetAmountInRAT", nullable=True),
    _n("availableAssetAmountInRAT", nullable=True),
    _n("lockedAssetAmountInRAT", nullable=True),
)
_COMMISSION_AMOUNTS = (
    _n("totalAssetAmount"),
    _n("totalAssetAmountInRAT", nullable=True),
    _n("totalAssetCommission"),
    _n("totalAssetCommissionInRAT", nullable=True),
)
_TOTALS = (_n("totalBalanceInRAT"), _n("totalCommissionInRAT"), _n("totalTradedVolumeInRAT"))
_ORDER_TERMS = (_enum("side", _SIDES), _enum("orderType", _TYPES), _enum("timeInForce", _TIFS))
_COMMISSION = (
    _n("commissionAmount"),
    _t("commissionAssetId"),
    _t("commissionAssetName"),
    _n("commissionInRAT", nullable=True),
)
_EXECUTION_PERIOD = _period("createdAt", "marketId")


def _order_fields(*, open_orders: bool) -> Mapping[str, FieldSpec]:
    # The spec lists open orders' filledAmount before the prices, and orders' after them.
    prices = (_n("avgExecutionPrice", nullable=True), _n("limitPrice", nullable=True))
    amounts = (_n("baseAmount"), _n("quoteAmount"))
    fills = (_n("filledAmount"), _n("remainingAmount"))
    middle = (*amounts, *fills, *prices) if open_orders else (*amounts, *prices, *fills)
    return _fields(
        _id("orderId"),
        *_USER,
        *_ACCOUNT,
        *_MARKET,
        *_ORDER_TERMS,
        _enum("orderStatus", _STATUSES),
        _i("hedge"),
        *middle,
        *_COMMISSION,
        _time("createdAt"),
        _time("updatedAt"),
    )


def _trade_fields(*, commission: bool) -> Mapping[str, FieldSpec]:
    return _fields(
        *_USER,
        *_ACCOUNT,
        _id("orderId"),
        _t("externalOrderId", nullable=True),
        _t("lpOrderId", nullable=True),
        _id("executionId"),
        _t("lpExecutionId", nullable=True),
        *_MARKET,
        *_ORDER_TERMS,
        _n("baseAmount"),
        _n("quoteAmount"),
        _n("executionPrice"),
        *(_COMMISSION if commission else ()),
        _time("createdAt"),
    )


def _asc(name: str) -> Sort:
    return Sort(name, False)


def _desc(name: str) -> Sort:
    return Sort(name, True)


_K = QueryKind
SCHEMAS: Mapping[QueryKind, QuerySchema] = MappingProxyType(
    {
        _K.ACTIVE_ACCOUNTS: QuerySchema(
            _K.ACTIVE_ACCOUNTS,
            _NONE,
            _period("createdAt", "marketId", "userId", "accountId"),
            (),
            None,
            rows=False,
        ),
        _K.BILLING_INFO: QuerySchema(
            _K.BILLING_INFO, _NONE, _period("createdAt", "marketId"), (), None, rows=False
        ),
        _K.BALANCES: QuerySchema(
            _K.BALANCES,
            _fields(_id("userId"), *_ASSET, *_BALANCE_AMOUNTS),
            _NONE,
            ("userId", "assetId"),
            _asc("userId"),
        ),
        _K.ACCOUNT_BALANCES: QuerySchema(
            _K.ACCOUNT_BALANCES,
            _fields(_id("userId"), *_ACCOUNT, *_ASSET, *_BALANCE_AMOUNTS),
            _NONE,
            ("accountId", "assetId"),
            _asc("accountId"),
        ),
        _K.COMMISSIONS_ACCOUNTS_ASSETS: QuerySchema(
            _K.COMMISSIONS_ACCOUNTS_ASSETS,
            _fields(_id("userId"), *_ACCOUNT, *_ASSET, *_COMMISSION_AMOUNTS),
            _EXECUTION_PERIOD,
            ("accountId", "assetId"),
            _asc("accountId"),
        ),
        _K.COMMISSIONS_USERS_ASSETS: QuerySchema(
            _K.COMMISSIONS_USERS_ASSETS,
            _fields(_id("userId"), *_ASSET, *_COMMISSION_AMOUNTS),
            _EXECUTION_PERIOD,
            ("userId", "assetId"),
            _asc("userId"),
        ),
        _K.COMMISSIONS_USERS: QuerySchema(
            _K.COMMISSIONS_USERS,
            _fields(*_USER, _enum("status", USER_STATUSES), *_TOTALS),
            _EXECUTION_PERIOD,
            ("userId",),
            _asc("userId"),
        ),
        _K.COMMISSIONS_ACCOUNTS: QuerySchema(
            _K.COMMISSIONS_ACCOUNTS,
            _fields(*_USER, *_ACCOUNT, *_TOTALS),
            _EXECUTION_PERIOD,
            ("accountId",),
            _asc("accountId"),
        ),
        _K.COMMISSIONS_ASSETS: QuerySchema(
            _K.COMMISSIONS_ASSETS,
            _fields(*_ASSET, _i("assetAmountScale"), *_COMMISSION_AMOUNTS, _time("createdAt")),
            _EXECUTION_PERIOD,
            ("assetId",),
            _asc("assetId"),
        ),
        _K.MARKUP_REVENUE: QuerySchema(
            _K.MARKUP_REVENUE,
            _fields(
                _t("marketId"),
                _t("displayName"),
                _i("tradesCount"),
                _n("tradedVolume"),
                _n("tradedVolumeInRat", nullable=True),
                _n("markupProfitInRat"),
                _n("commissionProfitInRat"),
            ),
            _period("createdAt"),
            ("marketId",),
            _asc("marketId"),
        ),
        _K.OPEN_ORDERS: QuerySchema(
            _K.OPEN_ORDERS, _order_fields(open_orders=True), _NONE, ("orderId",), _desc("createdAt")
        ),
        _K.ORDERS: QuerySchema(
            _K.ORDERS, _order_fields(open_orders=False), _NONE, ("orderId",), _desc("createdAt")
        ),
        _K.EXTERNAL_ORDERS: QuerySchema(
            _K.EXTERNAL_ORDERS,
            _fields(
                _t("externalOrderId"),
                _t("lpOrderId", nullable=True),
                _id("orderId"),
                *_USER,
                *_ACCOUNT,
                *_MARKET,
                *_ORDER_TERMS,
                # The external order's state (domain/venues.py), not a spot order's status.
                _enum("orderStatus", [st.value for st in ExternalOrderStatus]),
                _n("baseAmount"),
                _n("quoteAmount"),
                _n("avgExecutionPrice", nullable=True),
                _n("limitPrice", nullable=True),
                _n("filledAmount"),
                _n("remainingAmount"),
                _n("commissionAmount"),
                # Known once the venue charged something.
                _t("commissionAssetId", nullable=True),
                _t("commissionAssetName", nullable=True),
                _n("commissionInRAT", nullable=True),
                _time("createdAt"),
                _time("updatedAt"),
            ),
            _NONE,
            ("externalOrderId",),
            _desc("createdAt"),
        ),
        _K.TRADES: QuerySchema(
            _K.TRADES, _trade_fields(commission=True), _NONE, ("executionId",), _desc("createdAt")
        ),
        _K.UNSOLICITED_TRADES: QuerySchema(
            _K.UNSOLICITED_TRADES,
            _trade_fields(commission=False),
            _NONE,
            ("executionId",),
            _desc("createdAt"),
        ),
        _K.TRANSFERS: QuerySchema(
            _K.TRANSFERS,
            _fields(
                *_USER,
                *_ACCOUNT,
                _t("transferId"),
                *_ASSET,
                _enum("type", [t.value for t in TransferType]),
                _enum("status", [s.value for s in TransferStatus]),
                _n("assetAmount"),
                _time("createdAt"),
                _n("rateToRootAsset", nullable=True),
                _n("assetAmountInRAT", nullable=True),
                _t("deduplicationId"),
            ),
            _NONE,
            ("transferId",),
            _desc("createdAt"),
        ),
    }
)


# --- parsing ------------------------------------------------------------------------------------


def parse_query(kind: QueryKind, body: object) -> HistoryQuery:
    """The typed query of a request body (None or {} is "everything, first page")."""
    schema = SCHEMAS[kind]
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    allowed = {"filters", "sort", "limit", "offset"} if schema.rows else {"filters"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown key {unknown[0]!r}; this query takes {', '.join(sorted(allowed))}", field=unknown[0]
        )
    filters = _filters(schema, body.get("filters"))
    if not schema.rows:
        return HistoryQuery(kind, filters, (), 0, 0)
    sort = _sort(schema, body.get("sort"))
    limit = _int(body.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(body.get("offset"), "offset", 0, 0, MAX_ID)
    return HistoryQuery(kind, filters, sort, limit, offset)


def _int(value: object, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return value


def _filters(schema: QuerySchema, raw: object) -> tuple[Filter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput("filters must be a list", field="filters")
    if len(raw) > MAX_FILTERS:
        raise InvalidInput(f"at most {MAX_FILTERS} filters", field="filters")
    return tuple(_filter(schema, item, i) for i, item in enumerate(raw))


def _filter(schema: QuerySchema, item: object, index: int) -> Filter:
    where = f"filters[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where} must be an object", field=where)
    extra = sorted(set(item) - {"entryType", "field", "value"})
    if extra:
        raise InvalidInput(f"{where}: unknown key {extra[0]!r}", field=f"{where}.{extra[0]}")
    name = item.get("field")
    spec = schema.filter_field(name) if isinstance(name, str) else None
    if spec is None:
        known = sorted({*schema.period, *schema.fields})
        raise InvalidInput(
            f"{where}.field: unknown field {name!r}; this query filters on {', '.join(known) or 'nothing'}",
            field=f"{where}.field",
        )
    entry_name = item.get("entryType")
    try:
        entry = EntryType(entry_name) if isinstance(entry_name, str) else None
    except ValueError:
        entry = None
    if entry is None:
        raise InvalidInput(
            f"{where}.entryType must be one of {', '.join(e.value for e in EntryType)}",
            field=f"{where}.entryType",
        )
    allowed = ENTRY_TYPES[spec.type]
    if entry not in allowed:
        raise InvalidInput(
            f"{where}: {spec.name} is a {spec.type.value} field; its entryTypes are "
            f"{', '.join(e.value for e in EntryType if e in allowed)}",
            field=f"{where}.entryType",
        )
    if "value" not in item:
        raise InvalidInput(f"{where}.value is required", field=f"{where}.value")
    value = _value(spec, entry, item["value"], f"{where}.value")
    return Filter(spec.name, entry, value, spec.period)


def _value(spec: FieldSpec, entry: EntryType, raw: object, where: str) -> Any:
    if entry is EntryType.IN:
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN_VALUES:
            raise InvalidInput(f"{where}: In takes a list of 1 to {MAX_IN_VALUES} values", field=where)
        return tuple(_scalar(spec, v, f"{where}[{i}]") for i, v in enumerate(raw))
    if entry is EntryType.BETWEEN:
        if not isinstance(raw, list) or len(raw) != 2:
            raise InvalidInput(f"{where}: Between takes a list of two values [low, high]", field=where)
        low, high = (_scalar(spec, v, f"{where}[{i}]") for i, v in enumerate(raw))
        if low > high:
            raise InvalidInput(f"{where}: Between needs low <= high", field=where)
        return (low, high)
    if raw is None:
        if entry in (EntryType.EQUALS, EntryType.NOT_EQUALS) and spec.nullable:
            return None
        raise InvalidInput(
            f"{where}: null is only for Equals/NotEquals on a field that can be null", field=where
        )
    if entry is EntryType.CONTAINS:
        text = _scalar(spec, raw, where)
        if not text:
            raise InvalidInput(f"{where}: Contains needs a non-empty text", field=where)
        return text
    return _scalar(spec, raw, where)


def _scalar(spec: FieldSpec, raw: object, where: str) -> Any:
    kind = spec.type
    if kind is FieldType.TEXT or kind is FieldType.ENUM:
        if not isinstance(raw, str) or len(raw) > MAX_TEXT:
            raise InvalidInput(
                f"{where}: {spec.name} takes a string of at most {MAX_TEXT} characters", field=where
            )
        if kind is FieldType.ENUM and raw not in spec.choices:
            raise InvalidInput(f"{where}: {spec.name} is one of {', '.join(spec.choices)}", field=where)
        return raw
    if kind is FieldType.ID or kind is FieldType.INTEGER:
        if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 19:
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_ID:
            raise InvalidInput(f"{where}: {spec.name} takes a whole number", field=where)
        return raw
    if kind is FieldType.NUMBER:
        return _decimal(raw, spec.name, where)
    if kind is FieldType.TIME:
        return _time_value(raw, spec.name, where)
    raise AssertionError(kind)  # pragma: no cover


def _decimal(raw: object, name: str, where: str) -> Decimal:
    number: Decimal | None = None
    if isinstance(raw, Decimal):
        number = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        number = Decimal(raw)
    elif isinstance(raw, str) and len(raw) <= 64:
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            number = None
    # A float already lost digits before it got here: the API parses JSON numbers as Decimal.
    if number is None or not number.is_finite():
        raise InvalidInput(f"{where}: {name} takes a decimal number", field=where)
    return number


def _time_value(raw: object, name: str, where: str) -> datetime:
    try:
        return parse_time(raw, where)
    except InvalidInput:
        raise InvalidInput(f"{where}: {name} takes an ISO-8601 time with a zone", field=where) from None


def _sort(schema: QuerySchema, raw: object) -> tuple[Sort, ...]:
    requested = schema.default_sort
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise InvalidInput("sort must be an object", field="sort")
        extra = sorted(set(raw) - {"field", "column", "direction"})
        if extra:
            raise InvalidInput(f"sort: unknown key {extra[0]!r}", field=f"sort.{extra[0]}")
        field_name, column = raw.get("field"), raw.get("column")
        if field_name is not None and column is not None and field_name != column:
            raise InvalidInput("sort: give field or column (they differ)", field="sort.field")
        name = field_name if field_name is not None else column
        if name is None and requested is None:
            raise InvalidInput("sort needs a field", field="sort.field")
        if name is not None and (not isinstance(name, str) or name not in schema.fields):
            raise InvalidInput(
                f"sort: unknown field {name!r}; sortable: {', '.join(schema.fields)}", field="sort.field"
            )
        direction = raw.get("direction")
        # "Unspecified" is the spec's placeholder enum value: the query's default direction.
        if direction not in (None, "Unspecified", SortDirection.ASC.value, SortDirection.DESC.value):
            raise InvalidInput("sort.direction must be Asc or Desc", field="sort.direction")
        base = requested if name is None or (requested is not None and name == requested.field) else None
        descending = base.descending if base is not None else False
        if direction in (SortDirection.ASC.value, SortDirection.DESC.value):
            descending = direction == SortDirection.DESC.value
        requested = Sort(name if name is not None else requested.field, descending)  # type: ignore[union-attr]
    assert requested is not None
    keys = tuple(Sort(k, requested.descending) for k in schema.key if k != requested.field)
    return (requested, *keys)


# --- "history/orders": the caller's own orders ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnOrdersQuery:
    """``POST /api/history/orders/list``: newest first; ``last_order_id`` continues after a page."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: tuple[OrderStatus, ...] = ()
    last_order_id: int | None = None
    limit: int = DEFAULT_LIMIT


def parse_own_orders(body: object) -> OwnOrdersQuery:
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    allowed = {"createdAtFrom", "createdAtTo", "orderStatuses", "lastOrderId", "limit"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    start = body.get("createdAtFrom")
    end = body.get("createdAtTo")
    created_from = None if start is None else _time_value(start, "createdAtFrom", "createdAtFrom")
    created_to = None if end is None else _time_value(end, "createdAtTo", "createdAtTo")
    if created_from is not None and created_to is not None and created_from > created_to:
        raise InvalidInput("createdAtFrom is after createdAtTo", field="createdAtFrom")
    raw_statuses = body.get("orderStatuses")
    statuses: list[OrderStatus] = []
    if raw_statuses is not None:
        if not isinstance(raw_statuses, list) or len(raw_statuses) > len(OrderStatus):
            raise InvalidInput("orderStatuses must be a list of order statuses", field="orderStatuses")
        for value in raw_statuses:
            try:
                statuses.append(OrderStatus(value))
            except ValueError:
                raise InvalidInput(
                    f"orderStatuses: {value!r} is not one of {', '.join(_STATUSES)}", field="orderStatuses"
                ) from None
    last = body.get("lastOrderId")
    last_id = None
    if last is not None:
        if not isinstance(last, str) or not last.isascii() or not last.isdigit() or len(last) > 18:
            raise InvalidInput("lastOrderId must be an order id", field="lastOrderId")
        last_id = int(last)
    limit = _int(body.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return OwnOrdersQuery(created_from, created_to, tuple(statuses), last_id, limit)


OWN_ORDER_FIELDS = _fields(
    _t("marketId"),
    _id("orderId"),
    _enum("timeInForce", _TIFS),
    _enum("status", _STATUSES),
    _t("source"),
    _enum("side", _SIDES),
    _enum("orderType", _TYPES),
    _n("requestedAmount"),
    _n("remainingAmount"),
    _n("requestedPrice", nullable=True),
    _n("executionPrice", nullable=True),
    _i("hedge"),
    _time("createdAt"),
    _time("updatedAt"),
    _time("cancellationDate", nullable=True),
    _n("commission"),
)


# --- rendering ----------------------------------------------------------------------------------


def render_row(fields: Mapping[str, FieldSpec], row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the response's JSON values, in the response's field order: ids as text,
    times ISO-8601 with milliseconds and ``Z``, amounts as Decimal (rendered as exact JSON numbers)."""
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        value = row[name]
        if value is None:
            out[name] = None
        elif spec.type is FieldType.ID:
            out[name] = str(value)
        elif spec.type is FieldType.TIME:
            out[name] = iso_millis(value)
        elif spec.type is FieldType.NUMBER:
            out[name] = plain(value)
        elif spec.type is FieldType.INTEGER:
            out[name] = int(value)
        else:
            out[name] = value
    return out


def plain(value: Decimal) -> Decimal:
    """``value`` as is, but zero (of any scale or sign) as plain 0; the JSON renderer drops trailing
    zeros (without rounding: ``normalize`` would round to the context's 28 digits)."""
    return Decimal(0) if value == 0 else value


@dataclass(frozen=True, slots=True)
class BillingTotals:
    """``billing-info``: accounts with executions, and the traded volume in RAT per market type
    (each trade counted once, at its quote amount)."""

    active_accounts: int
    volume_in_rat: Mapping[str, Decimal]


# --- conversion into the root asset ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketPrice:
    """The last trade price of a market: one ``base`` costs ``price`` ``quote``."""

    base: AssetId
    quote: AssetId
    price: Decimal


@dataclass(frozen=True, slots=True)
class Rates:
    root: AssetId
    of: Mapping[AssetId, Decimal] = field(default_factory=dict)  # assets without a price are absent

    def rate(self, asset: str) -> Decimal | None:
        return self.of.get(AssetId(asset))


def rates_to_root(root: AssetId, assets: Iterable[str], prices: Sequence[MarketPrice]) -> Rates:
    """What one unit of each asset is worth in ``root`` at the latest prices: through a market
    between the two (either way round), else through one intermediate asset (two markets). A direct
    market wins over a path; among paths, the one through the intermediate asset first by id.
    Assets without such markets, or whose markets have not traded yet, have no rate."""
    edges: dict[tuple[str, str], Decimal] = {}
    for p in sorted(prices, key=lambda p: (p.base, p.quote)):
        if p.price > 0:
            edges.setdefault((p.base, p.quote), p.price)
            edges.setdefault((p.quote, p.base), 1 / p.price)
    neighbours = sorted({b for (_, b) in edges})
    out: dict[AssetId, Decimal] = {root: Decimal(1)}
    for asset in sorted(set(assets)):
        if asset == root:
            continue
        direct = edges.get((asset, root))
        if direct is not None:
            out[AssetId(asset)] = direct
            continue
        for middle in neighbours:
            first, second = edges.get((asset, middle)), edges.get((middle, root))
            if first is not None and second is not None and middle not in (asset, root):
                out[AssetId(asset)] = first * second
                break
    return Rates(root, MappingProxyType(out))
