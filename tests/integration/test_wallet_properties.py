"""Random sequences of ext-order creates, cancels, settlements, replays and top-ups against a model.

The model knows the user's four buckets and the house's two; every step is one
WalletService call on the real database. Properties: balances follow the model,
nothing of the user's goes negative, each extRequestId moves money at most once
(and a repeat either replays or conflicts), and the ledger stays balanced.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bourse.bootstrap import Container, build
from bourse.domain.errors import InsufficientFunds
from bourse.domain.identity import ServiceCaller
from bourse.domain.ledger import EXTERNAL, HOUSE, Bucket, account_owner, move
from bourse.domain.values import AssetId
from bourse.domain.wallet import (
    ExtRequestConflict,
    ExtRequestType,
    NegativeSettlement,
    OverRelease,
)
from bourse.service.context import RequestMeta
from tests.conftest import FAST_HASHER, make_settings

USDT = AssetId("USDT")
AMOUNTS = st.integers(min_value=1, max_value=4000).map(lambda cents: Decimal(cents) / 100)
BONUS = st.one_of(
    st.just(Decimal(0)), st.integers(min_value=1, max_value=500).map(lambda c: Decimal(c) / 100)
)
PNL_SHARES = st.sampled_from([-101, -100, -50, -1, 0, 0, 10, 100, 250])
# Share of the relevant balance, in percent: mostly fits, sometimes (over 100) does not.
SHARES = st.sampled_from([1, 5, 10, 25, 50, 75, 100, 101, 150])
BONUS_SHARES = st.sampled_from([0, 0, 0, 10, 50, 100, 150])
IDS = st.sampled_from([f"e{i}" for i in range(8)])
USER_BUCKETS = (Bucket.AVAILABLE, Bucket.STAKE, Bucket.BONUS, Bucket.BONUS_STAKE)
_runs = itertools.count()


class WalletMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    container: Container

    def __init__(self) -> None:
        super().__init__()
        run = next(_runs)
        self.username = f"prop-{run}"
        created = self.loop.run_until_complete(
            self.container.identity.create_user(self.username, "prop-pass-1", roles=())
        )
        self.owner = account_owner(created.account.account_id)
        token = self.loop.run_until_complete(self.container.credentials.create_service_token(f"prop-{run}"))
        self.caller: ServiceCaller = self.loop.run_until_complete(
            self.container.credentials.authenticate_service(token.token)
        )
        self.model = {b: Decimal(0) for b in USER_BUCKETS}
        self.house = {
            Bucket.AVAILABLE: self.read_house(Bucket.AVAILABLE),
            Bucket.BONUS: self.read_house(Bucket.BONUS),
        }
        self.applied: dict[str, tuple[Any, ...]] = {}
        self.responses: dict[str, Any] = {}
        self.sent: dict[str, tuple[ExtRequestType, dict[str, str]]] = {}
        self.top_up(Decimal(1000), Decimal(50))

    def read_house(self, bucket: str) -> Decimal:
        async def read() -> Decimal:
            async with self.container.uow() as uow:
                return await uow.ledger.balance(HOUSE, USDT, bucket)

        return self.loop.run_until_complete(read())

    def submit(self, kind: ExtRequestType, body: dict[str, str]) -> Any:
        async def go() -> Any:
            wallet = self.container.wallet
            apply = {"create": wallet.create, "cancel": wallet.cancel, "settlement": wallet.settle}[
                kind.value
            ]
            return await apply(self.caller, body, RequestMeta())

        return self.loop.run_until_complete(go())

    def base(self, ext_id: str) -> dict[str, str]:
        return {"extRequestId": ext_id, "username": self.username, "currency": "USDT"}

    def expect(
        self,
        ext_id: str,
        signature: tuple[Any, ...],
        kind: ExtRequestType,
        body: dict[str, str],
        refusal: type[Exception] | None,
        effects: dict[tuple[str, str], Decimal],
    ) -> None:
        """Send once; the model says whether it replays, conflicts, is refused or applies ``effects``."""
        if ext_id in self.applied:
            if self.applied[ext_id] == signature:
                assert self.submit(kind, body) == self.responses[ext_id]
            else:
                with pytest.raises(ExtRequestConflict):
                    self.submit(kind, body)
            return
        if refusal is not None:
            with pytest.raises(refusal):
                self.submit(kind, body)
            return
        self.responses[ext_id] = self.submit(kind, body)
        self.applied[ext_id] = signature
        self.sent[ext_id] = (kind, body)
        for (who, bucket), delta in effects.items():
            (self.model if who == "user" else self.house)[bucket] += delta

    @rule(amount=AMOUNTS, bonus=BONUS)
    def top_up(self, amount: Decimal, bonus: Decimal) -> None:
        async def go() -> None:
            async with self.container.uow() as uow:
                await uow.ledger.apply(
                    move("deposit", USDT, amount, (EXTERNAL, "available"), (self.owner, "available"))
                )
                if bonus:
                    await uow.ledger.apply(
                        move("bonus", USDT, bonus, (HOUSE, "bonus"), (self.owner, "bonus"))
                    )
                await uow.commit()

        self.loop.run_until_complete(go())
        self.model[Bucket.AVAILABLE] += amount
        self.model[Bucket.BONUS] += bonus
        self.house[Bucket.BONUS] -= bonus

    def share(self, bucket: str, percent: int) -> Decimal:
        """``percent`` of the bucket's balance in whole cents: at least one cent, but no bonus leg
        on an empty bonus bucket (an over-release is already tried on the main leg)."""
        if percent == 0 or (bucket in (Bucket.BONUS, Bucket.BONUS_STAKE) and self.model[bucket] == 0):
            return Decimal(0)
        return max(Decimal("0.01"), (self.model[bucket] * percent / 100).quantize(Decimal("0.01")))

    @rule(ext_id=IDS, share=SHARES, bonus_share=BONUS_SHARES)
    def create(self, ext_id: str, share: int, bonus_share: int) -> None:
        amount, bonus = self.share(Bucket.AVAILABLE, share), self.share(Bucket.BONUS, bonus_share)
        short = amount > self.model[Bucket.AVAILABLE] or bonus > self.model[Bucket.BONUS]
        self.expect(
            ext_id,
            ("create", amount, bonus),
            ExtRequestType.CREATE,
            {**self.base(ext_id), "amount": str(amount), "bonusAmount": str(bonus)},
            InsufficientFunds if short else None,
            {
                ("user", Bucket.AVAILABLE): -amount,
                ("user", Bucket.STAKE): amount,
                ("user", Bucket.BONUS): -bonus,
                ("user", Bucket.BONUS_STAKE): bonus,
            },
        )

    @rule(ext_id=IDS, share=SHARES, bonus_share=BONUS_SHARES)
    def cancel(self, ext_id: str, share: int, bonus_share: int) -> None:
        amount, bonus = self.share(Bucket.STAKE, share), self.share(Bucket.BONUS_STAKE, bonus_share)
        over = amount > self.model[Bucket.STAKE] or bonus > self.model[Bucket.BONUS_STAKE]
        self.expect(
            ext_id,
            ("cancel", amount, bonus),
            ExtRequestType.CANCEL,
            {**self.base(ext_id), "amount": str(amount), "bonusAmount": str(bonus)},
            OverRelease if over else None,
            {
                ("user", Bucket.AVAILABLE): amount,
                ("user", Bucket.STAKE): -amount,
                ("user", Bucket.BONUS): bonus,
                ("user", Bucket.BONUS_STAKE): -bonus,
            },
        )

    @rule(
        ext_id=IDS, share=SHARES, pnl_share=PNL_SHARES, bonus_share=BONUS_SHARES, bonus_pnl_share=PNL_SHARES
    )
    def settle(self, ext_id: str, share: int, pnl_share: int, bonus_share: int, bonus_pnl_share: int) -> None:
        total, bonus = self.share(Bucket.STAKE, share), self.share(Bucket.BONUS_STAKE, bonus_share)
        # Profit or loss relative to the stake: a loss of more than 100 % is a negative settlement.
        pnl = (total * pnl_share / 100).quantize(Decimal("0.01"))
        bonus_pnl = (bonus * bonus_pnl_share / 100).quantize(Decimal("0.01"))
        body = {
            **self.base(ext_id),
            "totalOrderAmount": str(total),
            "pnlAmount": str(pnl),
            "totalOrderBonusAmount": str(bonus),
            "pnlBonusAmount": str(bonus_pnl),
        }
        if total + pnl < 0 or bonus + bonus_pnl < 0:
            # Refused on its face, before the id is even looked at.
            with pytest.raises(NegativeSettlement):
                self.submit(ExtRequestType.SETTLEMENT, body)
            return
        over = total > self.model[Bucket.STAKE] or bonus > self.model[Bucket.BONUS_STAKE]
        self.expect(
            ext_id,
            ("settlement", total, pnl, bonus, bonus_pnl),
            ExtRequestType.SETTLEMENT,
            body,
            OverRelease if over else None,
            {
                ("user", Bucket.STAKE): -total,
                ("user", Bucket.AVAILABLE): total + pnl,
                ("house", Bucket.AVAILABLE): -pnl,
                ("user", Bucket.BONUS_STAKE): -bonus,
                ("user", Bucket.BONUS): bonus + bonus_pnl,
                ("house", Bucket.BONUS): -bonus_pnl,
            },
        )

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        ext_id = data.draw(st.sampled_from(sorted(self.sent)))
        kind, body = self.sent[ext_id]
        assert self.submit(kind, body) == self.responses[ext_id]

    @invariant()
    def balances_follow_the_model(self) -> None:
        async def read() -> dict[str, Decimal]:
            async with self.container.uow() as uow:
                return {b: await uow.ledger.balance(self.owner, USDT, b) for b in USER_BUCKETS}

        assert self.loop.run_until_complete(read()) == self.model
        assert all(v >= 0 for v in self.model.values())
        assert self.read_house(Bucket.AVAILABLE) == self.house[Bucket.AVAILABLE]
        assert self.read_house(Bucket.BONUS) == self.house[Bucket.BONUS]

    def teardown(self) -> None:
        async def keys() -> dict[str, int]:
            async with self.container.engine.connect() as conn:
                rows = await conn.exec_driver_sql(
                    "SELECT business_key, count(*) FROM ledger_transactions WHERE business_key LIKE $1 "
                    "GROUP BY business_key",
                    (f"ext:{self.caller.token_id}:%",),
                )
                return {r[0]: r[1] for r in rows}

        prefix = f"ext:{self.caller.token_id}:"
        assert self.loop.run_until_complete(keys()) == {prefix + i: 1 for i in self.applied}
        report = self.loop.run_until_complete(self.container.ledger.check())
        assert report.clean, report


def test_wallet_state_machine(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    container = build(make_settings(), db_url, hasher=FAST_HASHER)
    try:
        loop.run_until_complete(container.ledger.create_asset("USDT", "Tether", 8, "Crypto"))
        WalletMachine.loop = loop
        WalletMachine.container = container
        WalletMachine.TestCase.settings = settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        WalletMachine.TestCase().runTest()
    finally:
        loop.run_until_complete(container.aclose())
        loop.close()
