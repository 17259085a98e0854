"""The service layer's view of the world: Protocols the adapters implement.

Nothing here knows about SQL, HTTP or a particular library; ``bootstrap.py``
wires the real adapters in, tests may wire fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from bourse.domain.account_groups import AccountGroup
from bourse.domain.audit import AuditEntry
from bourse.domain.callbacks import (
    CallbackAttempt,
    CallbackDelivery,
    CallbackTarget,
    DeliveryReport,
    DeliveryState,
    IPAddress,
    SendOutcome,
)
from bourse.domain.categories import CategoryRow, CategoryTree
from bourse.domain.circuit_breaker import TradePoint
from bourse.domain.fees import CommissionProfile, CommissionRule
from bourse.domain.feeshare import (
    BillingStatus,
    FeeShareRecord,
    Merchant,
    MerchantUser,
    RecordQuery,
    ShareTerms,
    Statistic,
)
from bourse.domain.history import BillingTotals, HistoryQuery, MarketPrice, OwnOrdersQuery, Rates
from bourse.domain.identity import Role
from bourse.domain.ledger import Asset, Balance, Hold, LedgerCheckReport, LedgerTransaction
from bourse.domain.market_files import FileFormat, FileStatus, MarketFile, Progress, Sheet
from bourse.domain.marketdata import Candle, Interval, TradeTick
from bourse.domain.markets import Market, MarketQuery
from bourse.domain.notifications import (
    FiredAlert,
    NewAdminNotification,
    NewTraderNotification,
    Notification,
    NotificationQuery,
    PriceAlert,
    PriceCondition,
    Trade,
)
from bourse.domain.order_requests import OrderRequest
from bourse.domain.order_views import Execution
from bourse.domain.positions import Position
from bourse.domain.pricing import (
    FundingPage,
    FundingQuery,
    FundingRate,
    HaltState,
    MarkPrice,
    PricingSettings,
    SourcePrice,
    StoredPrices,
)
from bourse.domain.reports import (
    Report,
    ReportFormat,
    ReportMail,
    ReportMailAttempt,
    ReportMailStatus,
    ReportStatus,
    ReportTemplate,
)
from bourse.domain.trading import BatchWrite, Checkpoint, Order, OrderQuery, Prepared
from bourse.domain.transfers import Transfer
from bourse.domain.triggers import Triggers
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.domain.venues import (
    ExternalOrder,
    ExternalOrderStatus,
    HedgeSettings,
    VenueConfig,
    VenueCredentials,
    VenueOrder,
    VenueOrderRef,
    VenueOrderRequest,
)
from bourse.domain.wallet import ExtRequestType
from bourse.domain.workspace import Layout, Template, UiSettings
from bourse.service.derivatives_records import (
    BookOrderRequest,
    ClosedPositionQuery,
    ClosedPositionRow,
    CollateralSeizure,
    Deficit,
    DerivativeOrder,
    ExecutionQuery,
    FundingPayment,
    OrderListQuery,
    PositionExecution,
    SwapPayment,
)

# --- records as stored -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: UserId
    username: str
    email: str | None
    phone: str | None
    group: str
    password_hash: str
    totp_secret_enc: str | None
    totp_enabled: bool
    totp_last_step: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: AccountId
    uid: UserId
    name: str
    account_type: str
    is_default: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """What a bearer token resolves to: enough to authorise one request."""

    uid: UserId
    username: str
    roles: frozenset[Role]
    is_active: bool
    revoked: bool


@dataclass(frozen=True, slots=True)
class ServiceTokenRecord:
    id: int
    name: str
    scopes: frozenset[str]
    revoked: bool


@dataclass(frozen=True, slots=True)
class AppKeyRecord:
    app_key: str
    company_id: str
    secret_enc: str
    revoked: bool


# --- repositories ------------------------------------------------------------------------------


class UserRepository(Protocol):
    async def security_epoch(self) -> int:
        """A counter that moves whenever who a token stands for may have changed (a user's username
        or active flag, roles, revoked tokens, a service token's revocation), in that change's
        transaction."""
        ...

    async def add(
        self, username: str, email: str | None, phone: str | None, password_hash: str, group: str
    ) -> UserId: ...
    async def get(self, uid: UserId) -> UserRecord | None: ...
    async def get_by_username(self, username: str) -> UserRecord | None: ...
    async def set_password_hash(self, uid: UserId, password_hash: str) -> None: ...
    async def set_totp(self, uid: UserId, secret_enc: str | None, enabled: bool) -> None: ...
    async def use_totp_step(self, uid: UserId, step: int) -> bool:
        """Record ``step`` as used; False when it (or a later one) was used already."""
        ...

    async def roles(self, uid: UserId) -> frozenset[Role]: ...
    async def grant(self, uid: UserId, role: Role) -> bool: ...
    async def revoke_role(self, uid: UserId, role: Role) -> bool: ...
    async def ensure_group(self, name: str) -> None: ...
    async def token_owner(self, uid: UserId, jti: str) -> TokenOwner | None: ...


class AccountRepository(Protocol):
    async def add(
        self, account_id: AccountId, uid: UserId, name: str, account_type: str, is_default: bool
    ) -> AccountRecord: ...
    async def get(self, account_id: AccountId) -> AccountRecord | None: ...
    async def list_for_user(self, uid: UserId) -> list[AccountRecord]: ...
    async def default_for_user(self, uid: UserId) -> AccountRecord | None: ...


class RevokedTokenRepository(Protocol):
    async def revoke(self, jti: str, uid: UserId, expires_at: datetime) -> None: ...


class LoginFailureRepository(Protocol):
    async def record(self, username: str, ip: str | None, at: datetime) -> None: ...
    async def nth_recent(
        self, username: str | None, ip: str | None, n: int, since: datetime
    ) -> datetime | None:
        """When the n-th most recent failure since ``since`` (for username, or from ip) happened, if any."""
        ...

    async def clear_user(self, username: str) -> None: ...


class ServiceTokenRepository(Protocol):
    async def add(self, name: str, token_hash: bytes, scopes: frozenset[str]) -> int: ...
    async def exists(self, name: str) -> bool: ...
    async def by_hash(self, token_hash: bytes) -> ServiceTokenRecord | None: ...
    async def revoke(self, name: str) -> bool: ...


class AppKeyRepository(Protocol):
    async def add(self, app_key: str, company_id: str, secret_enc: str) -> None: ...
    async def get(self, app_key: str) -> AppKeyRecord | None: ...
    async def revoke(self, app_key: str) -> bool: ...


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> None: ...


class LedgerRepository(Protocol):
    """The double-entry ledger. Every write is all-or-nothing: on any error nothing of it is applied
    and the unit of work stays usable (a savepoint is rolled back)."""

    async def apply(self, tx: LedgerTransaction) -> int:
        """Post ``tx``; returns its id. InsufficientFunds(owner=, asset=, bucket=) if a non-system
        balance would go negative; Conflict if its business_key was used; NotFound for an unknown asset."""
        ...

    async def apply_many(self, txs: Sequence[LedgerTransaction], *, savepoint: bool = True) -> list[int]:
        """Post ``txs`` in order in a few round trips (group commit); ids in input order; all or nothing.
        No balance may go negative after any prefix of ``txs``. ``savepoint=False`` is for a caller
        that rolls its whole unit of work back on any error: no savepoint round trips, and a refusal
        leaves the unit of work to be rolled back; a retryable Conflict asks for the unit of work
        to be run again."""
        ...

    async def post_audited(self, tx: LedgerTransaction, entry: AuditEntry) -> int:
        """Post ``tx`` and append ``entry`` with ``tx_id`` added to its details, in one round trip
        once the accounts are known; the transaction's id. As ``apply_many(..., savepoint=False)``:
        for a caller that rolls back on any error and runs again on a retryable Conflict. A refused
        overdraft may come without the account's details (owner, asset, bucket): a caller that
        needs them asks ``apply`` again in a new unit of work."""
        ...

    async def balance(self, owner: str, asset: AssetId, bucket: str) -> Decimal: ...
    async def balances(self, owner: str) -> list[Balance]:
        """Every (asset, bucket) the owner ever had a posting in, zero balances included, sorted by
        asset then bucket."""
        ...

    async def place_hold(
        self, owner: str, asset: AssetId, amount: Decimal, reference: str, kind: str
    ) -> Hold:
        """Move ``amount`` available -> locked in one ledger transaction; the hold is pending."""
        ...

    async def get_hold(self, hold_id: int, *, for_update: bool = False) -> Hold | None: ...
    async def post_hold(self, hold_id: int, dst: tuple[str, str], kind: str) -> int:
        """locked -> ``dst`` (owner, bucket); status posted; returns the tx id. Conflict unless pending."""
        ...

    async def void_hold(self, hold_id: int, kind: str) -> int:
        """locked -> available; status voided; returns the tx id. Conflict unless pending."""
        ...

    async def check(self) -> LedgerCheckReport:
        """Recompute every balance and every transaction's sums from the postings."""
        ...


class AssetRepository(Protocol):
    async def add(self, asset: Asset) -> None:
        """Conflict if the id exists."""
        ...

    async def update(self, asset: Asset) -> None:
        """NotFound if missing."""
        ...

    async def get(self, asset_id: AssetId) -> Asset | None: ...
    async def list(self) -> list[Asset]:
        """Sorted by id."""
        ...


@dataclass(frozen=True, slots=True)
class ExtRequestRecord:
    """One applied ext-orders request: the fields as sent, its fingerprint and the response given."""

    caller_id: int
    ext_request_id: str
    type: ExtRequestType
    uid: UserId
    account_id: AccountId
    currency: AssetId
    request: Mapping[str, str | None]
    fingerprint: bytes
    response: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WalletLookup:
    """What an ext request finds before it moves money; each part None when it does not exist."""

    stored: ExtRequestRecord | None  # the same (caller, extRequestId) seen before
    uid: UserId | None
    user_active: bool
    account_id: AccountId | None  # the user's default account
    asset_scale: int | None  # the currency's, when it is one


class ExtRequestRepository(Protocol):
    async def get(self, caller_id: int, ext_request_id: str) -> ExtRequestRecord | None: ...
    async def lookup(self, caller_id: int, ext_request_id: str, username: str, currency: str) -> WalletLookup:
        """The stored request, the user, their default account and the currency, in one read."""
        ...

    async def reserve(self, record: ExtRequestRecord) -> bool:
        """Insert unless (caller_id, ext_request_id) exists; False (nothing written) when it does.
        Waits for a concurrent insert of the same key to finish first; InProgress if that takes too long."""
        ...


class TransferRepository(Protocol):
    async def add(self, transfer: Transfer) -> bool:
        """Insert unless the (account, deduplicationId) pair exists; False (nothing written) when it does.
        Waits for a concurrent insert of the same pair to finish first."""
        ...

    async def get(self, transfer_id: str, *, for_update: bool = False) -> Transfer | None: ...
    async def get_by_deduplication_id(
        self, account_id: AccountId, deduplication_id: str
    ) -> Transfer | None: ...
    async def list_for_account(self, account_id: AccountId) -> list[Transfer]:
        """Newest first."""
        ...

    async def update(self, transfer: Transfer) -> None:
        """Store status, hold_id, callback_url and updated_at."""
        ...


class CallbackRepository(Protocol):
    """The outbox of transfer callbacks and the record of every attempt."""

    async def enqueue(self, transfer_id: str, url: str, body: str, now: datetime) -> int: ...
    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[CallbackDelivery]:
        """Pending deliveries due at ``now``, skipping rows other workers hold and deliveries with an older
        pending one for the same transfer; each is leased (not due again) until ``lease_until``."""
        ...

    async def record_attempt(
        self, attempt: CallbackAttempt, state: DeliveryState, next_attempt_at: datetime | None
    ) -> None:
        """Append the attempt; set the delivery's state and, when still pending, its next due time."""
        ...

    async def for_transfer(self, transfer_id: str) -> list[DeliveryReport]: ...


class MarketRepository(Protocol):
    async def add(self, market: Market) -> None:
        """Conflict if the market id exists."""
        ...

    async def update(self, market: Market) -> None:
        """Store every field but id and created_at; NotFound if missing."""
        ...

    async def get(self, market_id: str, *, for_update: bool = False) -> Market | None: ...
    async def list(self, query: MarketQuery | None = None) -> list[Market]:
        """Markets matching ``query`` (all by default), sorted by it (by id by default)."""
        ...


class CommissionRepository(Protocol):
    async def add_profile(self, profile: CommissionProfile) -> None:
        """Conflict if the id exists."""
        ...

    async def get_profile(self, profile_id: str, *, for_update: bool = False) -> CommissionProfile | None:
        """``for_update`` locks the profile row: rule changes of one profile take turns."""
        ...

    async def list_profiles(self) -> list[CommissionProfile]: ...
    async def rules(self, profile_id: str) -> list[CommissionRule]:
        """The profile's rules by priority, then id."""
        ...

    async def add_rule(self, rule: CommissionRule) -> None:
        """Conflict for a second default rule, a second rule for one market or group, a taken priority."""
        ...

    async def update_rule(self, rule: CommissionRule) -> None: ...
    async def delete_rule(self, profile_id: str, rule_id: str) -> bool: ...
    async def set_priorities(self, profile_id: str, priorities: Mapping[str, int]) -> None:
        """Set each named rule's priority; uniqueness is checked at commit (Conflict then)."""
        ...

    async def rules_for_account(self, account_id: AccountId) -> list[CommissionRule] | None:
        """The rules of the account's profile in one query; None if the account does not exist."""
        ...

    async def rules_for_accounts(
        self, account_ids: Sequence[AccountId]
    ) -> dict[AccountId, list[CommissionRule]]:
        """``rules_for_account`` for many accounts in one query; an account that does not exist is left out."""
        ...

    async def profile_of_account(self, account_id: AccountId) -> str | None: ...
    async def set_account_profile(self, account_id: AccountId, profile_id: str) -> bool:
        """False if the account does not exist."""
        ...


class MarketDataRepository(Protocol):
    """Candles kept incrementally, how far the trades were folded into them, and the trades tape
    (read from the trading engine's trades table)."""

    async def upsert_candles(self, candles: Sequence[Candle]) -> None:
        """Insert or replace each candle, unless the stored one already covers a later trade."""
        ...

    async def candles(
        self, market_id: str, interval: Interval, first_start: datetime, to: datetime
    ) -> list[Candle]:
        """Candles starting in [first_start, to], oldest first."""
        ...

    async def candle(self, market_id: str, interval: Interval, start: datetime) -> Candle | None: ...
    async def latest_candles(self, market_id: str) -> list[Candle]:
        """The latest candle of each interval that has one."""
        ...

    async def progress(self, market_id: str) -> int:
        """The last trade id folded into the stored candles (0: none)."""
        ...

    async def set_progress(self, market_id: str, last_trade_id: int, at: datetime) -> None: ...
    async def trades_after(self, market_id: str, trade_id: int, limit: int) -> list[TradeTick]:
        """The market's trades with a larger id, by id."""
        ...

    async def recent_trades(self, market_id: str, limit: int) -> list[TradeTick]:
        """Newest first."""
        ...


class TradingRepository(Protocol):
    """Orders, executions, trades and engine checkpoints (only a market's engine runner writes them)."""

    async def prepare(self, count: int, keys: Sequence[tuple[str, str]], market_id: str = "") -> Prepared:
        """``count`` new order ids, the available balance of each (ledger owner, asset) that has one and
        ``market_id``'s committed batch count (0 without a checkpoint), read in one snapshot."""
        ...

    async def write_batch_and_ledger(
        self,
        batch: BatchWrite,
        txs: Sequence[LedgerTransaction],
        hold_positions: Mapping[int, int],
        execution_positions: Sequence[int],
    ) -> tuple[list[int], dict[int, int]]:
        """Post ``txs`` (as ``LedgerRepository.apply_many(..., savepoint=False)``) and store ``batch``,
        in one statement when every ledger account is known: the transactions' ids and the trade
        ids by market_seq. A new order's hold and an execution name their transaction by its
        position in ``txs`` (``hold_positions``: order id -> position; ``execution_positions``:
        one per execution, whose ``ledger_tx_id`` is replaced); an audit entry gets the ids' range
        and count in its details. For a unit of work that rolls back on any error."""
        ...

    async def write_batch(self, batch: BatchWrite) -> dict[int, int]:
        """Store a batch's trades, new and changed orders, executions and checkpoint in one statement;
        the trade ids by market_seq."""
        ...

    async def reserve_client_ids(
        self, entries: Sequence[tuple[AccountId, str, int, bytes]]
    ) -> set[tuple[str, str]]:
        """Insert (account, clientOrderId, orderId, fingerprint) unless the pair exists; the pairs inserted.
        A pair a concurrent transaction is inserting waits for it to finish."""
        ...

    async def client_id_owners(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, bytes]]:
        """(orderId, fingerprint) of each reserved (account, clientOrderId) pair."""
        ...

    async def checkpoint(self, market_id: str) -> Checkpoint | None: ...
    async def last_trade(self, market_id: str) -> tuple[int, Decimal] | None:
        """(market_seq, price) of the market's latest trade."""
        ...

    async def live_orders(self, market_id: str) -> list[Order]:
        """Started, Placed and PartiallyFilled orders of the market (resting orders and waiting stops)."""
        ...

    async def get_order(self, order_id: int) -> Order | None: ...
    async def orders_by_ids(self, order_ids: Sequence[int]) -> list[Order]: ...
    async def list_orders(self, account_id: AccountId, query: OrderQuery) -> list[Order]:
        """Newest first (by order id); at most ``query.limit``."""
        ...

    async def executions(
        self, account_id: AccountId, order_ids: Sequence[int] | None, after_id: int | None, limit: int
    ) -> list[Execution]:
        """The account's executions (of ``order_ids`` if given), oldest first after ``after_id``."""
        ...


class OrderEngines(Protocol):
    """The matching engines (one runner per market): a command's result once its batch committed."""

    async def place(self, account_id: AccountId, request: OrderRequest) -> Order:
        """The order as committed (possibly Rejected); for a repeated clientOrderId the first order.
        IdempotencyConflict for a clientOrderId used with another request; MarketStopped; NotFound."""
        ...

    async def cancel(
        self, market_id: str, account_id: AccountId, order_id: int, *, stop_only: bool
    ) -> Order | None:
        """The cancelled order, or None if it was not live (any more)."""
        ...

    def last_price(self, market_id: str) -> Decimal | None:
        """The last trade price the running engine knows, if it runs."""
        ...

    def market(self, market_id: str) -> Market | None:
        """The market as its running engine last read it, if it runs."""
        ...

    async def start_all(self) -> None: ...
    async def aclose(self) -> None: ...


class MarginGuard(Protocol):
    """Whether money may leave an account's available without uncovering its Cross derivative
    positions (the derivatives service implements it; transfers and spot orders ask it)."""

    async def check_release(
        self, uow: UnitOfWork, account_id: AccountId, asset_id: AssetId, amount: Decimal
    ) -> None:
        """MarginRequired when taking ``amount`` of ``asset_id`` (one of the account's selected
        margin assets) out of its available would leave the account's cross margin level below its
        margin call level, or its equity below its used margin. Takes the account's derivative
        lock in ``uow`` (derivative fills wait until it ends). Nothing to check: returns."""
        ...

    async def may_hold_positions(self, account_id: AccountId) -> bool:
        """False when the account surely holds no derivative position (a cheap, cached answer for
        pre-checks that must not cost a database round trip every time)."""
        ...


class DerivativeBook(Protocol):
    """The engine runners of OrderBook Cfd/Perpetual markets: a command's result once its batch
    committed (``engine/derivatives_runner.py``)."""

    async def place_derivative(self, order: BookOrderRequest) -> DerivativeOrder:
        """The order as committed (possibly Rejected); for a repeated clientOrderId the first order.
        IdempotencyConflict for a clientOrderId used with another request; MarketStopped."""
        ...

    async def cancel_derivative(
        self, market_id: str, account_id: AccountId, order_id: int
    ) -> DerivativeOrder | None:
        """The cancelled order, or None if it was not live (any more)."""
        ...

    def last_price(self, market_id: str) -> Decimal | None: ...


class HistoryQueries(Protocol):
    """The history server's reads (brokerage ``/api/...``); rows are keyed by the response's field
    names, with stored values (int ids, Decimal, datetime)."""

    async def read_only(self, timeout_ms: int) -> None:
        """Make the unit of work one read-only snapshot that gives up after ``timeout_ms``; call first."""
        ...

    async def last_prices(self) -> list[MarketPrice]:
        """Each market's latest trade price (markets without trades are absent)."""
        ...

    async def asset_ids(self) -> list[AssetId]: ...
    async def rows(self, query: HistoryQuery, rates: Rates) -> list[dict[str, Any]]:
        """The page's rows and one more if there is one (``limit + 1`` from ``offset``)."""
        ...

    async def count(self, query: HistoryQuery, rates: Rates) -> int:
        """How many rows the query's filters match (limit and offset aside)."""
        ...

    async def billing(self, query: HistoryQuery, rates: Rates) -> BillingTotals: ...
    async def user_balance_in_rat(self, uid: UserId, rates: Rates) -> Decimal | None:
        """The user's balances (all accounts) in RAT; None for an unknown user."""
        ...

    async def own_orders(
        self, uid: UserId, account_id: AccountId | None, query: OwnOrdersQuery
    ) -> list[dict[str, Any]]:
        """The user's orders (of ``account_id`` only, if given), newest first."""
        ...

    async def own_order(self, uid: UserId, order_id: int) -> dict[str, Any] | None: ...


class WorkspaceRepository(Protocol):
    """UI settings, layouts and templates; every layout belongs to one user (ids unique per user)."""

    async def lock_user(self, uid: UserId) -> None:
        """Make the user's workspace writes take turns until the transaction ends."""
        ...

    async def settings(self, uid: UserId) -> UiSettings | None: ...
    async def save_settings(self, uid: UserId, settings: UiSettings, at: datetime) -> None: ...
    async def layouts(self, uid: UserId) -> list[Layout]:
        """In the user's order."""
        ...

    async def layout(self, uid: UserId, layout_id: str) -> Layout | None: ...
    async def add_layout(self, uid: UserId, layout: Layout, at: datetime) -> bool:
        """Append ``layout`` after the user's others; False (nothing written) if the id is taken."""
        ...

    async def update_layout(self, uid: UserId, layout: Layout, at: datetime) -> bool:
        """Store name and tabs; False if the user has no such layout."""
        ...

    async def delete_layout(self, uid: UserId, layout_id: str) -> bool: ...
    async def set_order(self, uid: UserId, layout_ids: Sequence[str], at: datetime) -> None: ...
    async def templates(self) -> list[Template]: ...


class NotificationRepository(Protocol):
    """Trader notifications (one user each) and the shared staff inbox with per-reader read marks."""

    async def add_admin(self, notification: NewAdminNotification) -> int | None:
        """Its id; None (nothing written) if one with the same dedupe key exists."""
        ...

    async def list_admin(self, reader: UserId, query: NotificationQuery) -> list[Notification]:
        """Newest first; ``is_read`` is ``reader``'s mark."""
        ...

    async def admin_unread(self, reader: UserId) -> int: ...
    async def admin_existing(self, ids: Sequence[int]) -> set[int]: ...
    async def mark_admin_read(self, reader: UserId, ids: Sequence[int] | None, at: datetime) -> int:
        """Mark ``ids`` (None: every notification) read for ``reader``; how many were unread."""
        ...

    async def add_trader(self, notifications: Sequence[NewTraderNotification]) -> list[Notification]:
        """The stored notifications, in input order."""
        ...

    async def list_trader(
        self, uid: UserId, account_id: AccountId | None, query: NotificationQuery
    ) -> list[Notification]:
        """The user's, newest first; with ``account_id`` only that account's and the user-wide ones."""
        ...

    async def trader_unread(self, uid: UserId, account_id: AccountId | None) -> int: ...
    async def trader_existing(
        self, uid: UserId, account_id: AccountId | None, ids: Sequence[int]
    ) -> set[int]: ...
    async def mark_trader_read(
        self, uid: UserId, account_id: AccountId | None, ids: Sequence[int] | None, at: datetime
    ) -> int: ...


class PriceAlertRepository(Protocol):
    async def lock_account(self, account_id: AccountId) -> None:
        """Make the account's alert writes take turns until the transaction ends."""
        ...

    async def add(
        self,
        uid: UserId,
        account_id: AccountId,
        market_id: str,
        price: Decimal,
        condition: PriceCondition,
        at: datetime,
    ) -> PriceAlert:
        """A new alert armed after the market's latest trade."""
        ...

    async def count_active(self, account_id: AccountId) -> int: ...
    async def active(self, account_id: AccountId, market_ids: Sequence[str] | None) -> list[PriceAlert]:
        """Not yet fired, by market then id."""
        ...

    async def active_markets(self, account_id: AccountId) -> list[str]:
        """Markets with an active alert of the account, sorted."""
        ...

    async def delete(self, account_id: AccountId, ids: Sequence[int]) -> list[PriceAlert]:
        """Delete the account's alerts among ``ids`` (fired or not); the ones deleted, by id."""
        ...

    async def fire(self, market_id: str, trades: Sequence[Trade], at: datetime) -> list[FiredAlert]:
        """Mark fired every active alert of the market that one of ``trades`` (later than the alert's
        ``after_trade_id``) crosses, at the first such trade; each alert at most once, whoever else
        runs this at the same time. Records the market's progress."""
        ...

    async def catch_up_from(self) -> dict[str, int]:
        """Markets with active alerts and the trade id after which each must be checked again."""
        ...


class ReportRepository(Protocol):
    """Report runs, each owned by one user (domain/reports.py)."""

    async def add(self, report: Report) -> bool:
        """Insert; False (nothing written) when the report's template already has one for its due time."""
        ...

    async def get(self, report_id: str) -> Report | None: ...
    async def list_for_owner(self, uid: UserId, limit: int, offset: int) -> list[Report]:
        """Newest first."""
        ...

    async def delete(self, report_id: str) -> bool: ...
    async def claim_next(self, now: datetime, lease_until: datetime) -> Report | None:
        """The oldest New report, or an InProgress one whose lease passed, skipping rows another
        process holds; set InProgress, leased until ``lease_until``, ``attempts`` counted up."""
        ...

    async def finish(
        self,
        report: Report,
        status: ReportStatus,
        reason: str | None,
        now: datetime,
        row_count: int | None = None,
        file_size: int | None = None,
    ) -> bool:
        """Set the outcome of the claim ``report`` is (its ``attempts``); False if the report was deleted
        or claimed again meanwhile (the outcome is then not this run's to write)."""
        ...

    async def release(self, report: Report) -> None:
        """Hand a claim back (New again, its tries counted) when its process stops before the end."""
        ...

    async def expired_files(self, now: datetime, limit: int) -> list[Report]:
        """Completed reports past ``expired_at`` whose file is still there, locked, skipping held rows."""
        ...

    async def mark_files_deleted(self, report_ids: Sequence[str], now: datetime) -> None: ...


class ReportTemplateRepository(Protocol):
    async def add(self, template: ReportTemplate) -> bool:
        """False (nothing written) if the owner has a template of that name (not deleted)."""
        ...

    async def get(self, template_id: str) -> ReportTemplate | None:
        """Deleted ones too (``deleted_at`` set)."""
        ...

    async def list_for_owner(self, uid: UserId) -> list[ReportTemplate]:
        """The owner's templates not deleted, by name."""
        ...

    async def update(self, template: ReportTemplate) -> bool:
        """Store every field but the id, owner and creation; False on a name the owner uses already."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[ReportTemplate]:
        """Templates not deleted whose ``next_run_at`` is at or before ``now``, locked until the
        transaction ends, skipping rows another process holds."""
        ...

    async def set_next_run(self, template_id: str, next_run_at: datetime | None) -> None: ...


class ReportMailRepository(Protocol):
    """The outbox of report mails: one per report and recipient (domain/reports.py)."""

    async def enqueue(
        self, report_id: str, recipients: Sequence[str], subject: str, body: str, now: datetime
    ) -> None:
        """One pending mail per recipient, due now; a recipient the report has a mail for already is
        left as it is."""
        ...

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[ReportMail]:
        """Pending mails due at ``now``, oldest due first, skipping rows another worker holds; each is
        leased (due again only at ``lease_until``) so a worker that dies mid-attempt leaves it due."""
        ...

    async def record_attempt(
        self, attempt: ReportMailAttempt, state: DeliveryState, next_attempt_at: datetime | None
    ) -> bool:
        """Store the attempt and move the mail on; False (nothing stored) if the mail is gone (its
        report was deleted meanwhile)."""
        ...

    async def for_report(self, report_id: str) -> list[ReportMailStatus]:
        """The report's mails with their attempts, by id."""
        ...


class ReportRows(Protocol):
    """A history query's every row, streamed (a server-side cursor): never all in memory."""

    def stream(self, query: HistoryQuery, rates: Rates, batch: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of rows in the query's sort, keyed like ``HistoryQueries.rows``; limit and offset aside."""
        ...


class CategoryRepository(Protocol):
    """The market category tree, replaced whole."""

    async def lock(self) -> None:
        """Make tree replacements take turns until the transaction ends (reads are not blocked)."""
        ...

    async def tree(self) -> CategoryTree:
        """The stored tree (siblings in order) and every market it names."""
        ...

    async def existing_markets(self, market_ids: Sequence[str]) -> set[str]:
        """Which of ``market_ids`` name a market."""
        ...

    async def replace(self, rows: Sequence[CategoryRow], at: datetime) -> None:
        """Delete the tree and store ``rows`` (parents before children) in its place."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimedFile:
    """A market file a worker leased for processing: the file as stored and where it stands."""

    file: MarketFile
    content: bytes
    token: str
    attempts: int  # including this claim
    progress: Progress
    requested_by_uid: UserId
    request_id: str | None


class MarketFileRepository(Protocol):
    """Market file imports and exports with their background job state."""

    async def add(
        self, file: MarketFile, content: bytes | None, uid: UserId, request_id: str | None
    ) -> None: ...
    async def get(self, file_id: str) -> MarketFile | None: ...
    async def content(self, file_id: str) -> bytes | None: ...
    async def claim(self, now: datetime, lease_until: datetime, token: str) -> ClaimedFile | None:
        """The oldest InProcess file no worker holds a live lease on (skipping rows another worker is
        claiming), leased to ``token`` until ``lease_until``; None when there is none."""
        ...

    async def save(
        self, file_id: str, token: str, progress: Progress, lease_until: datetime, now: datetime
    ) -> bool:
        """Record progress and extend the lease; False (nothing written) once ``token`` lost the lease."""
        ...

    async def finish(
        self,
        file_id: str,
        token: str,
        status: FileStatus,
        progress: Progress,
        error: str | None,
        now: datetime,
        *,
        content: bytes | None = None,
    ) -> bool:
        """Set the final status (and an export's content); False once ``token`` lost the lease."""
        ...


class AccountGroupRepository(Protocol):
    async def add(self, group: AccountGroup, at: datetime) -> None:
        """Conflict if the id exists."""
        ...

    async def get(self, group_id: str, *, for_update: bool = False) -> AccountGroup | None: ...
    async def list(self) -> list[AccountGroup]:
        """By id."""
        ...

    async def update(self, group: AccountGroup, at: datetime) -> None:
        """NotFound if missing."""
        ...

    async def group_of_account(self, account_id: AccountId) -> str | None:
        """None if the account does not exist."""
        ...

    async def set_account_group(self, account_id: AccountId, group_id: str) -> bool:
        """False if the account does not exist."""
        ...


class MerchantRepository(Protocol):
    async def add(self, merchant: Merchant) -> None:
        """Conflict if the company id exists."""
        ...

    async def get(self, company_id: int, *, for_update: bool = False) -> Merchant | None: ...
    async def update(self, merchant: Merchant) -> None:
        """NotFound if missing."""
        ...

    async def assign_user(self, uid: UserId, company_id: int, at: datetime) -> int:
        """Put the user in the merchant unless they are in one already; the merchant they are in after."""
        ...

    async def unassign_user(self, uid: UserId, company_id: int) -> bool:
        """False if the user was not this merchant's."""
        ...

    async def users(self, company_id: int) -> list[MerchantUser]:
        """By uid."""
        ...

    # Last: below it, ``list`` in an annotation would name this method.
    async def list(self) -> list[Merchant]:
        """By company id."""
        ...


class FeeShareRepository(Protocol):
    async def statistics(self, start: datetime, end: datetime) -> list[Statistic]:
        """Per merchant and coin, from the OTC executions in [start, end) of the merchants' users."""
        ...

    async def add_statistics(
        self, day: date, rows: Sequence[tuple[Statistic, ShareTerms]], at: datetime
    ) -> int:
        """Stage 0 records; one that exists for (merchant, coin, day) stays as it is. How many were new."""
        ...

    async def day_records(self, day: date, status: BillingStatus | None = None) -> list[FeeShareRecord]:
        """By id."""
        ...

    async def get(self, record_id: int, *, for_update: bool = False) -> FeeShareRecord | None: ...
    async def save_calculated(self, record: FeeShareRecord) -> bool:
        """Stage 0 -> 1 with the computed fields; False if the record was not at stage 0."""
        ...

    async def set_remark(self, record_id: int, remark: str, at: datetime) -> None: ...
    async def mark_settled(self, record_id: int, tx_id: int | None, at: datetime) -> bool:
        """Stage 1 -> 3; False if the record was not at stage 1."""
        ...

    async def latest_price(
        self, base: AssetId, quote: AssetId, before: datetime
    ) -> tuple[Decimal, datetime] | None:
        """Price and time of the last trade before ``before`` on a market base/quote."""
        ...

    async def query(self, company_id: int, query: RecordQuery) -> tuple[int, list[FeeShareRecord]]:
        """(how many match, the page), newest day first."""
        ...

    async def last_run(self) -> date | None: ...
    async def complete_run(
        self, day: date, records: int, settled: int, refused: int, at: datetime
    ) -> None: ...


class PricingRepository(Protocol):
    """Price sources, the latest prices, funding rates and halt state of derivative markets
    (adapters/db/pricing_repos.py); reads the trading tables for book tops and trade windows."""

    async def get_settings(self, market_id: str) -> PricingSettings | None: ...
    async def list_settings(self) -> list[PricingSettings]:
        """By market id."""
        ...

    async def put_settings(self, settings: PricingSettings) -> None:
        """Insert or replace the market's settings."""
        ...

    async def prices(self, market_id: str, *, for_update: bool = False) -> StoredPrices | None: ...
    async def prices_of(self, market_ids: Sequence[str]) -> dict[str, StoredPrices]: ...
    async def save_prices(self, prices: StoredPrices) -> None:
        """Insert or replace the market's latest prices (all but ``funding_through``)."""
        ...

    async def book_top(self, market_id: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        """(best bid, best ask, last trade price) of one of our order-book markets, as committed."""
        ...

    async def set_funding_through(self, market_id: str, at: datetime) -> None:
        """Record that the market's funding times up to ``at`` were dealt with (only this column)."""
        ...

    async def add_funding_rate(self, rate: FundingRate) -> bool:
        """False if the market already has a rate at that time (nothing is changed)."""
        ...

    async def add_marks_at(self, marks: Sequence[MarkPrice]) -> None:
        """Store the mark and index of a market at a moment (``mark_history``); a moment stored
        already keeps its first value."""
        ...

    async def mark_at(self, market_id: str, at: datetime) -> MarkPrice | None:
        """The mark stored for exactly that moment, if any."""
        ...

    async def last_funding_time(self, market_id: str) -> datetime | None: ...
    async def funding_rates(self, market_id: str, query: FundingQuery) -> FundingPage:
        """Newest first."""
        ...

    async def funding_rates_after(
        self, market_id: str, after: datetime | None, limit: int
    ) -> list[FundingRate]:
        """Oldest first, applied strictly after ``after`` (all if None)."""
        ...

    async def halt_state(self, market_id: str, *, for_update: bool = False) -> HaltState | None: ...
    async def save_halt_state(self, state: HaltState) -> None:
        """Insert or replace."""
        ...

    async def trade_window(self, market_id: str, since: datetime, from_trade_id: int) -> list[TradePoint]:
        """The circuit breaker's view of the trades at or after ``since`` with an id at least
        ``from_trade_id``: the first one and those with the lowest and highest price (by id)."""
        ...

    async def last_trade_id(self, market_id: str) -> int | None: ...


class DerivativesRepository(Protocol):
    """Positions, their triggers, derivative orders and fills, margin settings, deficits, funding
    and swap payments (adapters/db/derivatives_tables.py)."""

    async def lock_account(self, account_id: AccountId) -> None:
        """Make the account's derivative changes take turns until the transaction ends."""
        ...

    async def lock_funds(self, owner: str, asset: AssetId) -> tuple[Decimal, Decimal]:
        """Lock (creating them if missing, in the ledger's id order) the owner's available and
        margin accounts of ``asset`` and the house's and fee account's, so the fill's ledger write
        finds them held; the owner's (available, margin)."""
        ...

    async def new_order_id(self) -> int: ...
    async def new_position_id(self) -> str: ...

    # positions
    async def open_positions(
        self, account_id: AccountId, market_id: str | None = None, *, for_update: bool = False
    ) -> list[Position]:
        """The account's open positions (of one market if given), oldest first."""
        ...

    async def get_position(self, position_id: str, *, for_update: bool = False) -> Position | None: ...
    async def positions(
        self, account_id: AccountId, *, open_only: bool, last_position_id: str | None, limit: int
    ) -> list[Position]:
        """Newest first (by id), older than ``last_position_id``."""
        ...

    async def save_positions(self, positions: Sequence[Position], open_order_id: int) -> None:
        """Insert new positions (``open_order_id`` their opening order) and update changed ones."""
        ...

    async def market_positions(self, market_id: str) -> list[Position]:
        """Every open position of a market, by id (for the jobs)."""
        ...

    async def accounts_with_positions(self) -> list[AccountId]:
        """Accounts with at least one open position, sorted (for the margin job)."""
        ...

    async def positions_at(self, market_id: str, at: datetime) -> list[Position]:
        """The market's positions open at ``at`` (opened at or before it, not closed by then), by
        id, each with the lots it had then (rebuilt from its executions up to ``at``); the other
        fields are as stored now (for the funding and swap jobs)."""
        ...

    async def first_opened_at(self, market_id: str) -> datetime | None:
        """When the market's first position (open or closed) was opened."""
        ...

    # triggers
    async def triggers(self, position_ids: Sequence[str]) -> dict[str, Triggers]:
        """The stored triggers of each position that has any."""
        ...

    async def save_triggers(self, position_id: str, triggers: Triggers | None) -> None:
        """Replace the position's triggers (None or empty: remove them)."""
        ...

    # orders
    async def add_order(self, order: DerivativeOrder) -> bool:
        """Insert; False (nothing written) when the account used its clientOrderId already.
        A concurrent insert of the same clientOrderId waits for the first to finish."""
        ...

    async def update_order(self, order: DerivativeOrder) -> None: ...
    async def get_order(self, order_id: int, *, for_update: bool = False) -> DerivativeOrder | None: ...
    async def order_by_client_id(
        self, account_id: AccountId, client_order_id: str
    ) -> DerivativeOrder | None: ...
    async def list_orders(self, account_id: AccountId, query: OrderListQuery) -> list[DerivativeOrder]:
        """Newest first (by order id); at most ``query.limit``."""
        ...

    async def live_orders(self, market_id: str | None = None) -> list[DerivativeOrder]:
        """Resting and waiting Dealer orders (of one market if given), oldest first (for the dealer
        job); orders in an OrderBook market's book are the runner's, not listed here."""
        ...

    async def book_orders(self, market_id: str) -> list[DerivativeOrder]:
        """The live orders in the market's order book (its runner rebuilds the book from them)."""
        ...

    async def new_position_ids(self, count: int) -> list[str]:
        """``count`` fresh position ids."""
        ...

    # fills
    async def add_executions(self, executions: Sequence[PositionExecution]) -> list[int]:
        """Insert; their ids in input order."""
        ...

    async def executions(self, account_id: AccountId, query: ExecutionQuery) -> list[PositionExecution]:
        """The account's executions, oldest first (by id)."""
        ...

    async def closed_positions(
        self, account_id: AccountId, query: ClosedPositionQuery
    ) -> list[ClosedPositionRow]:
        """The account's closes, newest order first, older than ``query.last_order_id``."""
        ...

    # margin settings
    async def margin_ratios(self) -> dict[AssetId, Decimal]: ...
    async def set_margin_ratio(self, asset_id: AssetId, ratio: Decimal, at: datetime) -> None: ...
    async def margin_selection(self, account_id: AccountId) -> dict[AssetId, bool]:
        """The account's explicit choices (an asset without a row keeps its default)."""
        ...

    async def set_margin_selection(
        self, account_id: AccountId, asset_id: AssetId, selected: bool, at: datetime
    ) -> None: ...
    async def margin_call_armed(self, account_id: AccountId, scope: str) -> bool:
        """Whether the next margin call of ``scope`` (``cross`` or ``position:<id>``) may be sent
        (True when never recorded)."""
        ...

    async def set_margin_call_armed(
        self, account_id: AccountId, scope: str, armed: bool, at: datetime
    ) -> None: ...

    # what the house absorbs and what the jobs pay
    async def add_deficit(self, deficit: Deficit) -> bool:
        """False (nothing written) when its business key was recorded already."""
        ...

    async def add_seizure(self, seizure: CollateralSeizure) -> None:
        """Record collateral taken towards a Cross shortfall (its ledger transaction is posted)."""
        ...

    async def add_funding_payment(self, payment: FundingPayment) -> bool:
        """False when the position was paid for that interval already."""
        ...

    async def add_swap_payment(self, payment: SwapPayment) -> bool:
        """False when the position was paid for that day already."""
        ...

    # the payment jobs' cursors
    async def job_cursor(self, job: str, market_id: str) -> datetime | None:
        """The last moment (``Funding``) or swap day's 00:00 (``Swap``) fully paid for the market."""
        ...

    async def set_job_cursor(self, job: str, market_id: str, through: datetime, at: datetime) -> None:
        """Move the cursor to ``through`` (never back)."""
        ...


class VenueRepository(Protocol):
    """Venues, per-market hedge settings and the external (hedge) orders (adapters/db/venue_repos.py)."""

    async def add_venue(self, venue: VenueConfig) -> bool:
        """False (nothing written) if the id is taken."""
        ...

    async def get_venue(self, venue_id: str, *, for_update: bool = False) -> VenueConfig | None: ...
    async def list_venues(self) -> list[VenueConfig]:
        """By id."""
        ...

    async def save_venue(self, venue: VenueConfig) -> None: ...
    async def delete_venue(self, venue_id: str) -> bool: ...
    async def venue_in_use(self, venue_id: str) -> bool:
        """Whether hedge settings or an unfinished external order name the venue."""
        ...

    async def get_hedging(self, market_id: str) -> HedgeSettings | None: ...
    async def put_hedging(self, settings: HedgeSettings) -> None:
        """Insert or replace the market's settings."""
        ...

    async def add_external_order(self, order: ExternalOrder) -> bool:
        """False (nothing written) if the derivative order already has one."""
        ...

    async def get_external_order(
        self, external_order_id: str, *, for_update: bool = False
    ) -> ExternalOrder | None: ...
    async def save_external_order(self, order: ExternalOrder) -> None:
        """Write back what changes: status, venue id, fills, times, attempts, last error."""
        ...

    async def external_orders_of(self, order_id: int) -> list[ExternalOrder]: ...
    async def claim_external_orders(
        self, statuses: Sequence[ExternalOrderStatus], limit: int, *, due_before: datetime | None = None
    ) -> list[ExternalOrder]:
        """Up to ``limit`` orders in ``statuses`` (with ``timeout_at <= due_before`` if given), oldest
        first, locked FOR UPDATE SKIP LOCKED: two job runs never take the same order."""
        ...


class UnitOfWork(Protocol):
    users: UserRepository
    accounts: AccountRepository
    revoked_tokens: RevokedTokenRepository
    login_failures: LoginFailureRepository
    service_tokens: ServiceTokenRepository
    app_keys: AppKeyRepository
    audit: AuditLog
    ledger: LedgerRepository
    assets: AssetRepository
    transfers: TransferRepository
    callbacks: CallbackRepository
    ext_requests: ExtRequestRepository
    marketdata: MarketDataRepository
    markets: MarketRepository
    commissions: CommissionRepository
    trading: TradingRepository
    workspace: WorkspaceRepository
    notifications: NotificationRepository
    price_alerts: PriceAlertRepository
    history: HistoryQueries
    categories: CategoryRepository
    market_files: MarketFileRepository
    account_groups: AccountGroupRepository
    reports: ReportRepository
    report_templates: ReportTemplateRepository
    report_rows: ReportRows
    report_mails: ReportMailRepository
    merchants: MerchantRepository
    feeshare: FeeShareRepository
    pricing: PricingRepository
    derivatives: DerivativesRepository
    venues: VenueRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# --- other ports -------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...
    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenCodec(Protocol):
    """Issues and checks access tokens; ``decode`` raises NotAuthenticated on anything wrong."""

    ttl_seconds: int

    def issue(self, uid: UserId, jti: str, now: datetime) -> str: ...
    def decode(self, token: str) -> dict[str, Any]: ...


class SecretCipher(Protocol):
    """Reversible encryption for secrets the server must read back (TOTP seeds, app secrets)."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, ciphertext: str) -> str: ...


class OneTimePasswords(Protocol):
    def new_secret(self) -> str: ...
    def provisioning_uri(self, secret: str, username: str) -> str: ...
    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        """The time step ``code`` is valid for (allowing one step of drift), or None."""
        ...


class Database(Protocol):
    """Health of the storage, for /readyz."""

    async def ping(self) -> None: ...
    async def migrations_current(self) -> bool: ...


class Resolver(Protocol):
    """DNS: the addresses a host name resolves to (as text); raises OSError when it does not resolve."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class CallbackSender(Protocol):
    """POSTs a callback body to ``ip`` (already checked), naming ``target``'s host in Host and TLS SNI.
    Never follows redirects; network errors and timeouts come back as an outcome, not an exception."""

    async def post(self, target: CallbackTarget, ip: IPAddress, body: bytes) -> SendOutcome: ...


class ReportWriter(Protocol):
    """One report file being written; blocking calls (the service runs them in a thread)."""

    def write(self, rows: Sequence[Sequence[Any]]) -> None: ...
    def finish(self) -> int:
        """Close and publish the file; its size in bytes."""
        ...

    def abort(self) -> None:
        """Remove what was written."""
        ...


class ReportFiles(Protocol):
    """Where report files live (the data dir)."""

    def create(self, report_id: str, fmt: ReportFormat, columns: Sequence[str]) -> ReportWriter: ...
    def path(self, report_id: str, fmt: ReportFormat) -> Path | None:
        """The finished file, if it is there."""
        ...

    def delete(self, report_id: str, fmt: ReportFormat) -> None: ...


class MailError(Exception):
    """A mail was not accepted by the server (or the server was not reached).

    ``permanent``: the server refused the recipient for good (an SMTP 5xx reply to it), so sending
    the same mail again cannot help; every other failure may pass."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    @property
    def enabled(self) -> bool: ...
    async def send(self, recipients: Sequence[str], subject: str, body: str) -> None:
        """Send one plain-text mail; MailError if it was not accepted."""
        ...


class ChartRenderer(Protocol):
    def render(self, title: str, candles: Sequence[Candle], start: datetime, end: datetime) -> bytes:
        """A PNG of the candles over [start, end]; one that says so when there are none."""
        ...


class SheetCodec(Protocol):
    """Rows of cells in and out of CSV and XLSX files (adapters/sheets.py)."""

    def read(self, fmt: FileFormat, content: bytes, max_rows: int) -> Sheet:
        """The non-blank rows (at most ``max_rows``) with their row numbers; InvalidInput if unreadable."""
        ...

    def write(self, fmt: FileFormat, rows: Sequence[Sequence[object]]) -> bytes: ...


class PriceFeedError(Exception):
    """A price feed gave no usable price (network, timeout, unknown symbol, empty book); ``args[0]`` says why."""


class PriceFeed(Protocol):
    """Public tickers of other exchanges (adapters/pricefeeds.py: ccxt)."""

    def supports(self, exchange: str) -> bool:
        """Whether ``exchange`` is an exchange id the feed knows."""
        ...

    async def ticker(self, exchange: str, symbol: str) -> SourcePrice:
        """The exchange's current bid and ask of ``symbol``; PriceFeedError if there is none."""
        ...

    async def aclose(self) -> None: ...


class Venue(Protocol):
    """An external venue the house hedges at (adapters/venues/: paper, ccxt). Every method raises
    ``domain.venues.VenueError`` kinds only (VenueUnavailable, VenueRejected, VenueTimeout): the
    adapter translates its library's errors (``raise ... from e``)."""

    async def place(self, request: VenueOrderRequest) -> VenueOrder:
        """Place a market order; the venue's report of it (often already filled)."""
        ...

    async def get(self, ref: VenueOrderRef) -> VenueOrder:
        """The order as the venue has it now (VenueRejected if the venue does not know it)."""
        ...

    async def cancel(self, ref: VenueOrderRef) -> VenueOrder:
        """Ask the venue to cancel; the order as it stands after (it may have filled meanwhile)."""
        ...


class VenueConnector(Protocol):
    """Makes (and keeps) the ``Venue`` of a stored venue (adapters/venues/__init__.py)."""

    def supports_exchange(self, exchange: str) -> bool:
        """Whether ``exchange`` is a ccxt exchange id."""
        ...

    def venue(self, config: VenueConfig, credentials: VenueCredentials | None) -> Venue:
        """The venue object of ``config`` (the same one while the config is unchanged)."""
        ...

    async def aclose(self) -> None: ...


# --- events ------------------------------------------------------------------------------------


class SubscriptionDropped(Exception):
    """The subscriber fell behind and was dropped; ``args[0]`` says why."""


class Subscription(Protocol):
    async def get(self) -> tuple[str, Mapping[str, Any]]:
        """The next (topic, event); raises SubscriptionDropped once the subscriber was dropped."""
        ...

    def close(self) -> None: ...


class EventBus(Protocol):
    """Events after commit (trades, book changes, order and balance updates) to whoever listens.

    Topics: ``trades.<marketId>``, ``book.<marketId>``, ``ticker.<marketId>``,
    ``candles.<marketId>``, ``orders.<accountId>``, ``balances.<accountId>``,
    ``notifications.<uid>`` (a trader notification, as its JSON, after it was stored),
    ``derivative-orders.<accountId>`` and ``positions.<accountId>`` (ids of the CFD/perpetual
    orders and positions a commit changed: service/derivatives_events.py).
    ``publish`` never blocks; a subscriber that falls behind is dropped.
    """

    def publish(self, topic: str, event: Mapping[str, Any]) -> None: ...
    def subscribe(self, pattern: str, maxsize: int = 1000) -> Subscription: ...
    def has_subscribers(self, topic: str) -> bool:
        """Whether a ``publish`` on ``topic`` now would reach anyone (so an event nobody reads
        need not be built)."""
        ...
