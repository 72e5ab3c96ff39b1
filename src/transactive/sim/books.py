"""The run's books: each interval's outcome accumulated into columnar arrays,
turned into the result frames at the end (see :mod:`transactive.sim.recorder`
for the columns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.timeline import Timeline

__all__ = ["CENT", "GAIN_REASONS", "Books", "DayOutcome", "worse_off_reasons"]

CENT = 0.01
"""The smallest gain or loss that counts (currency): less is rounding."""

FloatArray = npt.NDArray[np.float64]

#: Per-interval community columns, in the order they are stored.
INTERVAL_COLUMNS = (
    "price", "volume_kwh", "welfare", "n_buy", "n_sell", "load_kwh", "pv_kwh",
    "charge_kwh", "discharge_kwh", "device_kwh", "soc_kwh", "bought_kwh", "sold_kwh", "p2p_kwh",
    "buyer_payment", "seller_receipt", "max_buyer_price", "import_kwh", "export_kwh",
    "operator_surplus", "counterparty_kwh", "curtailed_kwh", "baseline_curtailed_kwh",
    "unserved_kwh", "baseline_unserved_kwh", "grid_import_kwh", "grid_export_kwh",
    "utility_revenue", "baseline_cost", "baseline_spending", "market_cost", "carbon_cost",
    "n_binding", "islanded", "draw_kwh", "baseline_draw_kwh", "indoor_c_mean", "indoor_c_min",
)
#: Interval columns that are NaN where the community has no such device.
_DEVICE_COLUMNS = ("indoor_c_mean", "indoor_c_min")
_INT_COLUMNS = ("n_buy", "n_sell", "n_binding", "islanded")
GAIN_PARTS = ("purchase_gain", "sale_gain", "limits_gain", "island_gain", "flexibility_gain")
#: Per-household columns summed per day and over the run.
HOUSEHOLD_COLUMNS = ("bill_market", "bill_baseline", "carbon_cost", "bought_kwh", "sold_kwh",
                     "import_kwh", "export_kwh", "load_kwh", "pv_kwh", "unserved_kwh",
                     "curtailed_kwh", "baseline_unserved_kwh", "baseline_curtailed_kwh",
                     *GAIN_PARTS)
#: With a virtual power plant (``[vpp]``, :mod:`transactive.sim.vpp`): the energy
#: its aggregator supplied (+) or took (-) behind each household's meter, what the
#: household paid it (negative: received) and what that saved against the tariff
#: (a gain part). The household's gain is then ``bill_baseline - bill_market -
#: vpp_payment``; the interval column ``vpp_kwh`` sums the energy.
VPP_COLUMNS = ("vpp_kwh", "vpp_payment", "vpp_gain")
#: The parts a household's gain (baseline bill - market bill) is made of, with
#: what a loss in each means (:func:`worse_off_reasons`).
GAIN_REASONS = {
    "purchase_gain": "paid more than retail for energy bought in the market",
    "sale_gain": "sold below the feed-in price",
    "limits_gain": "feeder limits: more PV curtailed or load shed than in the baseline",
    "island_gain": "paid for energy while islanded (the baseline had a blackout)",
    "flexibility_gain": "its devices' schedule cost more at the tariff than on plain rules",
    "vpp_gain": "paid the aggregator more than the tariff's price for its devices' energy",
}
_ORDER_COLUMNS = ("interval", "id", "household", "side", "limit_price", "quantity",
                  "accepted", "price", "payment")


@dataclass(eq=False)
class DayOutcome:
    """What happened in consecutive intervals ``start, start + 1, ...`` (a day
    or the rest of one): per-household arrays of shape (intervals,
    households), kWh or money, and community figures per interval (``stats``:
    one array per key of :data:`INTERVAL_COLUMNS`)."""

    start: int
    net_kwh: FloatArray
    bought_kwh: FloatArray
    sold_kwh: FloatArray
    paid: FloatArray
    """What each household paid for what it bought in the market (money)."""
    received: FloatArray
    """What each household received for what it sold in the market (money)."""
    import_kwh: FloatArray
    export_kwh: FloatArray
    bill_market: FloatArray
    bill_baseline: FloatArray
    load_kwh: FloatArray
    pv_kwh: FloatArray
    unserved_kwh: FloatArray
    curtailed_kwh: FloatArray
    baseline_unserved_kwh: FloatArray
    baseline_curtailed_kwh: FloatArray
    baseline_meter_kwh: FloatArray
    """What its meter would read with the utility alone: the baseline's net
    import, less what the baseline's feeder shed, plus what it curtailed (0
    while islanded: the baseline has a blackout)."""
    soc_kwh: FloatArray
    """Stored energy at the end of each interval."""
    purchase_gain: FloatArray
    """Per household: retail value of what it bought in the market less what it paid."""
    sale_gain: FloatArray
    """Per household: what it received for what it sold less the feed-in value."""
    limits_gain: FloatArray
    """Per household: the baseline's bill for its load shed and PV curtailed by the
    feeder's limits, less the market's: ``(unserved - baseline_unserved) * retail
    - (curtailed - baseline_curtailed) * feed_in``."""
    island_gain: FloatArray
    """Per household: minus its bill while islanded (the baseline has no supply)."""
    flexibility_gain: FloatArray
    """Per household: the baseline's bill (devices on plain rules) less the
    tariff's bill for the energy it bought and sold with its devices bidding,
    less ``limits_gain`` (0 where the devices run by rules)."""
    stats: dict[str, FloatArray]
    islanded: npt.NDArray[np.bool_]
    """Per interval: the community was islanded (no market, no utility)."""
    carbon_cost: FloatArray | None = None
    """Carbon charge per household (currency), apart from the energy bill
    (set by :meth:`~transactive.sim.settling.CarbonContext.charge`)."""
    clearings: list[Clearing | None] | None = None
    """Each interval's clearing (None while islanded), where they are kept (a
    run that records orders or settles interval by interval)."""
    node_price: FloatArray | None = None
    """Per interval and bus (NaN while islanded); None without a network market."""
    vm_pu: FloatArray | None = None
    vpp_kwh: FloatArray | None = None
    """With a virtual power plant: the energy its aggregator supplied (+) or
    took (-) behind the household's meter (see :data:`VPP_COLUMNS`)."""
    vpp_payment: FloatArray | None = None
    vpp_gain: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.net_kwh.shape[0])


class Books:
    """Accumulates :class:`IntervalOutcome` s; ``level`` is the record level."""

    def __init__(self, timeline: Timeline, n_households: int, level: str,
                 tariffs: Mapping[str, tuple[FloatArray, FloatArray]] | None = None, *,
                 meters: bool = False, vpp: bool = False) -> None:
        self.timeline = timeline
        # each household's baseline meter priced under other tariffs: kind ->
        # (retail, feed-in price per interval), and the bills so far
        self.tariffs = dict(tariffs or {})
        self.tariff_bills = {kind: np.zeros(n_households) for kind in self.tariffs}
        self.n = n_households
        self.level = level
        periods = timeline.periods
        self.n_days = -(-periods // timeline.periods_per_day)
        self.iv = {name: np.full(periods, np.nan) if name in _DEVICE_COLUMNS
                   else np.zeros(periods)
                   for name in INTERVAL_COLUMNS + (("vpp_kwh",) if vpp else ())}
        self.days = {name: np.zeros((self.n_days, n_households))
                     for name in HOUSEHOLD_COLUMNS + (VPP_COLUMNS if vpp else ())}
        # every household's intervals: recorded (level 'orders' or 'households'),
        # or only the meters, kept for the programs that start from them (``meters``)
        self.keep_households = level in ("orders", "households")
        names = (("net_kwh", "bought_kwh", "sold_kwh", "soc_kwh", "meter_kwh",
                  "baseline_meter_kwh") if self.keep_households else
                 ("meter_kwh", "baseline_meter_kwh") if meters else ())
        self.hh = {name: np.zeros((periods, n_households), dtype=np.float32) for name in names}
        self.order_parts: list[tuple[npt.NDArray[Any], ...]] = []
        self.node_price: FloatArray | None = None
        self.node_vm: FloatArray | None = None

    def add(self, out: DayOutcome) -> None:
        """Book the intervals of ``out`` (all of one day)."""
        t = slice(out.start, out.start + len(out))
        for name, values in out.stats.items():
            self.iv[name][t] = values
        d = out.start // self.timeline.periods_per_day
        for name, per_day in self.days.items():
            per_day[d] += getattr(out, name).sum(axis=0)
        if self.hh:
            for name, kept in self.hh.items():
                kept[t] = (_meter_kwh(out) if name == "meter_kwh" else getattr(out, name))
        if self.tariffs:
            imported = np.maximum(out.baseline_meter_kwh, 0.0)
            exported = np.maximum(-out.baseline_meter_kwh, 0.0)
            for kind, (retail, feed_in) in self.tariffs.items():
                self.tariff_bills[kind] += retail[t] @ imported - feed_in[t] @ exported
        if self.level == "orders" and out.clearings is not None:
            for k, c in enumerate(out.clearings, start=out.start):
                if c is not None:
                    o = c.orders
                    self.order_parts.append((np.full(len(o), k), o.id, o.participant, o.side,
                                             o.price, o.quantity, c.accepted, c.price,
                                             c.payment))
        if out.node_price is not None and out.vm_pu is not None:
            if self.node_price is None or self.node_vm is None:
                shape = (self.timeline.periods, out.node_price.shape[1])
                self.node_price, self.node_vm = np.full(shape, np.nan), np.full(shape, np.nan)
            self.node_price[t] = out.node_price
            self.node_vm[t] = out.vm_pu

    def meters(self, name: str) -> FloatArray:
        """Every household's meter (``"meter_kwh"``: with the market; or
        ``"baseline_meter_kwh"``: with the utility alone), intervals x
        households, kWh, as kept (float32) in float64; kept when recorded or
        asked for (``meters``)."""
        if name not in self.hh:
            raise ValueError(f"{name} is not kept: record households or keep the meters")
        return self.hh[name].astype(np.float64)

    def frames(self, households: pd.DataFrame, retail: FloatArray, feed_in: FloatArray
               ) -> dict[str, pd.DataFrame | None]:
        """The result frames: intervals, households, household_days,
        household_intervals, orders, nodes."""
        periods, n = self.timeline.periods, self.n
        intervals = pd.DataFrame({"interval": np.arange(periods), "start": self.timeline.index,
                                  "retail_price": retail, "feed_in_price": feed_in})
        for name, values in self.iv.items():
            intervals[name] = values.astype(np.int64) if name in _INT_COLUMNS else values
        nodes = None
        if self.node_price is not None and self.node_vm is not None:
            # fmin/fmax skip the NaN rows of intervals without a network
            # clearing (islanded), and leave NaN where a row is all NaN
            intervals["vm_min_pu"] = np.fmin.reduce(self.node_vm, axis=1)
            intervals["vm_max_pu"] = np.fmax.reduce(self.node_vm, axis=1)
            if self.keep_households:
                n_bus = self.node_price.shape[1]
                nodes = pd.DataFrame({
                    "interval": np.repeat(np.arange(periods), n_bus),
                    "bus": np.tile(np.arange(n_bus), periods),
                    "price": self.node_price.ravel(),
                    "vm_pu": self.node_vm.ravel(),
                }).dropna()
        ids = np.arange(n)
        day_frame = pd.DataFrame({
            "day": np.repeat(np.arange(self.n_days), n),
            "household": np.tile(ids, self.n_days),
            **{name: values.ravel() for name, values in self.days.items()},
        })
        totals = households.copy()
        for name, per_day in self.days.items():
            totals[name] = per_day.sum(axis=0)
        totals["gain"] = totals["bill_baseline"] - totals["bill_market"]
        if "vpp_payment" in totals:
            totals["gain"] -= totals["vpp_payment"]
        for kind, bills in self.tariff_bills.items():
            totals[f"bill_{kind}"] = bills
        totals["worse_off_reason"] = worse_off_reasons(totals)
        hh_frame = None
        if self.keep_households:
            hh_frame = pd.DataFrame({
                "interval": np.repeat(np.arange(periods), n),
                "household": np.tile(ids, periods),
                **{name: values.ravel() for name, values in self.hh.items()},
            })
        orders = None
        if self.level == "orders":
            cols = ([np.concatenate(parts) for parts in zip(*self.order_parts, strict=True)]
                    if self.order_parts else [np.empty(0)] * len(_ORDER_COLUMNS))
            orders = pd.DataFrame(dict(zip(_ORDER_COLUMNS, cols, strict=True)))
        return {"intervals": intervals, "households": totals, "household_days": day_frame,
                "household_intervals": hh_frame, "orders": orders, "nodes": nodes}


def worse_off_reasons(households: pd.DataFrame) -> pd.Series:
    """Why each household is worse off than in the baseline: the parts of
    its gain that are losses of at least half a cent, largest first, with the
    amount; ``""`` for a household that is not worse off (it lost less than
    a :data:`CENT`).

    Examples
    --------
    >>> hh = pd.DataFrame({"gain": [-1.0, 0.3], "purchase_gain": [0.2, 0.3],
    ...                    "sale_gain": [-0.9, 0.0], "limits_gain": [-0.3, 0.0],
    ...                    "island_gain": [0.0, 0.0], "flexibility_gain": [0.0, 0.0]})
    >>> for reason in worse_off_reasons(hh)[0].split("; "):
    ...     print(reason)
    sold below the feed-in price (-0.90)
    feeder limits: more PV curtailed or load shed than in the baseline (-0.30)
    >>> worse_off_reasons(hh)[1]
    ''
    """
    names = [name for name in GAIN_REASONS if name in households]
    parts = households[names].to_numpy()
    worse = households["gain"].to_numpy() <= -CENT
    reasons = []
    for row, is_worse in zip(parts, worse, strict=True):
        if not is_worse:
            reasons.append("")
            continue
        losses = [(v, GAIN_REASONS[name]) for name, v in zip(names, row, strict=True)
                  if v <= -CENT / 2]
        reasons.append("; ".join(f"{text} ({v:.2f})" for v, text in sorted(losses)))
    return pd.Series(reasons, index=households.index, dtype=object)


def _meter_kwh(out: DayOutcome) -> FloatArray:
    """What each household's meter read: its market and utility energy, and
    what a virtual power plant's aggregator supplied or took behind it."""
    meter = out.bought_kwh - out.sold_kwh + out.import_kwh - out.export_kwh
    return meter if out.vpp_kwh is None else meter + out.vpp_kwh
