"""Settlement rules: one interval's clearing and meter data -> ledger transfers.

Everything here is a pure function of its inputs (no ledger, no clock), so
anyone holding a statement can recompute their bill ("shadow settlement").

Conventions
-----------
- Energy is in integer watt-hours, **positive into the participant** (bought,
  imported); money in integer minor units (cents), **positive = the participant
  pays** (as in :class:`~transactive.clearing.Clearing`).
- ``metered_kwh``: net energy the participant took from the grid in the
  interval (import positive, export negative). ``planned_kwh``: the position
  the participant planned (defaults to the metered energy, i.e. no imbalance).

The lines of a participant ``i`` (all integers):

``market_wh``      net energy bought in the market: ``sum(accepted * side) * 1000``
``market_cents``   net payment to the market: ``sum(payment) * minor``
``utility_wh``     ``planned_wh - market_wh``: the rest of the plan, bought from the
                   utility at the retail price (> 0) or sold at the feed-in price (< 0)
``imbalance_wh``   ``metered_wh - planned_wh``: the deviation, settled with the
                   utility (the balancing party) at the imbalance prices: a
                   shortfall (> 0) pays ``retail + penalty``, a surplus (< 0)
                   earns ``feed_in - penalty`` (dual imbalance pricing)
``grid_fee_cents`` ``grid_fee_wh * grid_fee_per_kwh / 1000 * minor``; ``"flat"``:
                   a fee per kWh bought in the market (``grid_fee_wh = max(market_wh, 0)``);
                   ``"locational"``: ``grid_fee_wh = market_wh`` at the rate
                   ``node_price[node] - clearing_price``, so a trade from bus a to
                   bus b pays ``(lambda_b - lambda_a)`` per kWh in total (the
                   locational price difference of the bus pair). Use it when the
                   clearing charges one system price; a clearing that already
                   charges nodal prices keeps that rent in the market account.
``carbon_cents``   a carbon charge given by the caller (placeholder: 0)

so ``market_wh + utility_wh + imbalance_wh == metered_wh`` exactly, and
``total_cents`` is the sum of the money lines.

Rounding (exact and documented)
-------------------------------
A money or energy amount ``x`` (float, in minor units or Wh) is first snapped
to 1e-6 of a unit (``round(x, 6)``, which removes binary noise such as
``44.99999999999999``), then:

- the market lines use the **largest-remainder method** over the
  participants: each gets ``floor(x)``, and the ``round(sum(x)) - sum(floor(x))``
  largest remainders (ties: lower participant index) get one more unit, so the
  rounded lines add up exactly to the rounded total. Energy bought therefore
  equals energy sold to the watt-hour, and the market account receives exactly
  ``round(operator surplus)`` (zero for a budget-balanced market);
- every other line has a single counterparty and is rounded on its own, half
  to even (``round(round(x, 6))``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.settlement.ledger import SettlementError, Transfer

__all__ = [
    "ACCOUNTS",
    "STATEMENT_COLUMNS",
    "IntervalLines",
    "IntervalPrices",
    "check_interval",
    "compute_lines",
    "largest_remainder",
    "line_transfers",
    "participant_accounts",
    "round_minor",
]

GridFeeMode = Literal["flat", "locational"]

#: The operator accounts settlement posts against: (id, unit).
ACCOUNTS = {
    "market_money": "market:money",
    "market_energy": "market:energy",
    "grid": "grid:money",
    "utility_money": "utility:money",
    "utility_energy": "utility:energy",
    "carbon": "carbon:money",
}

_SNAP = 6
_ENERGY_TOLERANCE_WH = 0.5


def round_minor(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Round to whole units, half to even, after snapping to 1e-6 of a unit.

    Examples
    --------
    >>> round_minor([44.99999999999999, 12.5, 13.5, -2.5]).tolist()
    [45, 12, 14, -2]
    """
    return np.round(np.round(np.asarray(x, dtype=np.float64), _SNAP)).astype(np.int64)


def largest_remainder(x: npt.ArrayLike, total: int | None = None) -> npt.NDArray[np.int64]:
    """Integers within one unit of ``x`` that add up to ``total``
    (default: ``sum(x)`` rounded as :func:`round_minor` does).

    Examples
    --------
    >>> largest_remainder([33.4, 33.3, 33.3]).tolist()     # 100.0 split three ways
    [34, 33, 33]
    >>> largest_remainder([0.5, 0.5, -1.0]).tolist()       # budget balanced stays balanced
    [1, 0, -1]
    """
    arr = np.round(np.asarray(x, dtype=np.float64), _SNAP)
    if total is None:
        total = int(round_minor(math.fsum(arr.tolist())))
    floor = np.floor(arr)
    extra = int(total) - int(floor.sum())
    if not 0 <= extra <= arr.size:
        raise InputError("total", f"{total} is not reachable by rounding values summing to "
                         f"{math.fsum(arr.tolist())}")
    order = np.lexsort((np.arange(arr.size), -(arr - floor)))
    out = floor.astype(np.int64)
    out[order[:extra]] += 1
    return out


Price = float | npt.NDArray[np.float64]
_PRICE_FIELDS = ("retail_price_per_kwh", "feed_in_price_per_kwh", "grid_fee_per_kwh",
                 "imbalance_penalty_per_kwh")


@dataclass(frozen=True)
class IntervalPrices:
    """The prices of one interval (currency per kWh).

    Each is one number for everyone, or an array with one price per
    participant (e.g. different tariffs), in the order of ``participants``.
    """

    retail_price_per_kwh: Price
    feed_in_price_per_kwh: Price
    grid_fee_per_kwh: Price = 0.0
    imbalance_penalty_per_kwh: Price = 0.0

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(name, f"must be a number or an array, got {value!r}") from None
            if isinstance(value, bool) or arr.ndim > 1:
                raise InputError(name, f"must be a number or a 1-d array, got {value!r}")
            bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
            if bad.size:
                raise InputError(name, "must be finite", row=int(bad[0]) if arr.ndim else None)
            arr.flags.writeable = False
            object.__setattr__(self, name, float(arr) if arr.ndim == 0 else arr)

    def check_size(self, n: int) -> None:
        """Raise InputError if a per-participant price array is not of length ``n``."""
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.shape != (n,):
                raise InputError(name, f"must have one price per participant ({n}), "
                                 f"got {value.shape[0]}")

    @property
    def short_price_per_kwh(self) -> Price:
        """What a shortfall (consumed more than planned) pays per kWh."""
        return self.retail_price_per_kwh + self.imbalance_penalty_per_kwh

    @property
    def long_price_per_kwh(self) -> Price:
        """What a surplus (consumed less than planned) earns per kWh."""
        return self.feed_in_price_per_kwh - self.imbalance_penalty_per_kwh


#: Columns of a statement, one row per participant and interval.
STATEMENT_COLUMNS = (
    "interval", "participant", "metered_wh", "planned_wh", "market_wh", "market_payment",
    "market_cents", "utility_wh", "utility_price_per_kwh", "utility_cents", "imbalance_wh",
    "imbalance_price_per_kwh", "imbalance_cents", "grid_fee_wh", "grid_fee_per_kwh",
    "grid_fee_cents", "carbon_cents", "total_cents",
)
_MONEY_LINES = ("market_cents", "utility_cents", "imbalance_cents", "grid_fee_cents",
                "carbon_cents")


@dataclass(frozen=True)
class IntervalLines:
    """The settlement lines of every participant in one interval (columnar).

    Integer arrays as in the module docstring; ``*_price_per_kwh`` and
    ``grid_fee_per_kwh`` are the rates applied to each participant and
    ``market_payment`` the unrounded payment from the clearing.
    """

    interval: int
    participant: npt.NDArray[Any]
    metered_wh: npt.NDArray[np.int64]
    planned_wh: npt.NDArray[np.int64]
    market_wh: npt.NDArray[np.int64]
    market_payment: npt.NDArray[np.float64]
    market_cents: npt.NDArray[np.int64]
    utility_wh: npt.NDArray[np.int64]
    utility_price_per_kwh: npt.NDArray[np.float64]
    utility_cents: npt.NDArray[np.int64]
    imbalance_wh: npt.NDArray[np.int64]
    imbalance_price_per_kwh: npt.NDArray[np.float64]
    imbalance_cents: npt.NDArray[np.int64]
    grid_fee_wh: npt.NDArray[np.int64]
    grid_fee_per_kwh: npt.NDArray[np.float64]
    grid_fee_cents: npt.NDArray[np.int64]
    carbon_cents: npt.NDArray[np.int64]

    @property
    def total_cents(self) -> npt.NDArray[np.int64]:
        """What each participant pays in the interval (negative: receives)."""
        return sum((getattr(self, c) for c in _MONEY_LINES), np.zeros_like(self.metered_wh))

    def to_frame(self) -> pd.DataFrame:
        """One statement row per participant (the statement CSV's columns)."""
        data = {name: getattr(self, name) for name in STATEMENT_COLUMNS[2:-1]}
        return pd.DataFrame({"interval": np.full(self.participant.size, self.interval),
                             "participant": self.participant, **data,
                             "total_cents": self.total_cents}, columns=list(STATEMENT_COLUMNS))


def _vector(name: str, values: Any, n: int) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64) if values is not None else None
    if arr is None or arr.shape != (n,):
        shape = None if arr is None else arr.shape
        raise InputError(name, f"must be a 1-d array of length {n}, got shape {shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(name, f"must be finite, got {arr[bad[0]]!r}", row=int(bad[0]))
    return arr


def _labels(participants: Any) -> npt.NDArray[Any]:
    arr = np.asarray(participants)
    if arr.ndim != 1:
        raise InputError("participants", f"must be a 1-d array, got shape {arr.shape}")
    index = pd.Index(arr)
    if not index.is_unique:
        row = int(np.flatnonzero(index.duplicated())[0])
        raise InputError("participants", f"duplicate participant {arr[row]!r}", row=row)
    return arr


def compute_lines(interval: int, clearing: Clearing | None, participants: npt.ArrayLike,
                  metered_kwh: npt.ArrayLike, prices: IntervalPrices, *,
                  planned_kwh: npt.ArrayLike | None = None,
                  carbon_cost: npt.ArrayLike | None = None,
                  grid_fee: GridFeeMode = "flat", minor_per_unit: int = 100) -> IntervalLines:
    """The settlement lines of one interval (see the module docstring for the rules).

    Parameters
    ----------
    interval : int
        Index of the interval (>= 0).
    clearing : Clearing or None
        The interval's market result (``None``: no market, utility only). Every
        participant with orders must be in ``participants``.
    participants : array
        Labels of all participants settled, matching ``clearing.orders.participant``.
    metered_kwh, planned_kwh : array of float
        Net energy drawn from the grid per participant (import positive).
    prices : IntervalPrices
    carbon_cost : array of float, optional
        Carbon charge per participant in currency (positive pays).
    grid_fee : "flat" or "locational"
    minor_per_unit : int
        Minor units per currency unit (100 for cents).

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                 price=[0.30, 0.10], quantity=[2.0, 2.0])
    >>> c = Clearing.from_allocation("uniform", ob, [2.0, 2.0], [0.2, 0.2], 0.2)
    >>> lines = compute_lines(0, c, ["a", "b"], [2.5, -2.0], IntervalPrices(0.3, 0.05))
    >>> lines.market_cents.tolist(), lines.utility_wh.tolist(), lines.total_cents.tolist()
    ([40, -40], [500, 0], [55, -40])
    """
    if isinstance(interval, bool) or not isinstance(interval, int | np.integer) or interval < 0:
        raise InputError("interval", f"must be an integer >= 0, got {interval!r}")
    if grid_fee not in ("flat", "locational"):
        raise InputError("grid_fee", f"must be 'flat' or 'locational', got {grid_fee!r}")
    labels = _labels(participants)
    n = labels.size
    minor = float(minor_per_unit)
    metered_wh = round_minor(_vector("metered_kwh", metered_kwh, n) * 1000.0)
    planned_wh = (metered_wh if planned_kwh is None
                  else round_minor(_vector("planned_kwh", planned_kwh, n) * 1000.0))

    energy_raw: npt.NDArray[np.float64] = np.zeros(n)
    payment: npt.NDArray[np.float64] = np.zeros(n)
    prices.check_size(n)
    fee_rate = np.broadcast_to(np.asarray(prices.grid_fee_per_kwh, dtype=np.float64),
                               (n,)).copy()
    if clearing is not None and len(clearing.orders):
        orders = clearing.orders
        idx = pd.Index(labels).get_indexer(orders.participant)
        if (idx < 0).any():
            row = int(np.flatnonzero(idx < 0)[0])
            raise InputError("participants", f"participant {orders.participant[row]!r} has "
                             "orders in the clearing but is not listed", row=row)
        energy_raw = np.bincount(idx, weights=clearing.accepted * orders.side * 1000.0,
                                 minlength=n).astype(np.float64)
        payment = np.bincount(idx, weights=clearing.payment, minlength=n).astype(np.float64)
        imbalance_wh_market = math.fsum(energy_raw.tolist())
        if abs(imbalance_wh_market) > _ENERGY_TOLERANCE_WH:
            raise InputError("clearing", f"energy bought and sold differ by "
                             f"{imbalance_wh_market:.3f} Wh")
        if grid_fee == "locational":
            fee_rate = _locational_rates(clearing, idx, n)
    market_wh = largest_remainder(energy_raw, 0)
    market_cents = largest_remainder(payment * minor)

    utility_wh = planned_wh - market_wh
    utility_price = np.where(utility_wh > 0, prices.retail_price_per_kwh,
                             prices.feed_in_price_per_kwh).astype(np.float64)
    imbalance_wh = metered_wh - planned_wh
    imbalance_price = np.where(imbalance_wh > 0, prices.short_price_per_kwh,
                               prices.long_price_per_kwh).astype(np.float64)
    fee_wh = np.maximum(market_wh, 0) if grid_fee == "flat" else market_wh.copy()
    carbon = (np.zeros(n, dtype=np.int64) if carbon_cost is None
              else round_minor(_vector("carbon_cost", carbon_cost, n) * minor))
    return IntervalLines(
        interval=int(interval), participant=labels, metered_wh=metered_wh,
        planned_wh=planned_wh, market_wh=market_wh, market_payment=payment,
        market_cents=market_cents, utility_wh=utility_wh, utility_price_per_kwh=utility_price,
        utility_cents=round_minor(utility_wh * utility_price * minor / 1000.0),
        imbalance_wh=imbalance_wh, imbalance_price_per_kwh=imbalance_price,
        imbalance_cents=round_minor(imbalance_wh * imbalance_price * minor / 1000.0),
        grid_fee_wh=fee_wh, grid_fee_per_kwh=fee_rate,
        grid_fee_cents=round_minor(fee_wh * fee_rate * minor / 1000.0),
        carbon_cents=carbon,
    )


def _locational_rates(clearing: Clearing, idx: npt.NDArray[np.intp], n: int
                      ) -> npt.NDArray[np.float64]:
    """``node_price[node] - clearing_price`` per participant (0 where it did not trade)."""
    orders = clearing.orders
    if clearing.node_price is None or orders.node is None:
        raise InputError("grid_fee", "'locational' needs a clearing with node prices "
                         "and orders with nodes")
    if (orders.node >= clearing.node_price.size).any():
        row = int(np.flatnonzero(orders.node >= clearing.node_price.size)[0])
        raise InputError("node", "has no node price", row=row)
    traded = clearing.accepted > 0
    node = np.full(n, -1, dtype=np.int64)
    node[idx[traded]] = orders.node[traded]
    clash = traded & (node[idx] != orders.node)
    if clash.any():
        row = int(np.flatnonzero(clash)[0])
        raise InputError("node", f"participant {orders.participant[row]!r} traded at "
                         "more than one node", row=row)
    rates = np.zeros(n)
    has = node >= 0
    if has.any():
        if not np.isfinite(clearing.clearing_price):
            raise InputError("clearing", "locational grid fees need a finite clearing price")
        rates[has] = clearing.node_price[node[has]] - clearing.clearing_price
        if not np.isfinite(rates).all():
            raise InputError("node_price", "must be finite at the nodes that traded")
    return rates


def participant_accounts(label: Any) -> tuple[str, str]:
    """The money and energy account ids of a participant."""
    return f"participant:{label}:money", f"participant:{label}:energy"


# code -> (line attribute, counterparty account, unit is energy)
_FLOWS = (
    ("market_money", "market_cents", ACCOUNTS["market_money"], False),
    ("market_energy", "market_wh", ACCOUNTS["market_energy"], True),
    ("utility_money", "utility_cents", ACCOUNTS["utility_money"], False),
    ("utility_energy", "utility_wh", ACCOUNTS["utility_energy"], True),
    ("imbalance_money", "imbalance_cents", ACCOUNTS["utility_money"], False),
    ("imbalance_energy", "imbalance_wh", ACCOUNTS["utility_energy"], True),
    ("grid_fee", "grid_fee_cents", ACCOUNTS["grid"], False),
    ("carbon", "carbon_cents", ACCOUNTS["carbon"], False),
)


def line_transfers(lines: IntervalLines, *, prefix: str = "") -> list[Transfer]:
    """The transfers of an interval, one per non-zero line, with ids
    ``f"{prefix}{interval}/{code}/{participant}"``.

    Money lines (positive = pays) debit the participant's money account;
    energy lines (positive = receives) credit the participant's energy account.
    """
    k = lines.interval
    names = [str(p) for p in lines.participant.tolist()]
    accounts = [participant_accounts(p) for p in names]
    out: list[Transfer] = []
    for code, attr, counter, energy in _FLOWS:
        values = getattr(lines, attr)
        for i in np.flatnonzero(values).tolist():
            amount = int(values[i])
            own = accounts[i][1] if energy else accounts[i][0]
            to_participant = (amount > 0) == energy
            debit, credit = (counter, own) if to_participant else (own, counter)
            out.append(Transfer(f"{prefix}{k}/{code}/{names[i]}", debit, credit, abs(amount),
                                code, k))
    return out


def check_interval(lines: IntervalLines, transfers: list[Transfer]) -> None:
    """Check the interval's invariants on its transfers; raise SettlementError if broken.

    Energy sold equals energy bought (the market's energy account nets to
    zero), debits equal credits per unit, each participant's energy account
    moves by exactly its metered energy, its money account by its total bill,
    and the market's money account by the sum of the market lines.
    """
    delta: dict[str, int] = {}
    for t in transfers:
        delta[t.debit] = delta.get(t.debit, 0) - t.amount
        delta[t.credit] = delta.get(t.credit, 0) + t.amount
    problems = []
    if delta.get(ACCOUNTS["market_energy"], 0) != 0:
        problems.append(f"energy sold - energy bought = {delta[ACCOUNTS['market_energy']]} Wh, "
                        "not 0")
    if delta.get(ACCOUNTS["market_money"], 0) != int(lines.market_cents.sum()):
        problems.append("market money does not match the market lines")
    money_sum = sum(v for a, v in delta.items() if a.endswith(":money"))
    energy_sum = sum(v for a, v in delta.items() if a.endswith(":energy"))
    if money_sum != 0 or energy_sum != 0:
        problems.append(f"debits != credits (money {money_sum}, energy {energy_sum})")
    accounts = [participant_accounts(p) for p in lines.participant.tolist()]
    energy_moved = np.array([delta.get(e, 0) for _, e in accounts], dtype=np.int64)
    money_paid = np.array([-delta.get(m, 0) for m, _ in accounts], dtype=np.int64)
    for label, moved, expected in (("energy moved (Wh)", energy_moved, lines.metered_wh),
                                   ("money paid", money_paid, lines.total_cents)):
        bad = np.flatnonzero(moved != expected)
        if bad.size:
            i = int(bad[0])
            problems.append(f"participant {lines.participant.tolist()[i]!r}: {label} {moved[i]}, "
                            f"expected {expected[i]}")
    if problems:
        raise SettlementError(f"interval {lines.interval}: " + "; ".join(problems[:5]))
