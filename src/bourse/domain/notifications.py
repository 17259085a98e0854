"""Notifications for traders and for staff, and the price alerts that raise the traders' ones.

Trader notifications belong to one user (and usually one of their accounts); staff
notifications go to one shared inbox that every user with ``view-common`` reads, each
keeping their own read marks. Other parts of the platform raise them through
``service/notifications.py`` or, inside their own unit of work, through
``uow.notifications`` with the builders below. docs/api/brokerage.md "Notifications".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bourse.domain.errors import InvalidInput
from bourse.domain.trading import parse_time
from bourse.domain.transfers import iso_millis
from bourse.domain.values import AccountId, UserId, format_decimal, parse_decimal


class TraderNotificationType(StrEnum):
    # The spec's name for a fired price alert ("PriceAlert" in the issue).
    MARKET_PRICE = "MarketPrice"
    # Margin level below the margin-call level (service/derivatives.py check_margin), once per crossing.
    MARGIN_CALL = "MarginCall"


class AdminNotificationType(StrEnum):
    # A hedge order at an external venue was not filled by its timeout (service/hedging.py).
    EXTERNAL_ORDER_TIMEOUT = "ExternalOrderTimeout"
    CALLBACK_DELIVERY_FAILED = "CallbackDeliveryFailed"
    LEDGER_CHECK_FAILED = "LedgerCheckFailed"
    MARKET_HALTED = "MarketHalted"
    # The pricing job reopened a market it had halted for a stale price source (domain/pricing.py).
    MARKET_RESUMED = "MarketResumed"
    # A report failed (service/reports.py).
    REPORT_FAILED = "ReportFailed"
    # A report's mail to one of its notifyEmails was given up after its last retry (or refused for
    # good); the report itself is as it was.
    REPORT_MAIL_FAILED = "ReportMailFailed"
    # An OTC fee sharing record whose fingerprint no longer matches was not settled (domain/feeshare.py).
    FEE_SHARE_FINGERPRINT_MISMATCH = "FeeShareFingerprintMismatch"
    # A derivative loss (close, funding or swap) larger than the account could pay: the house absorbed
    # the rest (service/derivatives.py, table ``deficits``).
    POSITION_DEFICIT = "PositionDeficit"


class PriceCondition(StrEnum):
    GTE = "Gte"  # fires at the first trade at or above the price
    LTE = "Lte"  # fires at the first trade at or below the price

    def met(self, target: Decimal, traded: Decimal) -> bool:
        return traded >= target if self is PriceCondition.GTE else traded <= target


MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_IDS = 1000
MAX_ALERTS_PER_ACCOUNT = 200  # active (not yet fired) ones
MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 2000


# --- notifications ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAdminNotification:
    type: AdminNotificationType
    title: str
    body: str
    data: Mapping[str, Any]
    created_at: datetime
    # Raising twice with one key stores one notification (e.g. one per given-up delivery).
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewTraderNotification:
    uid: UserId
    account_id: AccountId | None  # None: about the user, shown under every account
    type: TraderNotificationType
    title: str
    body: str
    data: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification as a reader sees it (``is_read`` is the reader's own mark)."""

    id: int
    type: str
    title: str
    body: str
    data: Mapping[str, Any]
    is_read: bool
    created_at: datetime
    account_id: AccountId | None = None


def _text(value: str, most: int) -> str:
    value = value.strip()
    return value if len(value) <= most else value[: most - 1] + "…"


def admin_notification(
    kind: AdminNotificationType | str,
    title: str,
    body: str,
    details: Mapping[str, Any] | None,
    at: datetime,
    dedupe_key: str | None = None,
) -> NewAdminNotification:
    kind = parse_admin_type(kind, "kind")
    return NewAdminNotification(
        kind,
        _text(title, MAX_TITLE_CHARS),
        _text(body, MAX_BODY_CHARS),
        {**(details or {}), "type": kind.value},
        at,
        dedupe_key,
    )


def trader_notification(
    uid: UserId,
    kind: TraderNotificationType | str,
    title: str,
    body: str,
    details: Mapping[str, Any] | None,
    at: datetime,
    account_id: AccountId | None = None,
) -> NewTraderNotification:
    try:
        kind = TraderNotificationType(kind)
    except ValueError:
        raise InvalidInput(f"unknown trader notification type {kind}", field="kind") from None
    return NewTraderNotification(
        uid,
        account_id,
        kind,
        _text(title, MAX_TITLE_CHARS),
        _text(body, MAX_BODY_CHARS),
        {**(details or {}), "type": kind.value},
        at,
    )


def notification_json(n: Notification) -> dict[str, Any]:
    """The spec's item ``{id, type, data, isRead, createdAt}`` plus ``title``, ``body`` (and ``accountId``
    for trader notifications) as extensions."""
    out: dict[str, Any] = {
        "id": str(n.id),
        "type": n.type,
        "title": n.title,
        "body": n.body,
        "data": dict(n.data),
        "isRead": n.is_read,
        "createdAt": iso_millis(n.created_at),
    }
    if n.account_id is not None:
        out["accountId"] = n.account_id
    return out


# --- what raises them -------------------------------------------------------------------------


def callback_given_up(
    delivery_id: int, transfer_id: str, url: str, attempts: int, last_error: str, at: datetime
) -> NewAdminNotification:
    # The query string may carry the receiver's token: staff see where, not with what.
    url = url.split("?", 1)[0].split("#", 1)[0]
    return admin_notification(
        AdminNotificationType.CALLBACK_DELIVERY_FAILED,
        f"Callback for transfer {transfer_id} given up",
        f"The status callback to {url} failed {attempts} time(s) and will not be retried: {last_error}",
        {
            "transferId": transfer_id,
            "deliveryId": str(delivery_id),
            "url": url,
            "attempts": attempts,
            "lastError": last_error,
        },
        at,
        dedupe_key=f"callback-delivery:{delivery_id}",
    )


def report_mail_given_up(
    mail_id: int,
    report_id: str,
    recipient: str,
    subject: str,
    attempts: int,
    last_error: str,
    at: datetime,
) -> NewAdminNotification:
    return admin_notification(
        AdminNotificationType.REPORT_MAIL_FAILED,
        f"Report mail to {recipient} given up",
        f'The mail "{subject}" to {recipient} failed {attempts} time(s) and will not be retried: {last_error}',
        {
            "reportId": report_id,
            "mailId": str(mail_id),
            "recipient": recipient,
            "subject": subject,
            "attempts": attempts,
            "lastError": last_error,
        },
        at,
        dedupe_key=f"report-mail:{mail_id}",
    )


def market_halted(market_id: str, by: str, at: datetime) -> NewAdminNotification:
    return admin_notification(
        AdminNotificationType.MARKET_HALTED,
        f"Market {market_id} halted",
        f"{by} set market {market_id} to Halted; its orders are not matched until it is Active again.",
        {"marketId": market_id, "by": by},
        at,
    )


def ledger_check_failed(problems: Mapping[str, int], at: datetime) -> NewAdminNotification:
    total = sum(problems.values())
    return admin_notification(
        AdminNotificationType.LEDGER_CHECK_FAILED,
        "Ledger check found problems",
        f"bourse ledger check found {total} problem(s): "
        + ", ".join(f"{count} {name}" for name, count in problems.items() if count),
        {"problems": dict(problems)},
        at,
    )


# --- queries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationQuery:
    unread_only: bool = False
    types: tuple[str, ...] = ()
    last_id: int | None = None  # the page continues below this id (newest first)
    limit: int = DEFAULT_PAGE
    created_from: datetime | None = None
    created_before: datetime | None = None  # exclusive: createdTo (to the millisecond) + 1 ms


def parse_last_id(value: object, field: str = "lastId") -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"{field} must be the id of a notification", field=field)
    return int(value)


def parse_limit(value: object, field: str = "limit") -> int:
    if value is None:
        return DEFAULT_PAGE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise InvalidInput(f"{field} must be an integer from 1 to {MAX_PAGE}", field=field)
    return value


def parse_admin_type(value: object, field: str = "types") -> AdminNotificationType:
    try:
        return AdminNotificationType(str(value))
    except ValueError:
        raise InvalidInput(
            f"{field} must be among {', '.join(t.value for t in AdminNotificationType)}", field=field
        ) from None


def _fields(body: object, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])
    return body


def _flag(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def parse_trader_query(body: object) -> NotificationQuery:
    """POST /trader-notifications: ``{isUnreadOnly, lastId, limit}``, every field optional."""
    f = _fields(body, ("isUnreadOnly", "lastId", "limit"))
    return NotificationQuery(
        unread_only=_flag(f.get("isUnreadOnly"), "isUnreadOnly"),
        last_id=parse_last_id(f.get("lastId")),
        limit=parse_limit(f.get("limit")),
    )


def parse_admin_query(body: object) -> NotificationQuery:
    """POST /admin-notifications: ``{unreadOnly, types, lastId, limit, createdFrom, createdTo}``."""
    f = _fields(body, ("unreadOnly", "types", "lastId", "limit", "createdFrom", "createdTo"))
    raw_types = f.get("types") or []
    if not isinstance(raw_types, list):
        raise InvalidInput("types must be a list", field="types")
    types = tuple(dict.fromkeys(parse_admin_type(v, f"types[{i}]").value for i, v in enumerate(raw_types)))
    created_from = None if f.get("createdFrom") is None else parse_time(f["createdFrom"], "createdFrom")
    created_to = None if f.get("createdTo") is None else parse_time(f["createdTo"], "createdTo")
    if created_from is not None and created_to is not None and created_from > created_to:
        raise InvalidInput("createdFrom is after createdTo", field="createdFrom")
    return NotificationQuery(
        unread_only=_flag(f.get("unreadOnly"), "unreadOnly"),
        types=types,
        last_id=parse_last_id(f.get("lastId")),
        limit=parse_limit(f.get("limit")),
        created_from=created_from,
        created_before=None if created_to is None else created_to + timedelta(milliseconds=1),
    )


def parse_ids_body(body: object) -> list[int]:
    """``{ids: [...]}`` (mark-as-read, deleting price alerts)."""
    f = _fields(body, ("ids",))
    if "ids" not in f:
        raise InvalidInput("ids is required", field="ids")
    return parse_ids(f["ids"])


def parse_ids(value: object, field: str = "ids") -> list[int]:
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be a list of ids", field=field)
    if len(value) > MAX_IDS:
        raise InvalidInput(f"{field} holds at most {MAX_IDS} ids", field=field)
    out = []
    for i, raw in enumerate(value):
        if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
            raise InvalidInput(f"{field}[{i}] must be an id (a string of digits)", field=f"{field}[{i}]")
        out.append(int(raw))
    return sorted(set(out))


# --- price alerts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceAlert:
    id: int
    uid: UserId
    account_id: AccountId
    market_id: str
    price: Decimal
    condition: PriceCondition
    # Only trades after this one count: the market's last trade when the alert was set.
    after_trade_id: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FiredAlert:
    alert: PriceAlert
    trade_id: int
    trade_price: Decimal
    account_name: str


@dataclass(frozen=True, slots=True)
class Trade:
    """What an alert needs of one trade."""

    trade_id: int
    price: Decimal


def parse_condition(value: object) -> PriceCondition:
    try:
        return PriceCondition(str(value))
    except ValueError:
        raise InvalidInput(
            f"condition must be one of {', '.join(c.value for c in PriceCondition)}", field="condition"
        ) from None


def parse_alert_price(value: object, tick_size: Decimal) -> Decimal:
    if not isinstance(value, str):
        raise InvalidInput("price must be a decimal string", field="price")
    price = parse_decimal(value, "price")
    if price <= 0:
        raise InvalidInput("price must be positive", field="price")
    if price % tick_size != 0:
        raise InvalidInput(
            f"price must be a multiple of the tick size {format_decimal(tick_size)}", field="price"
        )
    return price


def alert_json(alert: PriceAlert) -> dict[str, Any]:
    return {"id": str(alert.id), "price": format_decimal(alert.price), "condition": alert.condition.value}


def alerts_by_market(market_ids: Sequence[str], alerts: Sequence[PriceAlert]) -> list[dict[str, Any]]:
    """The spec's ``markets`` list: one entry per requested market, in request order."""
    grouped: dict[str, list[dict[str, Any]]] = {m: [] for m in market_ids}
    for alert in alerts:
        grouped.setdefault(alert.market_id, []).append(alert_json(alert))
    return [{"marketId": m, "subscriptions": grouped[m]} for m in market_ids]


def fired_notification(fired: FiredAlert, at: datetime) -> NewTraderNotification:
    a = fired.alert
    sign = ">=" if a.condition is PriceCondition.GTE else "<="
    return trader_notification(
        a.uid,
        TraderNotificationType.MARKET_PRICE,
        f"{a.market_id} traded at {format_decimal(fired.trade_price)}",
        f"Your alert {a.market_id} {sign} {format_decimal(a.price)} fired: the last price is "
        f"{format_decimal(fired.trade_price)}.",
        {
            "accountId": a.account_id,
            "accountName": fired.account_name,
            "marketId": a.market_id,
            "subscriptionId": str(a.id),
            "price": format_decimal(a.price),
            "condition": a.condition.value,
            "lastPrice": format_decimal(fired.trade_price),
            "tradeId": str(fired.trade_id),
        },
        at,
        a.account_id,
    )
