"""The history server's reads: SQLAlchemy Core selects built from validated ``HistoryQuery`` values.

Every query is a *source* (a select whose columns are labelled with the response's field names,
with the query's period filters already applied inside it) wrapped as a subquery; the row filters,
the sort and the page apply to that subquery's columns. PostgreSQL flattens plain row sources and
pushes filters on grouping keys into aggregating ones, so the indexes of migration 0010 serve them.
Values only ever reach SQL as bound parameters, field names only through the fixed maps below.

Amounts in the root asset (RAT) join a ``VALUES`` list of the rates the service computed
(``domain.history.rates_to_root``); an asset without a rate joins NULL, so a row's ``...InRAT`` is
NULL and an aggregate leaves that amount out. They are rounded (half away from zero) to 18 decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Numeric,
    Select,
    Text,
    case,
    cast,
    column,
    distinct,
    func,
    literal,
    null,
    select,
    true,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import ColumnClause

from bourse.adapters.db.derivatives_tables import position_executions
from bourse.adapters.db.ledger_tables import assets, ledger_accounts
from bourse.adapters.db.market_tables import markets
from bourse.adapters.db.tables import accounts, users
from bourse.adapters.db.trading_tables import LIVE_STATUSES, executions, orders, trades
from bourse.adapters.db.transfer_tables import transfers
from bourse.adapters.db.venue_tables import external_orders
from bourse.domain.errors import InvariantViolation
from bourse.domain.history import (
    RAT_SCALE,
    SCHEMAS,
    UNSOLICITED_SOURCES,
    BillingTotals,
    EntryType,
    Filter,
    HistoryQuery,
    MarketPrice,
    OwnOrdersQuery,
    QueryKind,
    Rates,
)
from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.values import AccountId, AssetId, UserId

NUMBER = Numeric(asdecimal=True)
_CASH = (Bucket.AVAILABLE.value, Bucket.LOCKED.value, Bucket.STAKE.value, Bucket.MARGIN.value)
# Stakes escrowed by ext-order products and derivative positions' margin count as locked, as in
# the front office (service/accounts).
_LOCKED = (Bucket.LOCKED.value, Bucket.STAKE.value, Bucket.MARGIN.value)
_OWNER_PREFIX = account_owner("")
_QUANTUM = Decimal(1).scaleb(-RAT_SCALE)

Columns = Mapping[str, ColumnElement[Any]]


def _rat(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.round(expr, RAT_SCALE, type_=NUMBER)


def _none(kind: Any = Text) -> ColumnElement[Any]:
    return cast(null(), kind)


def _rates(rates: Rates, name: str) -> Any:
    # The root asset is always there: a VALUES list is never empty.
    return values(column("asset_id", Text), column("rate", NUMBER), name=name).data(sorted(rates.of.items()))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(col: ColumnElement[Any], f: Filter) -> ColumnElement[bool]:
    v = f.value
    e = f.entry
    if e is EntryType.EQUALS:
        return col.is_(None) if v is None else col == v
    if e is EntryType.NOT_EQUALS:
        # NULLs are "not equal" to a value too (plain SQL <> would drop them).
        return col.is_not(None) if v is None else col.is_distinct_from(v)
    if e is EntryType.CONTAINS:
        return col.ilike(f"%{_escape_like(v)}%", escape="\\")
    if e is EntryType.GREATER_THAN:
        return col > v
    if e is EntryType.GREATER_OR_EQUAL:
        return col >= v
    if e is EntryType.LESS_THAN:
        return col < v
    if e is EntryType.LESS_OR_EQUAL:
        return col <= v
    if e is EntryType.IN:
        return col.in_(list(v))
    if e is EntryType.BETWEEN:
        return col.between(v[0], v[1])
    raise InvariantViolation(f"entry type {e} has no SQL")  # pragma: no cover


def _where(columns: Columns | Any, filters: Sequence[Filter]) -> list[ColumnElement[bool]]:
    # ``columns``: a map of ours, or a subquery's column collection (``q.c``).
    return [_condition(columns[f.field], f) for f in filters]


# --- row sources ------------------------------------------------------------------------------------


def _commission_asset() -> Any:
    return assets.alias("commission_asset")


def _orders_source(rates: Rates, *, open_only: bool) -> Select[Any]:
    o, a, u, m = orders.c, accounts.c, users.c, markets.c
    ca, r = _commission_asset(), _rates(rates, "r")
    filled = o.quantity - o.remaining
    average = case((filled > 0, func.round(o.executed_quote / filled, m.price_scale + 4)), else_=None)
    stmt = select(
        o.order_id.label("orderId"),
        a.uid.label("userId"),
        u.email.label("userEmail"),
        o.account_id.label("accountId"),
        a.name.label("accountName"),
        o.market_id.label("marketId"),
        m.display_name.label("marketDisplayName"),
        o.side.label("side"),
        o.type.label("orderType"),
        o.time_in_force.label("timeInForce"),
        o.status.label("orderStatus"),
        # Spot orders never hedge: the spec's number, 0.
        literal(0, Integer).label("hedge"),
        o.quantity.label("baseAmount"),
        o.executed_quote.label("quoteAmount"),
        filled.label("filledAmount"),
        o.remaining.label("remainingAmount"),
        cast(average, NUMBER).label("avgExecutionPrice"),
        o.price.label("limitPrice"),
        o.commission.label("commissionAmount"),
        o.commission_asset.label("commissionAssetId"),
        ca.c.name.label("commissionAssetName"),
        _rat(o.commission * r.c.rate).label("commissionInRAT"),
        o.created_at.label("createdAt"),
        o.updated_at.label("updatedAt"),
    ).select_from(
        orders.join(accounts, a.account_id == o.account_id)
        .join(users, u.uid == a.uid)
        .join(markets, m.market_id == o.market_id)
        .outerjoin(ca, ca.c.id == o.commission_asset)
        .outerjoin(r, r.c.asset_id == o.commission_asset)
    )
    return stmt.where(o.status.in_(LIVE_STATUSES)) if open_only else stmt


def _executions_source(rates: Rates, *, unsolicited: bool) -> Select[Any]:
    e, o, a, u, m = executions.c, orders.c, accounts.c, users.c, markets.c
    ca, r = _commission_asset(), _rates(rates, "r")
    # Orders routed to external venues do not exist yet: their ids are null.
    columns: list[ColumnElement[Any]] = [
        a.uid.label("userId"),
        u.email.label("userEmail"),
        e.account_id.label("accountId"),
        a.name.label("accountName"),
        e.order_id.label("orderId"),
        _none().label("externalOrderId"),
        _none().label("lpOrderId"),
        e.execution_id.label("executionId"),
        _none().label("lpExecutionId"),
        e.market_id.label("marketId"),
        m.display_name.label("marketDisplayName"),
        e.side.label("side"),
        o.type.label("orderType"),
        o.time_in_force.label("timeInForce"),
        e.amount.label("baseAmount"),
        e.quote_amount.label("quoteAmount"),
        e.price.label("executionPrice"),
    ]
    if not unsolicited:
        columns += [
            e.commission.label("commissionAmount"),
            e.commission_asset.label("commissionAssetId"),
            ca.c.name.label("commissionAssetName"),
            _rat(e.commission * r.c.rate).label("commissionInRAT"),
        ]
    columns.append(e.created_at.label("createdAt"))
    joined = (
        executions.join(orders, o.order_id == e.order_id)
        .join(accounts, a.account_id == e.account_id)
        .join(users, u.uid == a.uid)
        .join(markets, m.market_id == e.market_id)
    )
    if not unsolicited:
        joined = joined.outerjoin(ca, ca.c.id == e.commission_asset).outerjoin(
            r, r.c.asset_id == e.commission_asset
        )
    stmt = select(*columns).select_from(joined)
    return stmt.where(o.source.in_(UNSOLICITED_SOURCES)) if unsolicited else stmt


def _external_orders_source(rates: Rates) -> Select[Any]:
    """Hedge orders at external venues (service/hedging.py): one per hedged Dealer fill."""
    x, a, u, m = external_orders.c, accounts.c, users.c, markets.c
    ca, r = _commission_asset(), _rates(rates, "r")
    quote = case((x.average_price.is_not(None), x.filled * x.average_price), else_=0)
    return select(
        x.external_order_id.label("externalOrderId"),
        x.lp_order_id.label("lpOrderId"),
        x.order_id.label("orderId"),
        a.uid.label("userId"),
        u.email.label("userEmail"),
        x.account_id.label("accountId"),
        a.name.label("accountName"),
        x.market_id.label("marketId"),
        m.display_name.label("marketDisplayName"),
        x.side.label("side"),
        x.type.label("orderType"),
        x.time_in_force.label("timeInForce"),
        x.status.label("orderStatus"),
        x.amount.label("baseAmount"),
        cast(quote, NUMBER).label("quoteAmount"),
        x.average_price.label("avgExecutionPrice"),
        x.price.label("limitPrice"),
        x.filled.label("filledAmount"),
        (x.amount - x.filled).label("remainingAmount"),
        x.commission.label("commissionAmount"),
        x.commission_asset.label("commissionAssetId"),
        ca.c.name.label("commissionAssetName"),
        _rat(x.commission * r.c.rate).label("commissionInRAT"),
        x.created_at.label("createdAt"),
        x.updated_at.label("updatedAt"),
    ).select_from(
        external_orders.join(accounts, a.account_id == x.account_id)
        .join(users, u.uid == a.uid)
        .join(markets, m.market_id == x.market_id)
        .outerjoin(ca, ca.c.id == x.commission_asset)
        .outerjoin(r, r.c.asset_id == x.commission_asset)
    )


def _transfers_source(rates: Rates) -> Select[Any]:
    t, a, u, s = transfers.c, accounts.c, users.c, assets.c
    r = _rates(rates, "r")
    return select(
        a.uid.label("userId"),
        u.email.label("userEmail"),
        t.account_id.label("accountId"),
        a.name.label("accountName"),
        t.transfer_id.label("transferId"),
        t.asset_id.label("assetId"),
        s.name.label("assetName"),
        t.type.label("type"),
        t.status.label("status"),
        t.amount.label("assetAmount"),
        t.created_at.label("createdAt"),
        _rat(r.c.rate).label("rateToRootAsset"),
        _rat(t.amount * r.c.rate).label("assetAmountInRAT"),
        t.deduplication_id.label("deduplicationId"),
    ).select_from(
        transfers.join(accounts, a.account_id == t.account_id)
        .join(users, u.uid == a.uid)
        .join(assets, s.id == t.asset_id)
        .outerjoin(r, r.c.asset_id == t.asset_id)
    )


# --- balances -----------------------------------------------------------------------------------------


def _owner_of(account_id: ColumnElement[Any]) -> ColumnElement[Any]:
    return literal(_OWNER_PREFIX, Text) + account_id


def _balances_source(rates: Rates, *, per_account: bool) -> Select[Any]:
    a, la, s = accounts.c, ledger_accounts.c, assets.c
    r = _rates(rates, "r")
    total = func.sum(la.balance, type_=NUMBER)
    available = func.coalesce(func.sum(la.balance).filter(la.bucket == Bucket.AVAILABLE.value), 0)
    locked = func.coalesce(func.sum(la.balance).filter(la.bucket.in_(_LOCKED)), 0)
    grouped: list[ColumnElement[Any]] = [a.uid, a.account_id, a.name] if per_account else [a.uid]
    keys = [c.label(n) for c, n in zip(grouped, ("userId", "accountId", "accountName"), strict=False)]
    return (
        select(
            *keys,
            la.asset.label("assetId"),
            s.name.label("assetName"),
            total.label("totalAssetAmount"),
            cast(available, NUMBER).label("availableAssetAmount"),
            cast(locked, NUMBER).label("lockedAssetAmount"),
            _rat(r.c.rate).label("rateToRootAsset"),
            _rat(total * r.c.rate).label("totalAssetAmountInRAT"),
            _rat(available * r.c.rate).label("availableAssetAmountInRAT"),
            _rat(locked * r.c.rate).label("lockedAssetAmountInRAT"),
        )
        .select_from(
            accounts.join(ledger_accounts, la.owner == _owner_of(a.account_id))
            .join(assets, s.id == la.asset)
            .outerjoin(r, r.c.asset_id == la.asset)
        )
        .where(la.bucket.in_(_CASH))
        .group_by(*grouped, la.asset, s.name, r.c.rate)
    )


def _balance_in_rat_by(key: str, rates: Rates) -> Any:
    """Per user (``uid``) or account (``account_id``): the cash balances in RAT."""
    a, la = accounts.c, ledger_accounts.c
    r = _rates(rates, "rb")
    group = a.uid if key == "uid" else a.account_id
    return (
        select(group.label("key"), func.sum(la.balance * r.c.rate, type_=NUMBER).label("total"))
        .select_from(
            accounts.join(ledger_accounts, la.owner == _owner_of(a.account_id)).join(
                r, r.c.asset_id == la.asset
            )
        )
        .where(la.bucket.in_(_CASH))
        .group_by(group)
        .subquery(f"balance_by_{key}")
    )


# --- aggregates over executions ---------------------------------------------------------------------------

_EXECUTION_PERIOD: Columns = {"createdAt": executions.c.created_at, "marketId": executions.c.market_id}


def _fills(period: Sequence[Filter], *, per_account: bool = True) -> Any:
    """Executions in the period, summed per (account, commission asset), or per commission asset:
    the one heavy step, so it groups by as few keys as it can. Spot fees are charged in the quote
    asset, so the volume is in the commission asset too."""
    e = executions.c
    keys = [e.account_id, e.commission_asset] if per_account else [e.commission_asset]
    return (
        select(
            *keys,
            func.sum(e.quote_amount, type_=NUMBER).label("volume"),
            func.sum(e.commission, type_=NUMBER).label("fee"),
        )
        .where(*_where(_EXECUTION_PERIOD, period))
        .group_by(*keys)
        .subquery("fills")
    )


def _commissions_by_asset(period: Sequence[Filter], rates: Rates, by: str) -> Select[Any]:
    """Per (account, asset), (user, asset) or asset: the volume of the executions whose commission was
    charged in that asset (on spot, the quote asset), and the commissions."""
    f = _fills(period, per_account=by != "asset")
    a, s = accounts.c, assets.c
    r = _rates(rates, "r")
    volume = func.sum(f.c.volume, type_=NUMBER)
    fee = func.sum(f.c.fee, type_=NUMBER)
    amounts = [
        volume.label("totalAssetAmount"),
        _rat(volume * r.c.rate).label("totalAssetAmountInRAT"),
        fee.label("totalAssetCommission"),
        _rat(fee * r.c.rate).label("totalAssetCommissionInRAT"),
    ]
    asset_cols = [f.c.commission_asset.label("assetId"), s.name.label("assetName")]
    base = f.join(assets, s.id == f.c.commission_asset).outerjoin(r, r.c.asset_id == f.c.commission_asset)
    if by == "asset":
        return (
            select(*asset_cols, s.scale.label("assetAmountScale"), *amounts, s.created_at.label("createdAt"))
            .select_from(base)
            .group_by(f.c.commission_asset, s.name, s.scale, s.created_at, r.c.rate)
        )
    joined = base.join(accounts, a.account_id == f.c.account_id)
    if by == "account":
        return (
            select(
                a.uid.label("userId"),
                f.c.account_id.label("accountId"),
                a.name.label("accountName"),
                *asset_cols,
                *amounts,
            )
            .select_from(joined)
            .group_by(a.uid, f.c.account_id, a.name, f.c.commission_asset, s.name, r.c.rate)
        )
    return (
        select(a.uid.label("userId"), *asset_cols, *amounts)
        .select_from(joined)
        .group_by(a.uid, f.c.commission_asset, s.name, r.c.rate)
    )


def _commission_totals(period: Sequence[Filter], rates: Rates, *, per_account: bool) -> Select[Any]:
    """Per user or account with executions in the period: balances now, commissions and traded
    volume of the period, all in RAT."""
    f = _fills(period)
    a, u = accounts.c, users.c
    r = _rates(rates, "rf")
    key = f.c.account_id if per_account else a.uid
    totals = (
        select(
            key.label("key"),
            func.coalesce(func.sum(f.c.fee * r.c.rate), 0).label("fee"),
            func.coalesce(func.sum(f.c.volume * r.c.rate), 0).label("volume"),
        )
        .select_from(
            f.join(accounts, a.account_id == f.c.account_id).outerjoin(
                r, r.c.asset_id == f.c.commission_asset
            )
        )
        .group_by(key)
        .subquery("totals")
    )
    balance = _balance_in_rat_by("account_id" if per_account else "uid", rates)
    amounts = [
        _rat(func.coalesce(balance.c.total, 0)).label("totalBalanceInRAT"),
        _rat(totals.c.fee).label("totalCommissionInRAT"),
        _rat(totals.c.volume).label("totalTradedVolumeInRAT"),
    ]
    if per_account:
        return select(
            a.uid.label("userId"),
            u.email.label("userEmail"),
            a.account_id.label("accountId"),
            a.name.label("accountName"),
            *amounts,
        ).select_from(
            totals.join(accounts, a.account_id == totals.c.key)
            .join(users, u.uid == a.uid)
            .outerjoin(balance, balance.c.key == totals.c.key)
        )
    status = case((u.is_active, "Active"), else_="Blocked")
    return select(
        u.uid.label("userId"), u.email.label("userEmail"), status.label("status"), *amounts
    ).select_from(totals.join(users, u.uid == totals.c.key).outerjoin(balance, balance.c.key == totals.c.key))


def _markups(period: Sequence[Filter], rates: Rates) -> Select[Any]:
    """Per market that traded in the period: trades, volume (in the quote asset), dealer markup and
    commissions. Spot markets trade on the engine (``trades``, no markup); Cfd/Perpetual markets
    fill against the house (``position_executions``: a fill is one order, its markup
    ``|price - source price| * base`` is recorded on each execution in the settlement asset)."""
    t, e, m = trades.c, executions.c, markets.c
    by_trades = (
        select(t.market_id, func.count().label("n"), func.sum(t.quote_amount, type_=NUMBER).label("volume"))
        .where(*_where({"createdAt": t.created_at}, period))
        .group_by(t.market_id)
        .subquery("traded")
    )
    fees = (
        select(e.market_id, e.commission_asset, func.sum(e.commission, type_=NUMBER).label("fee"))
        .where(*_where({"createdAt": e.created_at}, period))
        .group_by(e.market_id, e.commission_asset)
        .subquery("fees")
    )
    rf = _rates(rates, "rf")
    fee_rat = (
        select(fees.c.market_id, func.sum(fees.c.fee * rf.c.rate, type_=NUMBER).label("fee"))
        .select_from(fees.join(rf, rf.c.asset_id == fees.c.commission_asset))
        .group_by(fees.c.market_id)
        .subquery("fee_rat")
    )
    rq = _rates(rates, "rq")
    spot = select(
        by_trades.c.market_id.label("marketId"),
        m.display_name.label("displayName"),
        cast(by_trades.c.n, BigInteger).label("tradesCount"),
        by_trades.c.volume.label("tradedVolume"),
        _rat(by_trades.c.volume * rq.c.rate).label("tradedVolumeInRat"),
        literal(0, NUMBER).label("markupProfitInRat"),
        _rat(func.coalesce(fee_rat.c.fee, 0)).label("commissionProfitInRat"),
    ).select_from(
        by_trades.join(markets, m.market_id == by_trades.c.market_id)
        .outerjoin(rq, rq.c.asset_id == m.quote_asset_id)
        .outerjoin(fee_rat, fee_rat.c.market_id == by_trades.c.market_id)
    )
    pe = position_executions.c
    # One settlement asset per market: grouping by it too keeps one row per market.
    fills = (
        select(
            pe.market_id,
            pe.fee_asset,
            func.count(distinct(pe.order_id)).label("n"),
            func.sum(pe.price * pe.base_amount, type_=NUMBER).label("volume"),
            func.sum(pe.markup, type_=NUMBER).label("markup"),
            func.sum(pe.fee, type_=NUMBER).label("fee"),
        )
        .where(*_where({"createdAt": pe.created_at}, period))
        .group_by(pe.market_id, pe.fee_asset)
        .subquery("filled")
    )
    rv, rs = _rates(rates, "rv"), _rates(rates, "rs")
    dealer = select(
        fills.c.market_id.label("marketId"),
        m.display_name.label("displayName"),
        cast(fills.c.n, BigInteger).label("tradesCount"),
        fills.c.volume.label("tradedVolume"),
        _rat(fills.c.volume * rv.c.rate).label("tradedVolumeInRat"),
        _rat(func.coalesce(fills.c.markup * rs.c.rate, 0)).label("markupProfitInRat"),
        _rat(func.coalesce(fills.c.fee * rs.c.rate, 0)).label("commissionProfitInRat"),
    ).select_from(
        fills.join(markets, m.market_id == fills.c.market_id)
        .outerjoin(rv, rv.c.asset_id == m.quote_asset_id)
        .outerjoin(rs, rs.c.asset_id == fills.c.fee_asset)
    )
    # A market is spot or a derivative, never both: the two halves never share a market.
    union = spot.union_all(dealer).subquery("markups")
    return select(*union.c)


def _active_accounts(period: Sequence[Filter]) -> Select[Any]:
    """Accounts with an execution in the period: a semi-join, so the planner may probe each account's
    executions by index (all time, few accounts) or scan the period's executions (a short period)."""
    e, a = executions.c, accounts.c
    traded = select(e.account_id).where(
        *_where(
            {"createdAt": e.created_at, "marketId": e.market_id},
            [f for f in period if f.field in ("createdAt", "marketId")],
        )
    )
    own = _where(
        {"accountId": a.account_id, "userId": a.uid},
        [f for f in period if f.field in ("accountId", "userId")],
    )
    return select(a.account_id).where(a.account_id.in_(traded), *own)


_K = QueryKind
_SOURCES: Mapping[QueryKind, Callable[[HistoryQuery, Rates], Select[Any]]] = {
    _K.BALANCES: lambda q, r: _balances_source(r, per_account=False),
    _K.ACCOUNT_BALANCES: lambda q, r: _balances_source(r, per_account=True),
    _K.COMMISSIONS_ACCOUNTS_ASSETS: lambda q, r: _commissions_by_asset(q.period_filters, r, "account"),
    _K.COMMISSIONS_USERS_ASSETS: lambda q, r: _commissions_by_asset(q.period_filters, r, "user"),
    _K.COMMISSIONS_ASSETS: lambda q, r: _commissions_by_asset(q.period_filters, r, "asset"),
    _K.COMMISSIONS_USERS: lambda q, r: _commission_totals(q.period_filters, r, per_account=False),
    _K.COMMISSIONS_ACCOUNTS: lambda q, r: _commission_totals(q.period_filters, r, per_account=True),
    _K.MARKUP_REVENUE: lambda q, r: _markups(q.period_filters, r),
    _K.OPEN_ORDERS: lambda q, r: _orders_source(r, open_only=True),
    _K.ORDERS: lambda q, r: _orders_source(r, open_only=False),
    _K.EXTERNAL_ORDERS: lambda q, r: _external_orders_source(r),
    _K.TRADES: lambda q, r: _executions_source(r, unsolicited=False),
    _K.UNSOLICITED_TRADES: lambda q, r: _executions_source(r, unsolicited=True),
    _K.TRANSFERS: lambda q, r: _transfers_source(r),
    _K.ACTIVE_ACCOUNTS: lambda q, r: _active_accounts(q.period_filters),
}


def source_fields(kind: QueryKind) -> list[str]:
    """The column names a kind's source yields (tests check them against the domain's schema)."""
    stmt = _SOURCES[kind](HistoryQuery(kind), Rates(AssetId("USDT"), {AssetId("USDT"): Decimal(1)}))
    return [c.key for c in stmt.selected_columns if c.key is not None]


def _filtered(query: HistoryQuery, rates: Rates) -> tuple[Any, Select[Any]]:
    q = _SOURCES[query.kind](query, rates).subquery("q")
    return q, select(q).where(*_where(q.c, query.row_filters))


def sorted_rows(query: HistoryQuery, rates: Rates) -> Select[Any]:
    """The statement of a query's rows: its filters, RAT conversion and sort, not paged.

    The history server pages it (``SqlHistoryQueries.rows``); a report streams all of it
    (``report_repos.SqlReportRows``), so both list the same rows in the same order.
    """
    fields = SCHEMAS[query.kind].fields
    q, stmt = _filtered(query, rates)
    clauses = []
    for s in query.sort:
        col: ColumnClause[Any] = q.c[s.field]
        clause = col.desc() if s.descending else col.asc()
        # Only nullable columns get NULLS LAST: on the others it would keep an index from serving the sort.
        clauses.append(clause.nulls_last() if fields[s.field].nullable else clause)
    return stmt.order_by(*clauses)


def _own_orders_select() -> Select[Any]:
    o, a, m = orders.c, accounts.c, markets.c
    filled = o.quantity - o.remaining
    average = case((filled > 0, func.round(o.executed_quote / filled, m.price_scale + 4)), else_=None)
    return select(
        o.market_id.label("marketId"),
        o.order_id.label("orderId"),
        o.time_in_force.label("timeInForce"),
        o.status.label("status"),
        o.source.label("source"),
        o.side.label("side"),
        o.type.label("orderType"),
        o.quantity.label("requestedAmount"),
        o.remaining.label("remainingAmount"),
        o.price.label("requestedPrice"),
        cast(average, NUMBER).label("executionPrice"),
        literal(0, Integer).label("hedge"),
        o.created_at.label("createdAt"),
        o.updated_at.label("updatedAt"),
        o.cancellation_date.label("cancellationDate"),
        o.commission.label("commission"),
    ).select_from(
        orders.join(accounts, a.account_id == o.account_id).join(markets, m.market_id == o.market_id)
    )


class SqlHistoryQueries:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def read_only(self, timeout_ms: int) -> None:
        await self._c.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await self._c.execute(select(func.set_config("statement_timeout", str(int(timeout_ms)), True)))

    async def last_prices(self) -> list[MarketPrice]:
        m, t = markets.c, trades.c
        last = (
            select(t.price)
            .where(t.market_id == m.market_id)
            .order_by(t.created_at.desc(), t.trade_id.desc())
            .limit(1)
            .lateral("last")
        )
        # Only spot prices value assets: a CFD or perpetual trades a contract on the asset, whose
        # price (premium, funding) is not what one unit of the asset is worth.
        rows = await self._c.execute(
            select(m.base_asset_id, m.quote_asset_id, last.c.price)
            .select_from(markets.join(last, true()))
            .where(m.type == "Spot")
        )
        return [MarketPrice(AssetId(r.base_asset_id), AssetId(r.quote_asset_id), r.price) for r in rows]

    async def asset_ids(self) -> list[AssetId]:
        rows = await self._c.execute(select(assets.c.id).order_by(assets.c.id))
        return [AssetId(r.id) for r in rows]

    async def rows(self, query: HistoryQuery, rates: Rates) -> list[dict[str, Any]]:
        stmt = sorted_rows(query, rates).limit(query.limit + 1).offset(query.offset)
        return [dict(r) for r in (await self._c.execute(stmt)).mappings()]

    async def count(self, query: HistoryQuery, rates: Rates) -> int:
        _, stmt = _filtered(query, rates)
        counted = select(func.count()).select_from(stmt.subquery("matched"))
        return int((await self._c.execute(counted)).scalar_one())

    async def billing(self, query: HistoryQuery, rates: Rates) -> BillingTotals:
        period = query.period_filters
        active = await self.count(HistoryQuery(QueryKind.ACTIVE_ACCOUNTS, period), rates)
        t, m = trades.c, markets.c
        # Summed per market first: grouping a million trades by one short key, then three rows joined.
        per_market = (
            select(t.market_id, func.sum(t.quote_amount, type_=NUMBER).label("volume"))
            .where(*_where({"createdAt": t.created_at, "marketId": t.market_id}, period))
            .group_by(t.market_id)
            .subquery("per_market")
        )
        rows = await self._c.execute(
            select(m.type, m.quote_asset_id, per_market.c.volume).select_from(
                per_market.join(markets, m.market_id == per_market.c.market_id)
            )
        )
        volume: dict[str, Decimal] = {}
        for r in rows:
            rate = rates.rate(r.quote_asset_id)
            if rate is not None:
                volume[r.type] = volume.get(r.type, Decimal(0)) + r.volume * rate
        return BillingTotals(active, {k: v.quantize(_QUANTUM, ROUND_HALF_UP) for k, v in volume.items()})

    async def user_balance_in_rat(self, uid: UserId, rates: Rates) -> Decimal | None:
        if (await self._c.execute(select(users.c.uid).where(users.c.uid == int(uid)))).first() is None:
            return None
        a, la = accounts.c, ledger_accounts.c
        rows = await self._c.execute(
            select(la.asset, func.sum(la.balance, type_=NUMBER).label("total"))
            .select_from(accounts.join(ledger_accounts, la.owner == _owner_of(a.account_id)))
            .where(a.uid == int(uid), la.bucket.in_(_CASH))
            .group_by(la.asset)
        )
        total = Decimal(0)
        for r in rows:
            rate = rates.rate(r.asset)
            if rate is not None:
                total += r.total * rate
        return total.quantize(_QUANTUM, ROUND_HALF_UP)

    async def own_orders(
        self, uid: UserId, account_id: AccountId | None, query: OwnOrdersQuery
    ) -> list[dict[str, Any]]:
        o = orders.c
        stmt = _own_orders_select().where(accounts.c.uid == int(uid))
        if account_id is not None:
            stmt = stmt.where(o.account_id == account_id)
        if query.created_from is not None:
            stmt = stmt.where(o.created_at >= query.created_from)
        if query.created_to is not None:
            stmt = stmt.where(o.created_at <= query.created_to)
        if query.statuses:
            stmt = stmt.where(o.status.in_([s.value for s in query.statuses]))
        if query.last_order_id is not None:
            stmt = stmt.where(o.order_id < query.last_order_id)
        stmt = stmt.order_by(o.order_id.desc()).limit(query.limit)
        return [dict(r) for r in (await self._c.execute(stmt)).mappings()]

    async def own_order(self, uid: UserId, order_id: int) -> dict[str, Any] | None:
        stmt = _own_orders_select().where(accounts.c.uid == int(uid), orders.c.order_id == order_id)
        row = (await self._c.execute(stmt)).mappings().first()
        return None if row is None else dict(row)
