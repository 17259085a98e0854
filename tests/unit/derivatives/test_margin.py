"""Cross margin: equity, level, margin calls once per crossing, stop-out order, liquidation price."""

from dataclasses import replace
from datetime import timedelta

from bourse.domain.margin import (
    Collateral,
    PositionMark,
    Seizable,
    isolated_level,
    liquidation_price_cross,
    maintenance_margin,
    margin_call_due,
    margin_state,
    seize,
    stop_out_due,
    stop_out_order,
)
from bourse.domain.orders import Side
from bourse.domain.positions import MarginType, PositionSide
from bourse.domain.values import AssetId
from tests.unit.derivatives.support import NOW, SPEC, USDT, D, fill, position

ETH_SPEC = replace(SPEC, market_id="ETHUSD", lot_size=D("0.1"))


def usdt(amount: str) -> Collateral:
    return Collateral(USDT, D(amount), D(1), D(1))


def test_margin_state_counts_selected_collateral_with_ratios_and_cross_pnl():
    btc = Collateral(AssetId("BTC"), D("0.1"), D("50000"), D("0.9"))
    # cross long 3 lots at 50000, margin 150, mark 49000: upnl -30
    marks: list[PositionMark] = [(position(), SPEC, D("49000"), D(1))]
    state = margin_state([usdt("1000"), btc], marks)
    # equity 1000 * 1 * 1 + 0.1 * 50000 * 0.9 - 30 = 1000 + 4500 - 30 = 5470; used 150
    assert (state.equity, state.used) == (D("5470"), D("150.00"))
    # 5470 / 150 = 36.4666.. rounded DOWN to 18 decimals
    assert state.level == D("36.466666666666666666")


def test_isolated_margin_backs_only_its_position():
    iso = position(position_id="p9", margin="100.00", margin_type=MarginType.ISOLATED)
    marks: list[PositionMark] = [(position(), SPEC, D("49000"), D(1)), (iso, SPEC, D("49000"), D(1))]
    state = margin_state([usdt("1000")], marks)
    # the isolated 100 of margin leaves the collateral and its -30 upnl does not count:
    # equity (1000 - 100) - 30 = 870, used 150 -> 5.8
    assert (state.equity, state.used, state.level) == (D("870"), D("150.00"), D("5.8"))
    # its own level: (100 + (49000 - 50000) * 0.03) / 100 = 70 / 100
    assert isolated_level(iso, SPEC, D("49000")) == D("0.7")


def test_no_cross_position_no_level():
    assert margin_state([usdt("1000")], []).level is None
    assert not stop_out_due(None, D("0.5"))


def test_margin_call_once_per_crossing():
    levels = [D(2), D("0.9"), D("0.8"), D(1), D("0.95"), None, D("0.5"), D("0.4")]
    armed, calls = True, []
    for level in levels:
        notify, armed = margin_call_due(level, D(1), armed)
        calls.append(notify)
    # below 1 at 0.9 (call), still below at 0.8 (no), back at 1 (re-armed: 1 is not below 1),
    # 0.95 (call), no level (re-armed), 0.5 (call), 0.4 (no)
    assert calls == [False, True, False, False, True, False, True, False]


def test_stop_out_order_biggest_loss_first_ties_oldest_first():
    a = position(position_id="a")
    b = position(position_id="b", opened_at=NOW + timedelta(minutes=2))
    c = position(position_id="c")
    d = position(position_id="d", opened_at=NOW + timedelta(minutes=1))
    gone = replace(position(position_id="e"), lots=D(0), closed_at=NOW)
    order = stop_out_order([(a, D(-50)), (b, D(-200)), (c, D(30)), (d, D(-200)), (gone, D(-999))])
    assert order == ["d", "b", "a", "c"]


def test_stop_out_closes_one_at_a_time_until_the_level_recovers():
    # available 100, collateral 400 (incl. the 300 of margin); BTC long 3 lots margin 150, ETH long 10 lots
    # (1 ETH) entry 3000 margin 150 (leverage 20). Marks: BTC 44000 -> upnl -180; ETH 2990 -> upnl -10.
    btc = position(position_id="btc")
    eth = position(
        position_id="eth", market_id="ETHUSD", lots="10", entry="3000", margin="150.00", leverage=20
    )
    marks = {"BTCUSD": D("44000"), "ETHUSD": D("2990")}
    specs = {"BTCUSD": SPEC, "ETHUSD": ETH_SPEC}
    open_ = {"btc": btc, "eth": eth}
    available = D(100)

    def state():
        rows = [(p, specs[p.market_id], marks[p.market_id], D(1)) for p in open_.values()]
        return margin_state([usdt(str(available + sum(p.margin for p in open_.values())))], rows)

    # equity 400 - 180 - 10 = 210, used 300 -> 0.7, below the stop-out level 0.8
    assert state().level == D("0.7")
    stop_level = D("0.8")
    closed = []
    while stop_out_due(state().level, stop_level):
        pnl = [(p, p.unrealized_pnl(marks[p.market_id], specs[p.market_id])) for p in open_.values()]
        first = stop_out_order(pnl)[0]
        p = open_.pop(first)
        r = fill(
            [p],
            p.side.closing_side,
            str(p.lots),
            str(marks[p.market_id]),
            close_position_id=p.position_id,
            available=str(available),
        )
        available += r.margin_released + r.realized_pnl + r.deficit - r.fee
        closed.append(first)
    # BTC (-180) goes first: available 100 + 150 - 180 = 70; left ETH: equity 70 + 150 - 10 = 210, used 150 -> 1.4
    assert closed == ["btc"]
    assert available == D("70.00") and state().level == D("1.4")


def test_liquidation_price_cross_holds_other_marks():
    # collateral 300, BTC long 3 lots margin 150, mark 49000: equity 300 - 30 = 270, used 150, stop-out 0.5:
    # 270 + 0.03 * (P - 49000) = 75 -> P = 49000 - 195 / 0.03 = 42500
    marks: list[PositionMark] = [(position(), SPEC, D("49000"), D(1))]
    assert liquidation_price_cross([usdt("300")], marks, "BTCUSD", D("0.5")) == D("42500.0")
    # at that price the level is exactly the stop-out level
    at = margin_state([usdt("300")], [(position(), SPEC, D("42500"), D(1))])
    assert at.level == D("0.5")

    # short 3 lots at 50000, mark 51000: equity 270; 270 - 0.03 * (P - 51000) = 75 -> P = 51000 + 6500
    short: list[PositionMark] = [(position(PositionSide.SHORT), SPEC, D("51000"), D(1))]
    assert liquidation_price_cross([usdt("300")], short, "BTCUSD", D("0.5")) == D("57500.0")

    # plus an ETH long (1 ETH, entry 3000, margin 300) held at its mark 3100 (upnl +100): collateral 600,
    # equity 600 - 30 + 100 = 670, used 450; 670 + 0.03 * (P - 49000) = 225 -> P = 49000 - 445 / 0.03
    # = 49000 - 14833.333.. = 34166.666.. -> half-even 34166.7
    eth = position(position_id="eth", market_id="ETHUSD", lots="10", entry="3000", margin="300.00")
    both: list[PositionMark] = [(position(), SPEC, D("49000"), D(1)), (eth, ETH_SPEC, D("3100"), D(1))]
    assert liquidation_price_cross([usdt("600")], both, "BTCUSD", D("0.5")) == D("34166.7")


def test_liquidation_price_cross_none_when_hedged_or_never():
    hedged: list[PositionMark] = [
        (position(position_id="l"), SPEC, D("49000"), D(1)),
        (position(PositionSide.SHORT, position_id="s"), SPEC, D("49000"), D(1)),
    ]
    assert liquidation_price_cross([usdt("300")], hedged, "BTCUSD", D("0.5")) is None
    # a long backed by far more than its notional never reaches the level: P would be below 0
    rich: list[PositionMark] = [(position(), SPEC, D("50000"), D(1))]
    assert liquidation_price_cross([usdt("100000")], rich, "BTCUSD", D("0.5")) is None
    assert liquidation_price_cross([usdt("300")], rich, "ETHUSD", D("0.5")) is None


def test_a_fill_result_feeds_the_margin_bucket():
    # what a fill holds is what the margin state counts as used
    r = fill([], Side.BUY, "3", "50000")
    assert r.opened is not None
    state = margin_state([usdt("1000")], [(r.opened, SPEC, D("50000"), D(1))])
    assert state.used == r.margin_held == D("150.00")


def test_seize_takes_the_highest_ratio_first_rounded_up_and_capped():
    btc = Seizable(AssetId("BTC"), D("10"), D(100), D("0.9"), 8)
    eth = Seizable(AssetId("ETH"), D("1"), D(3), D("0.9"), 8)  # same ratio: BTC first by id
    sol = Seizable(AssetId("SOL"), D("5"), D(7), D("0.95"), 2)
    # 40.005 short: SOL first (ratio 0.95), all 5 of it (35); then 5.005 / 100 = 0.05005 BTC
    taken, rest = seize(D("40.005"), [btc, eth, sol], 6)
    assert [(t.asset_id, t.amount, t.value) for t in taken] == [
        ("SOL", D("5"), D(35)),
        ("BTC", D("0.05005000"), D("5.005")),
    ]
    assert rest == 0
    # rounded UP to the asset's scale: 1 / 3 ETH is 0.33333334
    taken, rest = seize(D(1), [Seizable(AssetId("ETH"), D(1), D(3), D(1), 8)], 6)
    assert [(t.amount, t.value) for t in taken] == [(D("0.33333334"), D("1.00000002"))]
    assert rest == 0
    # not enough: everything available goes, the rest (rounded up to the settlement scale) stays
    taken, rest = seize(D("10"), [Seizable(AssetId("ETH"), D("1"), D("3.0000001"), D(1), 8)], 6)
    assert [t.amount for t in taken] == [D(1)]
    assert rest == D("7.000000")  # 6.9999999 rounded up
    assert seize(D(5), [], 6) == ([], D(5))


def test_maintenance_margin_is_margin_times_the_stop_out_level_rounded_up():
    # 150.00 * 0.5 = 75; the equity below which the position (Isolated) or its share of the
    # account (Cross) is stopped out
    assert maintenance_margin(position(), SPEC, D("0.5")) == D("75")
    # 150.01 * 0.33 = 49.5033 -> 49.51 at the settlement scale (rounded up, towards safety)
    odd = position(margin="150.01")
    assert maintenance_margin(odd, SPEC, D("0.33")) == D("49.51")
    # the isolated level reaches the stop-out exactly when equity (margin + upnl) = maintenance:
    # margin 150, upnl -75 at mark 47500 (3 lots * 0.01 * -2500)
    iso = position(margin_type=MarginType.ISOLATED)
    assert isolated_level(iso, SPEC, D("47500")) == D("0.5")
