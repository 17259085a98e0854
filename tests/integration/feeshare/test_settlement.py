"""The daily run on real trades: what is collected, calculated and settled, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.feeshare import FINGERPRINT_ERROR, BillingStatus
from bourse.domain.identity import Principal
from bourse.domain.notifications import NotificationQuery
from bourse.service.context import RequestMeta
from tests.integration.feeshare.support import (
    DAY,
    D,
    execute,
    fees,
    make_merchant,
    make_world,
    member,
    next_morning,
    otc_trade,
    place,
    pool,
    records,
    rows,
)
from tests.integration.trading.support import ADMIN


async def example_day(container, clock):
    """The spec's example: merchant 1411's user buys 20 ETH at 0.05 BTC (1 BTC) from an outsider
    on an OTC market charging 0.5%: volume 1, nothing self-dealt, fee 0.005."""
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    buyer = await member(container, "m1411-buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    return world, buyer, outsider


async def test_the_spec_example_is_collected_calculated_and_settled_into_the_fee_pool(container, clock):
    await example_day(container, clock)
    fees_before = await fees(container)
    next_morning(clock)

    summary = await container.feeshare.run_day(DAY)

    assert (summary.collected, summary.calculated, summary.settled, summary.refused) == (1, 1, 1, 0)
    (r,) = await records(container)
    assert (r["company_id"], r["coin"], r["status"]) == (1411, "BTC", 3)
    assert (r["value_all"], r["value_sub"], r["fee_value"]) == (D("1"), D("0"), D("0.005"))
    assert (r["share"], r["change_rate"], r["convert_value"]) == (D("0.001"), D("0"), D("0.001"))
    assert r["fingerprint"] == "607e16132f05ebf93c53effa841f9e8e" and r["remark"] == ""
    assert await pool(container, 1411) == D("0.001")
    assert await fees(container) == fees_before - D("0.001")
    (tx,) = await rows(container, "SELECT * FROM ledger_transactions WHERE id = :id", id=r["settle_tx_id"])
    assert tx["business_key"] == f"feeshare:otc:{r['id']}" and tx["kind"] == "feeshare.otc"


async def test_running_again_settles_nothing_twice(container, clock):
    await example_day(container, clock)
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    again = await container.feeshare.run_day(DAY)
    assert (again.collected, again.calculated, again.settled, again.records, again.settled_total) == (
        0,
        0,
        0,
        1,
        1,
    )
    assert await pool(container, 1411) == D("0.001")
    txs = await rows(container, "SELECT id FROM ledger_transactions WHERE kind = 'feeshare.otc'")
    assert len(txs) == 1


async def test_two_concurrent_runs_settle_each_record_once(container, clock):
    world = await make_world(container, clock)
    for company in (1411, 1412, 1413):
        await make_merchant(container, company)
    outsider = await member(container, "outsider", None, eth="500")
    for company in (1411, 1412, 1413):
        buyer = await member(container, f"buyer-{company}", company, btc="2")
        await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)

    first, second = await asyncio.gather(container.feeshare.run_day(DAY), container.feeshare.run_day(DAY))

    assert first.collected + second.collected == 3
    assert first.calculated + second.calculated == 3
    assert first.settled + second.settled == 3
    for company in (1411, 1412, 1413):
        assert await pool(container, company) == D("0.001")
    txs = await rows(container, "SELECT business_key FROM ledger_transactions WHERE kind = 'feeshare.otc'")
    assert len(txs) == 3 and len({t["business_key"] for t in txs}) == 3


async def test_a_run_that_stops_half_way_is_finished_by_the_next_without_paying_twice(
    container, clock, monkeypatch
):
    world = await make_world(container, clock)
    outsider = await member(container, "outsider", None, eth="500")
    for company in (1411, 1412):
        await make_merchant(container, company)
        buyer = await member(container, f"buyer-{company}", company, btc="2")
        await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)

    service = container.feeshare
    real = service._settle_one
    calls = 0

    async def dies_on_the_second(record_id, actor):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("process killed")
        return await real(record_id, actor)

    monkeypatch.setattr(service, "_settle_one", dies_on_the_second)
    with pytest.raises(RuntimeError):
        await service.run_day(DAY)
    assert sorted(r["status"] for r in await records(container)) == [1, 3]
    monkeypatch.setattr(service, "_settle_one", real)

    again = await service.run_day(DAY)
    assert (again.collected, again.calculated, again.settled) == (0, 0, 1)
    assert [r["status"] for r in await records(container)] == [3, 3]
    assert await pool(container, 1411) == D("0.001") and await pool(container, 1412) == D("0.001")


async def test_stages_run_separately_pick_up_where_the_last_stopped(container, clock):
    await example_day(container, clock)
    next_morning(clock)
    assert await container.feeshare.collect(DAY) == 1
    (r,) = await records(container)
    assert (r["status"], r["fingerprint"], r["share"]) == (0, "", D(0))
    assert (r["income_divide_rate"], r["volume_divide_rate"], r["max_divide_rate"]) == (
        D("0.2"),
        D("0.0004"),
        D("0.001"),
    )
    # Terms changed after the day was collected do not apply to it.
    await container.merchants.update(ADMIN, 1411, {"incomeDivideRate": "0.5"}, RequestMeta())
    assert await container.feeshare.calculate(DAY) == 1
    assert (await records(container))[0]["share"] == D("0.001")
    summary = await container.feeshare.run_day(DAY)
    assert (summary.collected, summary.calculated, summary.settled) == (0, 0, 1)


async def test_a_tampered_record_is_not_settled_the_remark_says_so_and_staff_are_told_once(container, clock):
    await example_day(container, clock)
    next_morning(clock)
    await container.feeshare.collect(DAY)
    await container.feeshare.calculate(DAY)
    # Someone raises the fees in the database after the calculation.
    await execute(container, "UPDATE feeshare_records SET fee_value = 0.05, share = 0.01")

    summary = await container.feeshare.run_day(DAY)
    again = await container.feeshare.run_day(DAY)

    assert (summary.settled, summary.refused, again.settled, again.refused) == (0, 1, 0, 1)
    (r,) = await records(container)
    assert r["status"] == int(BillingStatus.CALCULATED) and r["settle_tx_id"] is None
    assert r["remark"] == FINGERPRINT_ERROR == "fingerprint error , stop Huisuan"
    assert await pool(container, 1411) == 0
    staff = Principal.of(ADMIN.uid, "ops", ADMIN.roles)
    notes = await container.notifications.admin_list(staff, NotificationQuery())
    mismatches = [n for n in notes if n.type == "FeeShareFingerprintMismatch"]
    assert len(mismatches) == 1
    assert mismatches[0].data["recordId"] == r["id"] and mismatches[0].data["companyId"] == 1411


async def test_a_record_put_back_is_settled_by_a_later_run_and_keeps_the_remark(container, clock):
    await example_day(container, clock)
    next_morning(clock)
    await container.feeshare.collect(DAY)
    await container.feeshare.calculate(DAY)
    await execute(container, "UPDATE feeshare_records SET value_all = 2")
    assert (await container.feeshare.run_day(DAY)).refused == 1
    await execute(container, "UPDATE feeshare_records SET value_all = 1")
    again = await container.feeshare.run_day(DAY)
    assert (again.settled, again.refused) == (1, 0)
    (r,) = await records(container)
    assert (r["status"], r["remark"]) == (3, FINGERPRINT_ERROR)
    assert await pool(container, 1411) == D("0.001")


async def test_the_cap_binds_when_income_share_exceeds_max_rate_of_the_volume(container, clock):
    world = await make_world(container, clock)
    # Half the fee would be 0.0025 BTC; the cap is 1 BTC * 0.001.
    await make_merchant(container, 1411, incomeDivideRate="0.5")
    buyer = await member(container, "buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    (r,) = await records(container)
    assert (r["fee_value"], r["share"]) == (D("0.005"), D("0.001"))


async def test_the_volume_floor_binds_when_the_fee_share_is_below_it(container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411, incomeDivideRate="0.1", volumeDivideRate="0.0009")
    buyer = await member(container, "buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    (r,) = await records(container)
    # The fee share 0.005 * 0.1 = 0.0005 is below the floor 1 * 0.0009 (under the cap 0.001).
    assert (r["fee_value"], r["share"]) == (D("0.005"), D("0.0009"))


async def test_self_dealing_between_a_merchants_own_users_is_excluded_from_sharing(container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    a = await member(container, "alice", 1411, btc="5", eth="50")
    b = await member(container, "bob", 1411, btc="5", eth="50")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, a, b, "20")  # 1 BTC between the merchant's own users
    await otc_trade(container, world, a, outsider, "20")  # 1 BTC with an outsider
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    (r,) = await records(container)
    # Fees of both sides of the self-dealt trade and of a's side of the other: 3 * 0.005.
    assert (r["value_all"], r["value_sub"], r["fee_value"]) == (D("2"), D("1"), D("0.015"))
    # min(max(0.003, 1 * 0.0004), 1 * 0.001): the cap counts only the shared BTC.
    assert r["share"] == D("0.001")


async def test_users_of_two_merchants_trading_together_count_for_both_and_neither_self_deals(
    container, clock
):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    await make_merchant(container, 1500)
    a = await member(container, "alice", 1411, btc="5")
    b = await member(container, "bob", 1500, eth="50")
    await otc_trade(container, world, a, b, "20")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    got = [
        (r["company_id"], r["value_all"], r["value_sub"], r["fee_value"]) for r in await records(container)
    ]
    assert got == [(1411, D("1"), D("0"), D("0.005")), (1500, D("1"), D("0"), D("0.005"))]


async def test_trades_outside_otc_markets_or_the_day_and_outsiders_trades_are_not_counted(container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    buyer = await member(container, "buyer", 1411, btc="5", usdt="1000")
    outsider = await member(container, "outsider", None, btc="5", eth="100")
    other = await member(container, "other", None, btc="5")
    await place(container, outsider, world.spot, "Sell", "1", "100.00")  # not an OTC market
    await place(container, buyer, world.spot, "Buy", "1", "100.00")
    await otc_trade(container, world, other, outsider, "20")  # nobody of the merchant's
    clock.current += timedelta(days=1)  # the next day
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    summary = await container.feeshare.run_day(DAY)
    assert summary.records == 0 and await records(container) == []


async def test_a_day_that_is_not_over_cannot_be_run(container, clock):
    await make_world(container, clock)
    with pytest.raises(InvalidInput):
        await container.feeshare.run_day(DAY)  # the clock is at noon of DAY
    with pytest.raises(InvalidInput):
        await container.feeshare.run_day(DAY + timedelta(days=1))


async def test_another_coin_is_converted_at_the_last_price_of_the_day(container, clock):
    world = await make_world(container, clock)
    # A merchant whose share is shown in USDT; the coin is BTC, priced by the BTC/USDT market.
    await make_merchant(container, 1411, rateSymbol="USDT")
    buyer = await member(container, "buyer", 1411, btc="2", usdt="1000")
    outsider = await member(container, "outsider", None, btc="5", eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    await place(container, outsider, world.spot, "Sell", "0.1", "25000.00")
    await place(container, buyer, world.spot, "Buy", "0.01", "25000.00")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    (r,) = await records(container)
    assert (r["share"], r["change_rate"], r["convert_value"]) == (D("0.001"), D("25000"), D("25"))


async def test_the_job_runs_yesterday_shortly_after_midnight_and_only_once(container, clock):
    await example_day(container, clock)
    next_morning(clock, minutes=1)  # too early: the day's last trades may still be committing
    assert await container.feeshare.run_due() is False
    assert await records(container) == []
    next_morning(clock, minutes=6)
    await container.feeshare.run_due()
    assert [r["status"] for r in await records(container)] == [3]
    # At 00:01 only the day before yesterday was due (nothing traded then); at 00:06 yesterday too.
    done = await rows(container, "SELECT * FROM feeshare_runs ORDER BY item_date")
    assert [(d["item_date"], d["records"], d["settled"]) for d in done] == [
        (DAY - timedelta(days=1), 0, 0),
        (DAY, 1, 1),
    ]
    await container.feeshare.run_due()
    assert await pool(container, 1411) == D("0.001")


async def test_the_job_catches_up_the_days_it_missed(container, clock):
    await example_day(container, clock)
    next_morning(clock, minutes=10)
    await container.feeshare.run_due()  # DAY
    clock.current += timedelta(days=3)  # the process was down for three days
    await container.feeshare.run_due()
    done = [d["item_date"] for d in await rows(container, "SELECT item_date FROM feeshare_runs ORDER BY 1")]
    assert done == [DAY + timedelta(days=i) for i in range(4)]


async def test_share_below_the_coins_smallest_unit_settles_without_moving_money(container, clock):
    world = await make_world(container, clock)
    await make_merchant(container, 1411, incomeDivideRate="0", volumeDivideRate="0", maxDivideRate="0")
    buyer = await member(container, "buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)
    await container.feeshare.run_day(DAY)
    (r,) = await records(container)
    assert (r["status"], r["share"], r["settle_tx_id"]) == (3, D(0), None)
    assert await pool(container, 1411) == Decimal(0)
