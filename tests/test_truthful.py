"""Truthful mechanisms: vickrey, vcg, mcafee, muda.

Closed-form cases are worked by hand in the comments; hypothesis checks the
properties each mechanism promises (individual rationality, energy balance,
payments within bounds, truthful reporting dominant on sampled deviations),
and VCG's incremental payments are checked against one HiGHS LP re-solve per
participant.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transactive as te
from transactive.errors import InputError
from transactive.markets.muda import walrasian_price
from transactive.markets.truthful import sorted_curves, welfare_optimum
from transactive.markets.vcg import vcg_payments

TOL = 1e-9


def batch(sides, prices, quantities, participants=None, times=None):
    n = len(sides)
    return te.OrderBatch(
        id=np.arange(n), participant=participants if participants is not None else np.arange(n),
        side=sides, price=prices, quantity=quantities, time=times,
    )


def by_participant(c, values):
    """Each participant's payment and its true gains from trade, for true unit
    prices ``values`` per order (steps of one participant sorted by the
    mechanism, so a prefix of its true curve)."""
    owner = np.unique(c.orders.participant, return_inverse=True)[1]
    pay = np.bincount(owner, weights=c.payment)
    gain = np.bincount(owner, weights=c.orders.side * c.accepted * values)
    return pay, gain - pay


# --------------------------------------------------------------------- vickrey
def test_vickrey_single_lot_second_price_and_reserve():
    # bids 10, 7, 8; the seller's reserve is 5: the 10 wins and pays the second bid, 8
    ob = batch(["buy", "buy", "buy", "sell"], [10.0, 7.0, 8.0, 5.0], [1, 1, 1, 1])
    c = te.clear(ob, "vickrey")
    assert c.accepted.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert c.payment.tolist() == [8.0, 0.0, 0.0, -8.0]
    assert c.operator_surplus == 0.0
    # a reserve of 9 beats the second bid: the winner pays 9
    assert te.clear(ob, "vickrey", reserve_price=9.0).payment[0] == 9.0
    # a reserve of 11 beats every bid: nothing sells
    none = te.clear(ob, "vickrey", reserve_price=11.0)
    assert none.volume == 0.0
    assert none.info["units_sold"] == 0
    # the operator sells (no sell order): the same prices, the revenue is the operator's
    op = te.clear(ob.take([0, 1, 2]), "vickrey", reserve_price=5.0)
    assert op.payment.tolist() == [8.0, 0.0, 0.0]
    assert op.operator_surplus == 8.0
    assert op.info["seller"] == "operator"


def test_vickrey_multi_unit_uniform_price_is_k_plus_first_bid():
    # 4 units; unit bids 9, 9, 9 (one bidder, 3 units) and 6, 6 (2 units), 3: the
    # 4 highest are 9, 9, 9, 6; every unit pays the 5th highest bid, 6
    ob = batch(["buy", "buy", "buy", "sell"], [9.0, 6.0, 3.0, 1.0], [3, 2, 1, 4])
    c = te.clear(ob, "vickrey")
    assert c.accepted.tolist() == [3.0, 1.0, 0.0, 4.0]
    assert c.clearing_price == 6.0
    assert c.payment.tolist() == [18.0, 6.0, 0.0, -24.0]
    # only 3 unit bids reach a reserve of 7: 3 units sell at the reserve
    r = te.clear(ob, "vickrey", reserve_price=7.0)
    assert r.accepted.tolist() == [3.0, 0.0, 0.0, 3.0]
    assert r.clearing_price == 7.0


def test_vickrey_ties_go_to_the_earlier_bid():
    ob = batch(["buy", "buy", "sell"], [8.0, 8.0, 0.0], [1, 1, 1], times=[5.0, 2.0, 0.0])
    c = te.clear(ob, "vickrey")
    assert c.accepted.tolist() == [0.0, 1.0, 1.0]
    assert c.clearing_price == 8.0


@pytest.mark.parametrize(
    ("orders", "options", "field"),
    [
        ((["buy", "sell", "sell"], [5.0, 1.0, 2.0], [1, 1, 1]), {}, "side"),
        ((["buy", "sell"], [5.0, 1.0], [1.5, 1]), {}, "quantity"),
        ((["buy", "buy"], [5.0, 1.0], [1, 1]), {}, "reserve_price"),
        ((["buy", "sell"], [5.0, 1.0], [1, 2]), {"units": 2}, "units"),
        ((["buy", "buy"], [5.0, 1.0], [1, 1]), {"reserve_price": 1.0, "units": 0}, "units"),
        ((["buy", "sell"], [5.0, 1.0], [1, 1]), {"reserve_price": float("nan")}, "reserve_price"),
    ],
)
def test_vickrey_bad_input(orders, options, field):
    with pytest.raises(InputError) as info:
        te.clear(batch(*orders), "vickrey", **options)
    assert info.value.field == field


@settings(max_examples=150, deadline=None)
@given(
    bids=st.lists(st.integers(0, 20), min_size=1, max_size=8),
    k=st.integers(1, 4),
    reserve=st.integers(0, 10),
    who=st.integers(0, 7),
    lie=st.integers(0, 25),
)
def test_vickrey_properties_and_truthful_dominance(bids, k, reserve, who, lie):
    n = len(bids)
    ob = batch(["buy"] * n + ["sell"], [*map(float, bids), float(reserve)], [1] * n + [k])
    values = ob.price
    c = te.clear(ob, "vickrey")
    buy = ob.is_buy
    assert c.accepted[buy].sum() == c.accepted[~buy].sum() <= k  # energy balance
    won = c.accepted > 0
    assert np.all(c.price[won & buy] <= ob.price[won & buy])  # nobody pays above its bid
    assert np.all(c.price[won] >= reserve)
    assert abs(c.operator_surplus) < TOL  # budget-balanced
    _, utility = by_participant(c, values)
    assert np.all(utility >= -TOL)  # individual rationality
    # a unit-demand bidder never gains by bidding another price
    i = who % n
    lied = te.clear(ob.replace(price=np.where(np.arange(n + 1) == i, float(lie), ob.price)),
                    "vickrey")
    assert by_participant(lied, values)[1][i] <= utility[i] + TOL


# --------------------------------------------------------------------- vcg
def vcg_example():
    # Buyers B1: 2 kWh at 10, B2: 1 kWh at 8, B3: 2 kWh at 4;
    # sellers S1: 2 kWh at 2, S2: 2 kWh at 6.
    return batch([1, 1, 1, -1, -1], [10.0, 8.0, 4.0, 2.0, 6.0], [2.0, 1.0, 2.0, 2.0, 2.0],
                  participants=["B1", "B2", "B3", "S1", "S2"])


def test_vcg_three_buyers_two_sellers_by_hand():
    # Efficient trade: units 0-2 (10 vs 2), unit 2-3 (8 vs 6); the 4 bid loses to
    # the 6 ask, so Q* = 3: B1 2, B2 1, S1 2, S2 1, W = 20 + 8 - 4 - 6 = 18.
    # Without B1: 8 and 4 buy from S1 at 2, W = 8 + 4 - 4 = 8   -> B1 pays 8 - (18 - 20) = 10
    # Without B2: 10 x 2 buys from S1,      W = 20 - 4 = 16     -> B2 pays 16 - (18 - 8) = 6
    # B3 trades nothing                                          -> pays 0
    # Without S1: 10 x 2 buys from S2 at 6, W = 20 - 12 = 8     -> S1 gets 18 + 4 - 8 = 14
    # Without S2: 10 x 2 buys from S1,      W = 20 - 4 = 16     -> S2 gets 18 + 6 - 16 = 8
    # Buyers pay 16, sellers get 22: the operator's deficit is 6.
    c = te.clear(vcg_example(), "vcg")
    assert c.accepted.tolist() == [2.0, 1.0, 0.0, 2.0, 1.0]
    assert c.welfare == pytest.approx(18.0)
    assert c.payment.tolist() == pytest.approx([10.0, 6.0, 0.0, -14.0, -8.0])
    assert c.price[:2].tolist() == pytest.approx([5.0, 6.0])
    assert c.info["operator_deficit"] == pytest.approx(6.0)
    assert c.operator_surplus == pytest.approx(-6.0)


def test_vcg_resolve_path_with_highs_matches_by_hand():
    c = te.clear(vcg_example(), "vcg", welfare_solver=welfare_optimum)
    assert c.info["method"] == "resolve"
    assert c.payment.tolist() == pytest.approx([10.0, 6.0, 0.0, -14.0, -8.0])


def random_step_market(rng, n_participants, steps):
    n = n_participants * steps
    owner = rng.integers(0, n_participants, n)
    side = np.where(owner < n_participants // 2, 1, -1)
    return batch(side, rng.uniform(0.0, 1.0, n), rng.uniform(0.1, 3.0, n),
                 participants=[f"p{o}" for o in owner])


@pytest.mark.parametrize("seed", range(6))
def test_vcg_incremental_equals_one_lp_resolve_per_participant(seed):
    rng = np.random.default_rng(seed)
    ob = random_step_market(rng, int(rng.integers(2, 30)), int(rng.integers(1, 5)))
    fast = te.clear(ob, "vcg")
    slow = te.clear(ob, "vcg", welfare_solver=welfare_optimum)
    assert fast.accepted == pytest.approx(slow.accepted, abs=1e-9)
    assert fast.payment == pytest.approx(slow.payment, abs=1e-9)
    # the allocation is the welfare optimum and the uniform auction's volume
    assert fast.welfare == pytest.approx(welfare_optimum(ob)[1], abs=1e-9)
    assert fast.volume == pytest.approx(te.clear(ob, "uniform").volume, abs=1e-9)


def test_vcg_payments_helper_doc_case():
    ob = batch([1, 1, -1, -1], [3.0, 1.5, 1.0, 2.0], [1.0] * 4, participants=list("abcd"))
    curves = sorted_curves(ob)
    assert vcg_payments(curves, curves.quantity).tolist() == [1.5, 0.0, -2.0, 0.0]


def true_value(prices, quantities, side, accepted_total):
    """A participant's true gains for a total traded quantity: the best part
    of its true step curve (highest values first for a buyer, cheapest costs
    first for a seller)."""
    order = np.argsort(-side * prices, kind="stable")
    p, q = prices[order], quantities[order]
    start = np.concatenate([[0.0], np.cumsum(q)[:-1]])
    return side * float(np.dot(p, np.clip(accepted_total - start, 0.0, q)))


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    factors=st.lists(st.floats(0.0, 2.0), min_size=4, max_size=4),
    ties=st.booleans(),
)
def test_vcg_properties_and_truthful_dominance(seed, factors, ties):
    rng = np.random.default_rng(seed)
    ob = random_step_market(rng, int(rng.integers(2, 9)), int(rng.integers(1, 4)))
    if ties:  # coarse prices: many equal bids and asks
        ob = ob.replace(price=np.round(ob.price, 1))
    c = te.clear(ob, "vcg")
    buy = ob.is_buy
    assert c.accepted[buy].sum() == pytest.approx(c.accepted[~buy].sum(), abs=1e-9)
    assert np.all(c.accepted <= ob.quantity + TOL)
    owner = np.unique(ob.participant, return_inverse=True)[1]
    pay, utility = by_participant(c, ob.price)
    assert np.all(utility >= -TOL)  # IR: buyers pay at most their value, sellers get their cost
    is_buyer = np.bincount(owner, weights=buy.astype(float)) > 0
    assert np.all(pay[is_buyer] >= -TOL)  # buyers never get paid
    assert np.all(pay[~is_buyer] <= TOL)  # sellers never pay
    assert c.operator_surplus <= TOL  # VCG never runs a surplus in a double auction
    # participant 0 misreports every step's price by a factor
    i = 0
    mine = owner == i
    lie = ob.price.copy()
    lie[mine] = ob.price[mine] * np.resize(np.array(factors), int(mine.sum()))
    lied = te.clear(ob.replace(price=lie), "vcg")
    side = 1 if is_buyer[i] else -1
    u_lie = true_value(ob.price[mine], ob.quantity[mine], side, lied.accepted[mine].sum()) - \
        lied.payment[mine].sum()
    assert u_lie <= utility[i] + 1e-9


def test_vcg_refuses_a_participant_on_both_sides():
    ob = batch([1, -1], [2.0, 1.0], [1.0, 1.0], participants=["a", "a"])
    with pytest.raises(InputError, match="both buys and sells") as info:
        te.clear(ob, "vcg")
    assert info.value.field == "participant"
    assert info.value.row == 1
    with pytest.raises(InputError) as info:
        te.clear(vcg_example(), "vcg", welfare_solver="dcopf")
    assert info.value.field == "welfare_solver"


def test_vcg_one_sided_and_empty_markets_trade_nothing():
    only_buys = batch([1, 1], [2.0, 1.0], [1.0, 1.0])
    c = te.clear(only_buys, "vcg")
    assert c.volume == 0.0
    assert c.payment.tolist() == [0.0, 0.0]
    crossed_out = batch([1, -1], [1.0, 2.0], [1.0, 1.0])
    assert te.clear(crossed_out, "vcg").volume == 0.0


# --------------------------------------------------------------------- mcafee
def test_mcafee_single_price_branch():
    # bids 9, 8, 4; asks 2, 3, 6: k = 2 (8 >= 3, 4 < 6); p0 = (4 + 6) / 2 = 5 lies in
    # [s_2, b_2] = [3, 8], so both efficient trades happen at 5
    ob = batch([1, 1, 1, -1, -1, -1], [9.0, 8.0, 4.0, 2.0, 3.0, 6.0], [1] * 6)
    c = te.clear(ob, "mcafee")
    assert c.info["branch"] == "single_price"
    assert c.info["efficient_units"] == 2
    assert c.accepted.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert c.payment.tolist() == [5.0, 5.0, 0.0, -5.0, -5.0, 0.0]
    assert c.operator_surplus == 0.0


def test_mcafee_trade_reduction_branch():
    # bids 9, 8, 7.5; asks 2, 3, 10: k = 2; p0 = (7.5 + 10) / 2 = 8.75 > b_2 = 8, so the
    # least valuable trade (8 with 3) is dropped: the 9 pays b_2 = 8, the 2 gets s_2 = 3
    ob = batch([1, 1, 1, -1, -1, -1], [9.0, 8.0, 7.5, 2.0, 3.0, 10.0], [1] * 6)
    c = te.clear(ob, "mcafee")
    assert c.info["branch"] == "trade_reduction"
    assert c.accepted.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert c.payment.tolist() == [8.0, 0.0, 0.0, -3.0, 0.0, 0.0]
    assert c.operator_surplus == 5.0
    # no (k+1)-th bid: p0 is undefined and the reduction applies
    short = te.clear(batch([1, 1, -1, -1], [9.0, 8.0, 2.0, 3.0], [1] * 4), "mcafee")
    assert short.info["branch"] == "trade_reduction"
    assert short.payment.tolist() == [8.0, 0.0, -3.0, 0.0]
    # one efficient trade and no (k+1)-th ask: it is lost
    lost = te.clear(batch([1, 1, -1], [9.0, 1.0, 2.0], [1] * 3), "mcafee")
    assert lost.volume == 0.0
    assert lost.info["efficient_units"] == 1


def test_mcafee_single_price_on_the_edges_of_the_interval():
    # McAfee (1992) keeps all k trades when s_k <= p0 <= b_k, a closed interval.
    # p0 == s_k: bids 10, 6, 4; asks 2, 5, 6: k = 2 (6 >= 5, 4 < 6), p0 = (4 + 6) / 2 = 5
    at_ask = te.clear(batch([1, 1, 1, -1, -1, -1], [10.0, 6.0, 4.0, 2.0, 5.0, 6.0], [1] * 6),
                      "mcafee")
    assert (at_ask.info["p0"], at_ask.info["branch"]) == (5.0, "single_price")
    assert at_ask.accepted.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert at_ask.payment.tolist() == [5.0, 5.0, 0.0, -5.0, -5.0, 0.0]
    # p0 == b_k: bids 10, 7, 4; asks 2, 3, 10: k = 2 (7 >= 3, 4 < 10), p0 = (4 + 10) / 2 = 7
    at_bid = te.clear(batch([1, 1, 1, -1, -1, -1], [10.0, 7.0, 4.0, 2.0, 3.0, 10.0], [1] * 6),
                      "mcafee")
    assert (at_bid.info["p0"], at_bid.info["branch"]) == (7.0, "single_price")
    assert at_bid.accepted.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert at_bid.payment.tolist() == [7.0, 7.0, 0.0, -7.0, -7.0, 0.0]
    # one step past either edge reduces: p0 = (4 + 6.5) / 2 = 5.25 > b_2 = 5.2
    past = te.clear(batch([1, 1, 1, -1, -1, -1], [10.0, 5.2, 4.0, 2.0, 5.0, 6.5], [1] * 6),
                    "mcafee")
    assert past.info["branch"] == "trade_reduction"
    assert past.payment.tolist() == [5.2, 0.0, 0.0, -5.0, 0.0, 0.0]  # b_2 and s_2


def mcafee_reference(bids, asks):
    """Trades and (buyer, seller) unit prices by McAfee's rule, from sorted unit lists."""
    b, s = sorted(bids, reverse=True), sorted(asks)
    k = 0
    while k < min(len(b), len(s)) and b[k] >= s[k]:
        k += 1
    if k == 0:
        return 0, None, None
    if k < min(len(b), len(s)):
        p0 = (b[k] + s[k]) / 2
        if s[k - 1] <= p0 <= b[k - 1]:
            return k, p0, p0
    return k - 1, b[k - 1], s[k - 1]


def test_mcafee_no_trade_and_bad_input():
    c = te.clear(batch([1, -1], [1.0, 2.0], [1, 1]), "mcafee")
    assert c.info["branch"] == "no_trade"
    assert c.volume == 0.0
    with pytest.raises(InputError) as info:
        te.clear(batch([1, -1], [3.0, 2.0], [0.5, 1]), "mcafee")
    assert info.value.field == "quantity"
    assert info.value.row == 0
    with pytest.raises(InputError, match="both buys and sells"):
        te.clear(batch([1, -1], [3.0, 2.0], [1, 1], participants=["a", "a"]), "mcafee")


@settings(max_examples=200, deadline=None)
@given(
    bids=st.lists(st.integers(0, 12), min_size=1, max_size=7),
    asks=st.lists(st.integers(0, 12), min_size=1, max_size=7),
    who=st.integers(0, 13),
    lie=st.integers(0, 14),
)
def test_mcafee_properties_and_truthful_dominance(bids, asks, who, lie):
    nb, ns = len(bids), len(asks)
    ob = batch([1] * nb + [-1] * ns, [*map(float, bids), *map(float, asks)], [1] * (nb + ns))
    c = te.clear(ob, "mcafee")
    buy = ob.is_buy
    assert c.accepted[buy].sum() == c.accepted[~buy].sum()
    trades, buyer_price, seller_price = mcafee_reference(bids, asks)
    assert c.volume == trades
    traded = c.accepted > 0
    assert np.all(c.price[traded & buy] == buyer_price)
    assert np.all(c.price[traded & ~buy] == seller_price)
    assert c.operator_surplus >= -TOL  # never a deficit
    _, utility = by_participant(c, ob.price)
    assert np.all(utility >= -TOL)
    opt = welfare_optimum(ob)[1]
    assert c.welfare <= opt + TOL
    i = who % (nb + ns)
    lied = te.clear(ob.replace(price=np.where(np.arange(nb + ns) == i, float(lie), ob.price)),
                    "mcafee")
    assert by_participant(lied, ob.price)[1][i] <= utility[i] + TOL


# --------------------------------------------------------------------- muda
def test_muda_halves_trade_at_each_others_walrasian_price():
    rng = np.random.default_rng(11)
    ob = random_step_market(rng, 40, 2)
    c = te.clear(ob, "muda", rng=np.random.default_rng(5))
    left = c.info["left"]
    p_left_own = walrasian_price(ob.take(np.flatnonzero(left)))
    p_right_own = walrasian_price(ob.take(np.flatnonzero(~left)))
    assert c.info["left_trade_price"] == p_right_own
    assert c.info["right_trade_price"] == p_left_own
    assert 0 < left.sum() < len(ob)
    for half, price in ((left, p_right_own), (~left, p_left_own)):
        traded = half & (c.accepted > 0)
        assert np.all(c.price[traded] == price)
        # at that price, the short side trades everything it wants
        wants = np.where(ob.is_buy, ob.price > price, ob.price < price) & half
        d = ob.quantity[wants & ob.is_buy].sum()
        s = ob.quantity[wants & ~ob.is_buy].sum()
        assert c.accepted[half & ob.is_buy].sum() == pytest.approx(min(d, s))


def test_walrasian_price_by_hand():
    # bids 9, 4 and asks 2, 6, one unit each: one unit trades; the interval is
    # [max(last ask 2, first rejected bid 4), min(last bid 9, first rejected ask 6)] = [4, 6]
    ob = batch([1, 1, -1, -1], [9.0, 4.0, 2.0, 6.0], [1.0] * 4)
    assert walrasian_price(ob) == 5.0
    # no trade: between the best bid 3 and the best ask 5
    assert walrasian_price(batch([1, -1], [3.0, 5.0], [1.0, 1.0])) == 4.0
    assert np.isnan(walrasian_price(batch([1], [3.0], [1.0])))


def test_muda_needs_a_generator():
    with pytest.raises(InputError) as info:
        te.clear(vcg_example(), "muda")
    assert info.value.field == "rng"


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), factors=st.lists(st.floats(0.0, 2.0), min_size=3,
                                                         max_size=3))
def test_muda_properties_and_universal_truthfulness(seed, factors):
    rng = np.random.default_rng(seed)
    ob = random_step_market(rng, int(rng.integers(2, 14)), int(rng.integers(1, 3)))
    draw = int(rng.integers(2**32))
    c = te.clear(ob, "muda", rng=np.random.default_rng(draw))
    buy = ob.is_buy
    assert c.accepted[buy].sum() == pytest.approx(c.accepted[~buy].sum(), abs=1e-9)
    assert abs(c.operator_surplus) < 1e-9  # strongly budget-balanced
    owner = np.unique(ob.participant, return_inverse=True)[1]
    utility = by_participant(c, ob.price)[1]
    assert np.all(utility >= -TOL)
    assert c.welfare <= welfare_optimum(ob)[1] + TOL
    # with the same random draws, participant 0 gains nothing by misreporting
    mine = owner == 0
    lie = ob.price.copy()
    lie[mine] = ob.price[mine] * np.resize(np.array(factors), int(mine.sum()))
    lied = te.clear(ob.replace(price=lie), "muda", rng=np.random.default_rng(draw))
    side = 1 if buy[mine][0] else -1
    u_lie = true_value(ob.price[mine], ob.quantity[mine], side, lied.accepted[mine].sum()) - \
        lied.payment[mine].sum()
    assert u_lie <= utility[0] + 1e-9


def test_unknown_mechanism_is_refused():
    with pytest.raises(InputError, match="unknown mechanism") as info:
        te.clear(vcg_example(), "vickery")
    assert info.value.field == "mechanism"


def test_mcafee_in_lots_matches_whole_units_scaled():
    """Lots of ``unit_kwh`` give the same allocation as whole units of that size."""
    rng = np.random.default_rng(5)
    n = 30
    lots = rng.integers(1, 8, n).astype(float)
    side = np.where(rng.random(n) < 0.5, 1, -1)
    price = rng.uniform(0.05, 0.4, n).round(3)
    base = dict(id=np.arange(n), participant=np.arange(n), side=side, price=price)
    whole = te.clear(te.OrderBatch(**base, quantity=lots), "mcafee")
    unit = 0.25
    in_lots = te.clear(te.OrderBatch(**base, quantity=lots * unit + 0.1), "mcafee",
                       unit_kwh=unit)  # the 0.1 kWh remainders cannot trade
    np.testing.assert_allclose(in_lots.accepted, whole.accepted * unit)
    np.testing.assert_allclose(in_lots.payment, whole.payment * unit)
    with pytest.raises(InputError, match="unit_kwh"):
        te.clear(te.OrderBatch(**base, quantity=lots), "mcafee", unit_kwh=0.0)
