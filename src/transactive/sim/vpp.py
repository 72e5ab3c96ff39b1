"""The virtual power plant of a run (``[vpp]``): an aggregator trades its
members' device flexibility in the wholesale market and dispatches the
devices to its award.

Who takes part
--------------
Households that own a battery, an EV, a heat pump or an appliance enrol
with the scenario's ``share`` (a seeded draw). Their devices' *flexible*
segments (not must-run, not an appliance's indivisible start) belong to the
aggregator; what must run stays with the household's energy manager and its
supplier, as an independent aggregator leaves it (Directive (EU) 2019/944,
Art. 17). An enrolled device bids as it would in the community's market,
but from the forecast of what energy costs through the aggregator: the
wholesale (day-ahead) price series plus ``network_charge_per_kwh``.

The award, committed ahead
--------------------------
The aggregator commits each interval ``gate_closure_h`` ahead (one hour: an
intraday market's gate closure; 24: the day-ahead market), a price-taker at
the interval's wholesale price: its award is what the fleet's aggregate curve
at the time of commitment (:func:`~transactive.programs.vpp.aggregate_curve`)
clears at that price with its margin
(:meth:`~transactive.programs.vpp.AggregateCurve.award_at`), scaled by the
share of its past awards in that interval of the day its fleet delivered
(up and down apart, smoothed over the days with weight :data:`_LEARN` on the
last). A curve is a snapshot of power, not of energy: a car that charges in
the hours after the commitment has less left to take when its interval
comes, so the bare snapshot oversells; the longer ahead, the more (a 14-day
winter run of ``examples/vpp.toml`` measured in the README). Until the
first commitment has come due the aggregator has nothing to deliver.

Dispatch and delivery
---------------------
Beside a network market the feeder carries the aggregator's energy (the
market clears with it as fixed loads, exchanged at the substation outside
the market); where it cannot, the operator curtails the dispatch to what it
can carry (:func:`~transactive.sim.flexday.flexible_day`), and the rest is
off the award.

In the interval the award is split over the fleet's segments of the moment
in merit order (:func:`~transactive.programs.vpp.disaggregate`), as far as
they clear at the price; what the fleet cannot give now is the shortfall,
and the aggregator pays ``imbalance_price_per_kwh`` for every kWh its fleet
is off the award (:func:`~transactive.programs.vpp.delivery`). The flexible
segments it does not dispatch do not run.

Energy and money
----------------
The dispatched energy is the aggregator's, metered behind each member's
meter (a sub-meter) and bought or sold upstream: it is not in the
household's market and utility lines, nor in the community's ledger, but
the feeder carries it (the community's grid import and export include it).
The households pay for the energy and receive for what they gave by the
scenario's ``sharing`` rule (:func:`~transactive.programs.vpp.share_revenue`),
a program's money beside the energy bill, like demand response's: each
household's ``vpp_payment`` (positive: it paid) counts in its gain, and
``vpp_gain`` is what the aggregator's price saved it against the tariff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.agents.flexibility import Segments
from transactive.orders import BUY
from transactive.programs.vpp import (
    AggregateCurve,
    RevenueShares,
    aggregate_curve,
    delivery,
    disaggregate,
    share_revenue,
)

if TYPE_CHECKING:
    from transactive.sim.flex_config import VppConfig
    from transactive.sim.flexible import Devices

__all__ = ["RunVpp", "VppStep"]

FloatArray = npt.NDArray[np.float64]
#: The fleets (codes of :data:`transactive.sim.flexible.FLEETS`) whose segments
#: an aggregator may take: the battery, the EV, the heat pump, the appliance.
_DEVICE_CODES = 2
#: Per interval, what the results table ``vpp`` keeps.
#: Weight of the last day in the aggregator's estimate of what share of an award
#: its fleet can deliver (exponential smoothing).
_LEARN = 0.5
_COLUMNS = ("price_per_kwh", "award_up_kwh", "award_down_kwh", "dispatched_up_kwh",
            "dispatched_down_kwh", "curtailed_kwh", "revenue", "network_charges", "margin",
            "households_receipt")


@dataclass(frozen=True, eq=False)
class VppStep:
    """One interval of the aggregator: which segments it takes and what they get."""

    taken: npt.NDArray[np.bool_]
    """Per segment: the aggregator's (its energy is :attr:`energy_kwh`)."""
    energy_kwh: FloatArray
    """Per segment, the dispatched energy (0 where not taken)."""
    up_kwh: FloatArray
    """Per household, the energy the aggregator supplied to its devices."""
    down_kwh: FloatArray
    """Per household, the energy the aggregator took from them."""
    payment: FloatArray
    """Per household, what it paid the aggregator (negative: received)."""


@dataclass(eq=False)
class RunVpp:
    """The aggregator of a run: its members, the curves it committed from, its
    records."""

    config: VppConfig
    enrolled: npt.NDArray[np.bool_]
    day_ahead_per_kwh: FloatArray
    periods_per_day: int
    lead: int
    """Intervals between the award and the delivery (the gate closure)."""
    supply_per_kwh: FloatArray = field(init=False)
    """What a kWh costs the fleet through the aggregator, per interval: the
    wholesale price and the network charge (its devices bid from this)."""
    _curves: list[AggregateCurve | None] = field(init=False)
    _rows: dict[str, FloatArray] = field(init=False)
    _deliverable: FloatArray = field(init=False)
    """Per interval of the day, up and down: the share of an award the fleet
    delivered, smoothed over the days."""

    def __post_init__(self) -> None:
        self.supply_per_kwh = self.day_ahead_per_kwh + self.config.network_charge_per_kwh
        self._curves = [None] * self.lead
        self._deliverable = np.ones((self.periods_per_day, 2))
        self._rows = {name: np.zeros(self.day_ahead_per_kwh.size) for name in _COLUMNS}

    @classmethod
    def enrol(cls, config: VppConfig, devices: Devices, day_ahead_per_kwh: FloatArray,
              periods_per_day: int, rng: np.random.Generator) -> RunVpp:
        """Enrol ``config.share`` of the households that own a flexible device."""
        n = devices.soc_kwh.size
        owns = devices.batteries.capacity_kwh > 0
        if devices.ev is not None:
            owns = owns | (devices.ev.capacity_kwh > 0)
        if devices.heat_pump is not None:
            owns = owns | (devices.heat_pump.p_max_kw > 0)
        if devices.shiftable is not None:
            owns = owns | (devices.shiftable.energy_per_cycle_kwh > 0)
        lead = max(round(config.gate_closure_h * periods_per_day / 24.0), 1)
        return cls(config, owns & (rng.random(n) < config.share),
                   np.asarray(day_ahead_per_kwh, dtype=np.float64), periods_per_day, lead)

    def takes(self, seg: Segments, owner: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
        """Per segment (its fleet's code ``owner``): the aggregator's, a
        flexible segment of an enrolled household's device (not must-run, not
        an appliance's indivisible start)."""
        return (self.enrolled[seg.household] & (owner >= _DEVICE_CODES) & ~seg.must_run
                & ~seg.indivisible & (seg.quantity_kwh > 0))

    def step(self, t: int, seg: Segments, owner: npt.NDArray[np.int8]) -> VppStep:
        """Interval ``t``: the award committed :attr:`lead` intervals before,
        dispatched over the segments ``seg`` it takes (:meth:`takes`; its
        fleets' codes ``owner``). Up energy costs the wholesale price plus the
        network charge, down energy earns the wholesale price."""
        cfg, n = self.config, self.enrolled.size
        taken = self.takes(seg, owner)
        rows = np.flatnonzero(taken)
        mine = seg.take(rows)
        now = aggregate_curve(mine, self.enrolled)
        ring = t % self.lead
        committed, self._curves[ring] = self._curves[ring], now
        m, wholesale = cfg.margin_per_kwh, float(self.day_ahead_per_kwh[t])
        prices = (wholesale + cfg.network_charge_per_kwh, wholesale)  # up, down

        def clears(curve: AggregateCurve) -> FloatArray:
            return np.array([curve.award_at(prices[0], margin_per_kwh=m).up_kwh,
                             curve.award_at(prices[1], margin_per_kwh=m).down_kwh])

        share = self._deliverable[t % self.periods_per_day]
        award = (np.zeros(2) if committed is None else clears(committed)) * share
        dispatched = award  # nothing awarded: nothing to give
        if award.any():
            dispatched = np.minimum(award, clears(now))  # what the fleet gives of it now
            awarded = award > 0  # the share of its award the fleet delivered, learned
            share[awarded] += _LEARN * (dispatched[awarded] / award[awarded] - share[awarded])
        money = []
        energy = np.zeros(len(seg))
        for k, price in enumerate(prices):  # up, then down, each at its own price
            if dispatched[k] == 0.0:  # nothing to split: no energy, no money
                money.append(RevenueShares(revenue=price * (0.0 - 0.0), margin=0.0,
                                           household=np.zeros(n), rule=cfg.sharing))
                continue
            part = disaggregate(mine, self.enrolled, (dispatched[0], 0.0) if k == 0 else
                                (0.0, dispatched[1]), price, margin_per_kwh=m)
            money.append(share_revenue(part, price, cfg.sharing))
            energy[rows] += part.energy_kwh
        receipt = money[0].household + money[1].household
        for name, value in (("price_per_kwh", wholesale), ("award_up_kwh", award[0]),
                            ("award_down_kwh", award[1]), ("dispatched_up_kwh", dispatched[0]),
                            ("dispatched_down_kwh", dispatched[1]),
                            ("revenue", money[0].revenue + money[1].revenue),
                            ("network_charges", cfg.network_charge_per_kwh * dispatched[0]),
                            ("margin", money[0].margin + money[1].margin),
                            ("households_receipt", float(receipt.sum()))):
            self._rows[name][t] = value
        up, down = np.zeros(n), np.zeros(n)
        if dispatched.any():
            buy, e = mine.side == BUY, energy[rows]
            up = np.bincount(mine.household[buy], e[buy], n).astype(np.float64)
            down = np.bincount(mine.household[~buy], e[~buy], n).astype(np.float64)
        return VppStep(taken, energy, up, down, -receipt)

    def curtail(self, t: int, step: VppStep, share: float) -> VppStep:
        """Interval ``t``'s ``step`` cut to ``share`` of its dispatch, every
        segment alike (the operator's curtailment: the feeder could not carry
        more). The money scales with it (every rule is linear in the
        dispatch at one price); what was cut is off the award."""
        r = self._rows
        cut = (1.0 - share) * (r["dispatched_up_kwh"][t] + r["dispatched_down_kwh"][t])
        for name in ("dispatched_up_kwh", "dispatched_down_kwh", "revenue", "network_charges",
                     "margin", "households_receipt"):
            r[name][t] *= share
        r["curtailed_kwh"][t] = cut
        return VppStep(step.taken, step.energy_kwh * share, step.up_kwh * share,
                       step.down_kwh * share, step.payment * share)

    def table(self) -> pd.DataFrame:
        """The results table ``vpp``: one row per interval, the award (a day
        ahead), the dispatch, delivery against the award and the money."""
        r = self._rows
        award = r["award_up_kwh"] - r["award_down_kwh"]
        metered = r["dispatched_up_kwh"] - r["dispatched_down_kwh"]
        dl = delivery(award, metered, self.config.imbalance_price_per_kwh)
        return pd.DataFrame({"interval": np.arange(award.size), **r,
                             "delivered_kwh": dl.delivered_kwh,
                             "shortfall_kwh": dl.shortfall_kwh, "over_kwh": dl.over_kwh,
                             "penalty": dl.penalty})

    def figures(self) -> dict[str, Any]:
        """The summary's figures (see :mod:`transactive.analysis.metrics`)."""
        tab = self.table()
        award = float((tab["award_up_kwh"] - tab["award_down_kwh"]).abs().sum())
        delivered = float(tab["delivered_kwh"].sum())
        margin, penalty = float(tab["margin"].sum()), float(tab["penalty"].sum())
        return {"vpp_households": int(self.enrolled.sum()), "vpp_award_kwh": award,
                "vpp_delivered_kwh": delivered,
                "vpp_delivered_share": delivered / award if award > 0 else math.nan,
                "vpp_shortfall_kwh": float(tab["shortfall_kwh"].sum()),
                "vpp_revenue": float(tab["revenue"].sum()),
                "vpp_households_receipt": float(tab["households_receipt"].sum()),
                "vpp_aggregator_profit": margin - penalty, "vpp_penalty": penalty}
