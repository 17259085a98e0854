"""External venues and the orders the platform sends them: A-book hedging of Dealer fills.

A Dealer fill (``service/derivatives_fills.py``) makes the house the trader's counterparty. On a
market with hedge settings, the house lays that risk off at an external venue: an *external order*
of ``hedgeRatio`` times the fill's base amount, on the fill's side, is written in the fill's own
transaction (an outbox) and sent by the hedging job (``service/hedging.py``).

Venues (``VenueKind``): ``Paper`` (a simulated venue inside the platform, filling at the market's
source price) and ``Ccxt`` (a real exchange through ccxt's private API, with API keys stored
encrypted).

External order states, as a transition table (``TRANSITIONS``)::

    New ──> Sent ──> Acknowledged ──> PartiallyFilled ──> Filled
     │       │   └─> PartiallyFilled / Filled / Rejected / Cancelled
     │       └─────────────────────────────────────────────> TimedOut
     └──> TimedOut      (Acknowledged and PartiallyFilled can time out, be cancelled, too)

- ``New``: written with the fill, not yet sent.
- ``Sent``: the request left (committed before the call, so a crash never sends twice); what the
  venue did with it is not known yet. The job polls it.
- ``Acknowledged``: the venue has it open, nothing filled. ``PartiallyFilled``: some filled.
- ``Filled``, ``Rejected``, ``Cancelled`` (by the venue or an operator there): final.
- ``TimedOut``: not finished (filled, rejected or cancelled) by ``timeout_at``; final for us: the
  job raises one ``ExternalOrderTimeout`` admin notification and cancels it at the venue, best
  effort. What the venue filled until then stays recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from bourse.domain.errors import BourseError, InvalidInput, InvariantViolation
from bourse.domain.orders import Side
from bourse.domain.values import AccountId, AssetId, UserId, decimal_places, parse_decimal

DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 86_400
MAX_LATENCY_MS = 60_000
MAX_ERROR_CHARS = 500
_VENUE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_EXCHANGE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_SYMBOL_MAX = 64
_NAME_MAX = 100
_SECRET_MAX = 512
MAX_RATE_SCALE = 8
_E = TypeVar("_E", bound=StrEnum)


# --- errors: what a venue adapter raises (third-party errors translated at the adapter) ------------


class VenueError(BourseError):
    """A venue did not do what was asked. Raised by ``service.ports.Venue`` implementations only;
    the hedging job records it on the external order (``last_error``), it never reaches a caller."""

    code = "venue_error"


class VenueUnavailable(VenueError):
    """The venue could not be reached or refused to serve (network, maintenance, rate limit, auth):
    the order may be retried."""

    code = "venue_unavailable"


class VenueRejected(VenueError):
    """The venue refused the order itself (bad symbol, amount, funds): retrying cannot help."""

    code = "venue_rejected"


class VenueTimeout(VenueError):
    """No answer in time: the venue may or may not have the order; only a later look-up can tell."""

    code = "venue_timeout"


# --- venues -------------------------------------------------------------------------------------


class VenueKind(StrEnum):
    PAPER = "Paper"  # simulated inside the platform: fills at the market's source price
    CCXT = "Ccxt"  # a real exchange through ccxt's private API (create/fetch/cancel order)


class PaperMode(StrEnum):
    """How a paper venue answers (tests and demos exercise every path with it)."""

    FILL = "Fill"  # fills a market order at once at the source's ask (buy) / bid (sell)
    ACCEPT = "Accept"  # acknowledges, fills at the first look-up at least ``latencyMs`` later
    REJECT = "Reject"  # refuses every order (VenueRejected)
    UNAVAILABLE = "Unavailable"  # cannot be reached (VenueUnavailable)
    SILENT = "Silent"  # never answers (VenueTimeout on every call): the order times out


@dataclass(frozen=True, slots=True)
class PaperSettings:
    mode: PaperMode = PaperMode.FILL
    latency_ms: int = 0
    fee_rate: Decimal = Decimal(0)  # of the filled quote amount, charged in the quote asset


@dataclass(frozen=True, slots=True)
class SourceQuote:
    """What a paper venue fills at: the market's source bid and ask (before any dealer markup) and
    the market's quote asset (its commission asset)."""

    bid: Decimal
    ask: Decimal
    quote_asset: AssetId


@dataclass(frozen=True, slots=True)
class VenueCredentials:
    """A ccxt venue's API keys (``password``: the passphrase some exchanges want). Only ever held
    decrypted in memory; stored encrypted (``service.ports.SecretCipher``)."""

    api_key: str
    secret: str
    password: str | None = None

    def masked(self) -> dict[str, Any]:
        return {
            "apiKey": mask(self.api_key),
            "hasSecret": bool(self.secret),
            "hasPassword": bool(self.password),
        }


def mask(text: str) -> str:
    """The first four characters and stars: enough to tell keys apart, never enough to use one."""
    return text[:4] + "*" * max(4, len(text) - 4) if len(text) > 8 else "*" * 8


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """A venue as stored, without its secrets (``credentials_enc`` is the cipher's text)."""

    venue_id: str
    kind: VenueKind
    name: str
    created_at: datetime
    updated_at: datetime
    enabled: bool = True
    exchange: str | None = None  # Ccxt: the ccxt exchange id
    sandbox: bool = False  # Ccxt: the exchange's test environment
    paper: PaperSettings | None = None  # Paper
    credentials_enc: str | None = None


_VENUE_FIELDS = frozenset(
    {"venueId", "kind", "name", "enabled", "exchange", "sandbox", "paper", "credentials"}
)
_PAPER_FIELDS = frozenset({"mode", "latencyMs", "feeRate"})
_CREDENTIAL_FIELDS = frozenset({"apiKey", "secret", "password"})


def parse_venue_id(value: object, field: str = "venueId") -> str:
    if not isinstance(value, str) or not _VENUE_ID.match(value):
        raise InvalidInput(
            f"{field} must be 1-32 lowercase letters, digits, '-' or '_' (starting with a letter or digit)",
            field=field,
        )
    return value


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    return value


def _unknown(body: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {prefix}{unknown[0]}", field=prefix + unknown[0])


def _text(body: Mapping[str, Any], name: str, max_chars: int, *, field: str | None = None) -> str:
    value = body.get(name)
    field = field or name
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise InvalidInput(f"{field} must be a text of 1-{max_chars} characters", field=field)
    return value.strip()


def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value


def _enum(kind: type[_E], value: object, field: str) -> _E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be one of {', '.join(k.value for k in kind)}", field=field
        ) from None


def _paper(value: object) -> PaperSettings:
    body = _object({} if value is None else value, "paper")
    _unknown(body, _PAPER_FIELDS, "paper.")
    mode = PaperMode.FILL if body.get("mode") is None else _enum(PaperMode, body["mode"], "paper.mode")
    latency = body.get("latencyMs", 0)
    if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= MAX_LATENCY_MS:
        raise InvalidInput(f"paper.latencyMs must be an integer 0-{MAX_LATENCY_MS}", field="paper.latencyMs")
    fee = Decimal(0)
    if body.get("feeRate") is not None:
        fee = parse_decimal(body["feeRate"], "paper.feeRate")
        if not Decimal(0) <= fee < Decimal("0.1") or decimal_places(fee) > MAX_RATE_SCALE:
            raise InvalidInput("paper.feeRate must be a fraction in [0, 0.1)", field="paper.feeRate")
    return PaperSettings(mode, latency, fee)


def parse_credentials(value: object) -> VenueCredentials:
    body = _object(value, "credentials")
    _unknown(body, _CREDENTIAL_FIELDS, "credentials.")
    api_key = _text(body, "apiKey", _SECRET_MAX, field="credentials.apiKey")
    secret = _text(body, "secret", _SECRET_MAX, field="credentials.secret")
    password = None
    if body.get("password") is not None:
        password = _text(body, "password", _SECRET_MAX, field="credentials.password")
    return VenueCredentials(api_key, secret, password)


@dataclass(frozen=True, slots=True)
class VenueInput:
    """A parsed venue body: the config and, if given, new credentials (to be encrypted)."""

    config: VenueConfig
    credentials: VenueCredentials | None


def parse_venue(
    body: object, now: datetime, *, venue_id: str | None = None, before: VenueConfig | None = None
) -> VenueInput:
    """A venue from a back-office body. Creating: ``venueId``, ``kind`` and ``name`` are required,
    a Ccxt venue needs ``exchange`` and ``credentials``. Updating (``before`` given): a whole
    replacement of the settings, except that omitted ``credentials`` keep the stored ones; the
    kind cannot change. Whether ccxt knows ``exchange`` is the service's check."""
    data = _object(body, "body")
    _unknown(data, _VENUE_FIELDS)
    if before is None:
        vid = parse_venue_id(data.get("venueId"))
    else:
        vid = before.venue_id
        if data.get("venueId") is not None and data["venueId"] != vid:
            raise InvalidInput("venueId cannot change", field="venueId")
    if venue_id is not None and vid != venue_id:
        raise InvalidInput("venueId does not match the path", field="venueId")
    if data.get("kind") is not None:
        kind = _enum(VenueKind, data["kind"], "kind")
    elif before is not None:
        kind = before.kind
    else:
        raise InvalidInput("kind is required", field="kind")
    if before is not None and kind is not before.kind:
        raise InvalidInput("kind cannot change: create another venue", field="kind")
    name = _text(data, "name", _NAME_MAX)
    enabled = _bool(data, "enabled", True)
    credentials = None if data.get("credentials") is None else parse_credentials(data["credentials"])
    created = before.created_at if before is not None else now
    if kind is VenueKind.PAPER:
        for f in ("exchange", "sandbox", "credentials"):
            if data.get(f) is not None:
                raise InvalidInput(f"{f} is for Ccxt venues", field=f)
        config = VenueConfig(vid, kind, name, created, now, enabled, paper=_paper(data.get("paper")))
        return VenueInput(config, None)
    if data.get("paper") is not None:
        raise InvalidInput("paper is for Paper venues", field="paper")
    exchange = data.get("exchange")
    if not isinstance(exchange, str) or not _EXCHANGE.match(exchange):
        raise InvalidInput("exchange must be a ccxt exchange id (binance, kraken, ...)", field="exchange")
    if credentials is None and (before is None or before.credentials_enc is None):
        raise InvalidInput("a Ccxt venue needs credentials (apiKey, secret)", field="credentials")
    config = VenueConfig(
        vid,
        kind,
        name,
        created,
        now,
        enabled,
        exchange=exchange,
        sandbox=_bool(data, "sandbox", False),
        credentials_enc=None if before is None else before.credentials_enc,
    )
    return VenueInput(config, credentials)


# --- hedge settings per market ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HedgeSettings:
    """How a Dealer market's fills are hedged: ``ratio`` (0..1) of each fill's base amount goes to
    ``venue_id`` as a market order on ``venue_symbol``; an order not finished ``timeout_seconds``
    after the fill times out. ``enabled`` False keeps the settings but hedges nothing."""

    market_id: str
    venue_id: str
    venue_symbol: str
    ratio: Decimal
    timeout_seconds: int
    enabled: bool
    updated_at: datetime


_HEDGE_FIELDS = frozenset({"venueId", "venueSymbol", "hedgeRatio", "timeoutSeconds", "enabled"})


def parse_hedge_settings(market_id: str, body: object, now: datetime) -> HedgeSettings:
    """The settings of a back-office PUT body (a whole replacement); ``InvalidInput`` names the
    field. Whether the venue exists and the market is a Dealer derivative is the service's check."""
    data = _object(body, "body")
    _unknown(data, _HEDGE_FIELDS)
    venue_id = parse_venue_id(data.get("venueId"))
    symbol = _text(data, "venueSymbol", _SYMBOL_MAX)
    if data.get("hedgeRatio") is None:
        raise InvalidInput("hedgeRatio is required (0 to 1)", field="hedgeRatio")
    ratio = parse_decimal(data["hedgeRatio"], "hedgeRatio")
    if not Decimal(0) <= ratio <= Decimal(1) or decimal_places(ratio) > MAX_RATE_SCALE:
        raise InvalidInput(
            f"hedgeRatio must be a fraction from 0 to 1 with at most {MAX_RATE_SCALE} decimals",
            field="hedgeRatio",
        )
    timeout = data.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput(
            f"timeoutSeconds must be an integer from 1 to {MAX_TIMEOUT_SECONDS}", field="timeoutSeconds"
        )
    return HedgeSettings(
        market_id, venue_id, symbol, ratio.normalize() + 0, timeout, _bool(data, "enabled", True), now
    )


def hedge_amount(base_amount: Decimal, ratio: Decimal, amount_scale: int) -> Decimal:
    """The base amount to hedge, rounded DOWN to the market's amount scale: the hedge never
    exceeds the house's exposure; 0 means nothing to send."""
    return (base_amount * ratio).quantize(Decimal(1).scaleb(-amount_scale), rounding=ROUND_DOWN)


# --- external orders ---------------------------------------------------------------------------------


class ExternalOrderStatus(StrEnum):
    NEW = "New"
    SENT = "Sent"
    ACKNOWLEDGED = "Acknowledged"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    REJECTED = "Rejected"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


_S = ExternalOrderStatus
_LIVE_AT_VENUE = frozenset({_S.ACKNOWLEDGED, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCELLED})
TRANSITIONS: Mapping[ExternalOrderStatus, frozenset[ExternalOrderStatus]] = MappingProxyType(
    {
        _S.NEW: frozenset({_S.SENT, _S.TIMED_OUT}),
        _S.SENT: _LIVE_AT_VENUE | {_S.TIMED_OUT},
        _S.ACKNOWLEDGED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.TIMED_OUT}),
        # PartiallyFilled -> PartiallyFilled: more filled.
        _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.TIMED_OUT}),
        _S.FILLED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.TIMED_OUT: frozenset(),
    }
)
FINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
# Sent to the venue and not finished there: the job looks these up.
AWAITING_VENUE = frozenset({_S.SENT, _S.ACKNOWLEDGED, _S.PARTIALLY_FILLED})


def can_move(current: ExternalOrderStatus, new: ExternalOrderStatus) -> bool:
    return new in TRANSITIONS[current]


class VenueOrderState(StrEnum):
    """What a venue says of an order (an adapter maps the venue's own words onto these)."""

    OPEN = "Open"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    REJECTED = "Rejected"
    CANCELLED = "Cancelled"


_FROM_VENUE: Mapping[VenueOrderState, ExternalOrderStatus] = MappingProxyType(
    {
        VenueOrderState.OPEN: _S.ACKNOWLEDGED,
        VenueOrderState.PARTIALLY_FILLED: _S.PARTIALLY_FILLED,
        VenueOrderState.FILLED: _S.FILLED,
        VenueOrderState.REJECTED: _S.REJECTED,
        VenueOrderState.CANCELLED: _S.CANCELLED,
    }
)


@dataclass(frozen=True, slots=True)
class VenueOrderRequest:
    """A market order to place. ``client_order_id`` is our external order id: a venue that keeps
    client ids refuses a second order with it, and it finds the order when the answer was lost."""

    client_order_id: str
    symbol: str
    side: Side
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VenueOrderRef:
    """How to find an order at the venue: its id there if we got one, else our client id."""

    symbol: str
    client_order_id: str
    lp_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it (typed; amounts exact)."""

    lp_order_id: str
    client_order_id: str | None
    state: VenueOrderState
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    commission: Decimal
    commission_asset: AssetId | None
    reason: str | None = None  # why it was rejected or cancelled, if the venue said


@dataclass(frozen=True, slots=True)
class ExternalOrder:
    """One hedge order as stored (``external_orders``). Amounts in the market's base asset."""

    external_order_id: str
    venue_id: str
    venue_symbol: str
    order_id: int  # the derivative order whose fill it hedges
    position_execution_id: int | None
    market_id: str
    account_id: AccountId
    uid: UserId
    side: Side
    amount: Decimal
    status: ExternalOrderStatus
    created_at: datetime
    updated_at: datetime
    timeout_at: datetime
    reference_price: Decimal  # the fill's price (the dealer's), for comparing with the hedge's
    lp_order_id: str | None = None
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    commission: Decimal = Decimal(0)
    commission_asset: AssetId | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def ref(self) -> VenueOrderRef:
        return VenueOrderRef(self.venue_symbol, self.external_order_id, self.lp_order_id)

    def moved(self, status: ExternalOrderStatus, now: datetime, **changes: Any) -> ExternalOrder:
        """The order in ``status`` (InvariantViolation if the table forbids the move)."""
        if status is not self.status and not can_move(self.status, status):
            raise InvariantViolation(
                f"external order {self.external_order_id}: {self.status.value} -> {status.value} is not allowed",
                external_order_id=self.external_order_id,
            )
        return replace(self, status=status, updated_at=now, **changes)

    def reported(self, venue: VenueOrder, now: datetime) -> ExternalOrder:
        """The order after the venue's report. A report never takes back what was filled, and a
        final state is kept (a late report of a timed-out order only updates its fills)."""
        filled = max(self.filled, min(venue.filled, self.amount))
        fills: dict[str, Any] = {
            "lp_order_id": venue.lp_order_id or self.lp_order_id,
            "filled": filled,
            "average_price": venue.average_price if venue.average_price is not None else self.average_price,
            "commission": max(self.commission, venue.commission),
            "commission_asset": venue.commission_asset or self.commission_asset,
        }
        if venue.reason and venue.state in (VenueOrderState.REJECTED, VenueOrderState.CANCELLED):
            fills["last_error"] = venue.reason[:MAX_ERROR_CHARS]
        if self.status in FINAL:
            return replace(self, updated_at=now, **fills)
        status = _FROM_VENUE[venue.state]
        if status is _S.PARTIALLY_FILLED and filled >= self.amount:
            status = _S.FILLED
        if status is _S.ACKNOWLEDGED and filled > 0:
            status = _S.PARTIALLY_FILLED
        if status is self.status and status is _S.ACKNOWLEDGED:
            return replace(self, updated_at=now, **fills)
        return self.moved(status, now, **fills)


def timeout_at(filled_at: datetime, timeout_seconds: int) -> datetime:
    return filled_at + timedelta(seconds=timeout_seconds)


def timed_out(order: ExternalOrder, now: datetime) -> bool:
    """The timeout rule: an order not finished at the venue (not Filled, Rejected or Cancelled) by
    its ``timeout_at`` times out, whether it was never sent, sent without an answer, acknowledged
    or only partly filled."""
    return order.status not in FINAL and now >= order.timeout_at


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
