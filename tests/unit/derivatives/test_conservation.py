"""Property: over random price paths and random fills, money is neither made nor lost.

Several accounts (hedging and netting) open, increase, reduce, close and flip positions, and
pay or receive funding, while the price walks with big jumps (so losses beyond the account's
money, deficits, happen). Every transaction is applied to an in-memory balance map; after
each step:

- the sum of every balance (accounts' available and margin, ``sys:house``, ``sys:fees``) is what
  the accounts started with: every transaction balances and nothing leaks (a deficit is a loss
  the house absorbs by NOT receiving it, so it never shows up as money);
- no account balance is ever negative (deficits are recorded instead), and fees are only ever
  charged (``sys:fees`` holds exactly the sum of the fills' non-negative fees);
- an account's margin bucket holds exactly the margin of its open positions;
- a netting account has at most one open position per market.
"""

from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from bourse.domain.errors import InsufficientFunds
from bourse.domain.fees import CfdFee, FeeType
from bourse.domain.funding import funding_payment, settle_payment
from bourse.domain.ledger import FEES, LedgerTransaction, is_system
from bourse.domain.ledger import account_owner as owner_of
from bourse.domain.orders import Side
from bourse.domain.positions import (
    AccountKind,
    MarginType,
    Position,
    apply_fill,
    derivative_fee,
    notional,
)
from bourse.domain.values import AccountId
from tests.unit.derivatives.support import NOW, SPEC, USDT, D

ACCOUNTS = [
    (AccountId("h1"), AccountKind.HEDGING),
    (AccountId("n1"), AccountKind.NETTING),
    (AccountId("n2"), AccountKind.NETTING),
]
FEE = CfdFee(USDT, FeeType.PERCENT, D("0.05"))

steps = st.lists(
    st.tuples(
        st.integers(0, len(ACCOUNTS) - 1),  # who
        st.sampled_from(["buy", "sell", "close", "funding"]),
        st.integers(1, 8),  # lots
        # price move in ticks of 0.5: small, or a jump of up to 12500 USD (25%) that sinks leveraged positions
        st.one_of(st.integers(-400, 400), st.integers(-25_000, 25_000)),
        st.one_of(st.integers(1, 5), st.integers(20, 100)),  # leverage
        st.sampled_from(list(MarginType)),
        st.integers(0, 9),  # which position to close
        st.integers(-75, 75),  # funding rate in units of 0.0001
    ),
    min_size=5,
    max_size=60,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deposits=st.lists(st.sampled_from(["0", "25.5", "900", "5000", "20000"]), min_size=3, max_size=3),
    steps=steps,
)
def test_money_is_conserved_and_accounts_never_go_negative(deposits: list[str], steps: list[tuple]) -> None:
    balances: dict[tuple[str, str], Decimal] = {}
    for (account, _), amount in zip(ACCOUNTS, deposits, strict=True):
        balances[(owner_of(account), "available")] = D(amount)
    total = sum(balances.values(), D(0))
    positions: dict[str, Position] = {}
    deficits: dict[str, Decimal] = {}
    shortfall = D(0)  # losses beyond the account's available + released margin, computed here
    fees = D(0)  # what the fills say they charged
    ticks = 100_000  # price 50000
    seq = 0

    def apply(tx: LedgerTransaction | None) -> None:
        if tx is None:
            return
        for p in tx.postings:
            assert p.asset == USDT
            key = (p.owner, str(p.bucket))
            balances[key] = balances.get(key, D(0)) + p.amount

    for who, action, lots, move, leverage, margin_type, pick, rate in steps:
        ticks = max(1, ticks + move)
        price = SPEC.tick_size * ticks
        account, kind = ACCOUNTS[who]
        owner = owner_of(account)
        mine = sorted(
            (p for p in positions.values() if p.account_id == account and p.is_open),
            key=lambda p: p.position_id,
        )
        available = balances.get((owner, "available"), D(0))
        seq += 1

        if action == "funding":
            for p in mine:
                amount = funding_payment(p, SPEC, price, D(rate) / 10_000)
                tx, _, deficit = settle_payment(
                    owner,
                    USDT,
                    amount,
                    balances.get((owner, "available"), D(0)),
                    f"funding:{seq}:{p.position_id}",
                )
                apply(tx)
                deficits[account] = deficits.get(account, D(0)) + deficit
                if deficit > 0:
                    event("funding with a deficit")
        else:
            close_id = None
            if action == "close":
                if not mine:
                    continue
                chosen = mine[pick % len(mine)]
                close_id, side, lots = (
                    chosen.position_id,
                    chosen.side.closing_side,
                    min(lots, int(chosen.lots)),
                )
            else:
                side = Side.BUY if action == "buy" else Side.SELL
                if kind is AccountKind.NETTING and mine:  # trade at the open position's terms
                    leverage, margin_type = mine[0].leverage, mine[0].margin_type
            fee = derivative_fee(FEE, notional(price, D(lots), SPEC), D(lots), SPEC.settlement_scale)
            try:
                result = apply_fill(
                    kind=kind,
                    spec=SPEC,
                    positions=mine,
                    side=side,
                    lots=D(lots),
                    price=price,
                    leverage=leverage,
                    margin_type=margin_type,
                    fee=fee,
                    available=available,
                    new_position_id=f"p{seq}",
                    now=NOW,
                    close_position_id=close_id,
                    business_key=f"fill:{seq}",
                    asset=USDT,
                    account_id=account,
                )
            except InsufficientFunds:
                event("refused: insufficient funds")
                continue
            apply(result.postings)
            shortfall += max(D(0), -result.realized_pnl - available - result.margin_released)
            deficits[account] = deficits.get(account, D(0)) + result.deficit
            assert result.deficit >= 0 and 0 <= result.fee <= fee
            fees += result.fee
            # what the run covered (shown with --hypothesis-show-statistics)
            if result.deficit > 0:
                event("fill with a deficit")
            if result.opened is not None and result.closed_lots > 0:
                event("flip")
            if any(p.is_open for p in result.changed) and result.closed_lots > 0:
                event("partial close")
            if result.opened is None and result.closed_lots == 0:
                event("increase")
            for p in [*result.changed, *([result.opened] if result.opened else [])]:
                positions[p.position_id] = p

        assert sum(balances.values(), D(0)) == total
        assert balances.get((FEES, "available"), D(0)) == fees
        for (who_owner, _bucket), amount in balances.items():
            assert is_system(who_owner) or amount >= 0, (who_owner, amount, deficits)
        for acc, acc_kind in ACCOUNTS:
            held = sum((p.margin for p in positions.values() if p.account_id == acc and p.is_open), D(0))
            assert balances.get((owner_of(acc), "margin"), D(0)) == held
            if acc_kind is AccountKind.NETTING:
                assert sum(1 for p in positions.values() if p.account_id == acc and p.is_open) <= 1
        assert all(p.margin == 0 for p in positions.values() if not p.is_open)
    # steer the search towards runs where losses exceed what accounts have (the interesting edge)
    target(float(shortfall), label="shortfall")
