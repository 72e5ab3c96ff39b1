"""Retail competition beside the incumbent alone and a P2P market.

:func:`compare_retail` prices the households' profile (their imports and
exports with a supplier over a run's timeline, ``(T, n)`` kWh) under the
incumbent alone (its tariff, no choice), and plays a
:class:`~transactive.programs.retail.RetailMarket` of the incumbent (retailer
0, every household's supplier before month 0) and the entrants for some
months. :func:`comparison_table` sets the two, and a P2P market's bills from a
simulation run, side by side. Every figure is per month (a month is
:data:`~transactive.programs.retail.DAYS_PER_MONTH` days; the run's figures
are scaled by ``month_factor``), in the tariffs' currency, summed over the
households.

The table
---------
One row per case: ``incumbent`` (alone), ``retail competition`` (in the last
month played) and, given its bills, ``p2p market``. Columns:

``bills_per_month``
    What the households pay.
``bill_saving_per_month``
    The incumbent's bills less the case's.
``supplier_profit_per_month``
    The incumbent's, the retailers' together, or what the caller gives for
    the P2P case (NaN if nothing).
``consumer_surplus_change_per_month``
    Consumer surplus less the incumbent's. With the incumbent alone a
    household's surplus is minus its bill; under competition it is the
    logit log-sum (:func:`~transactive.programs.retail.logit_choice`), which
    also counts switching costs and the taste terms of the logit; in the P2P
    market it is minus the bill, so there the change is the bill saving.
``welfare_change_per_month``
    The change in consumer surplus plus the change in supplier profit.
``incumbent_share``
    The incumbent's share of households (1, its share in the last month, NaN).
``households_paying_more``
    Households whose bill is more than a cent above the incumbent's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.errors import InputError
from transactive.programs.retail import LogitChoice, Retailer, RetailMarket, RetailRun
from transactive.programs.tariffs import FloatArray
from transactive.programs.wholesale import WholesalePrices
from transactive.timeline import Timeline

__all__ = ["RetailComparison", "compare_retail", "comparison_table"]

_CENT = 0.01


@dataclass(frozen=True, eq=False)
class RetailComparison:
    """The incumbent alone and retail competition on one profile.

    ``incumbent_bill`` (n,) and ``incumbent_profit``: each household's bill
    and the incumbent's profit per month when it supplies everyone at its
    tariff; ``competition``: the months of retail competition (retailer 0
    the incumbent); ``month_factor``: a run's figure times it is
    per month (a run lasts ``1 / month_factor`` months)."""

    incumbent_bill: FloatArray
    incumbent_profit: float
    competition: RetailRun
    month_factor: float

    def __post_init__(self) -> None:
        self.incumbent_bill.flags.writeable = False


def compare_retail(import_kwh: npt.ArrayLike, export_kwh: npt.ArrayLike, timeline: Timeline,
                   wholesale: npt.ArrayLike | WholesalePrices, incumbent: Retailer,
                   entrants: Sequence[Retailer], months: int, rng: np.random.Generator,
                   choice: LogitChoice | None = None,
                   price_cap_per_kwh: float | None = None) -> RetailComparison:
    """The incumbent alone, and ``months`` of competition with ``entrants``
    (module docstring; the other arguments as for
    :class:`~transactive.programs.retail.RetailMarket`). With inertia, mind
    the cap (see :mod:`transactive.programs.retail`): capping at the
    incumbent's own price makes competition a choice of cheaper offers.

    Examples
    --------
    >>> from transactive.programs.retail import BestResponse
    >>> from transactive.programs.tariffs import Tariff
    >>> tl = Timeline(pd.Timestamp("2026-03-02", tz="Europe/Berlin"), periods=168,
    ...               step_minutes=60)
    >>> imp = np.full((168, 200), 0.5)
    >>> old = Retailer("incumbent", Tariff("flat", 0.35, 0.08), network_charge_per_kwh=0.10)
    >>> new = Retailer("entrant", Tariff("flat", 0.29, 0.08), network_charge_per_kwh=0.10,
    ...                adapt=BestResponse())
    >>> cmp = compare_retail(imp, np.zeros_like(imp), tl, np.full(168, 0.09), old, [new],
    ...                      months=24, rng=np.random.default_rng(5), price_cap_per_kwh=0.35)
    >>> round(float(cmp.incumbent_bill[0]), 2), round(cmp.incumbent_profit, 2)
    (127.84, 11688.0)

    The entrant undercut, won 38 % of the households, then raised its price
    to the cap (it harvests its customers' inertia):

    >>> cmp.competition.price_per_kwh[[0, 4, 23], 1].round(2).tolist()
    [0.29, 0.25, 0.35]
    >>> table = comparison_table(cmp, p2p_bills=np.full(200, 26.0))   # a week's bills
    >>> table.index.tolist()
    ['incumbent', 'retail competition', 'p2p market']
    >>> table["bills_per_month"].round(1).tolist(), table["incumbent_share"].tolist()
    ([25567.5, 25567.5, 22610.7], [1.0, 0.62, nan])
    """
    if not isinstance(incumbent, Retailer):
        raise InputError("incumbent", f"must be a Retailer, got {type(incumbent).__name__}")
    if isinstance(entrants, Retailer) or not isinstance(entrants, Sequence) or not entrants:
        raise InputError("entrants", "must be a non-empty sequence of Retailer")
    market = RetailMarket((incumbent, *entrants), import_kwh, export_kwh, timeline, wholesale,
                          choice, price_cap_per_kwh)
    run = market.run(months, rng)
    alone = market.offer_bills(np.zeros(len(market.retailers)))[:, 0]
    profit = float((alone - market.supply_cost[:, 0]).sum())
    return RetailComparison(incumbent_bill=alone, incumbent_profit=profit, competition=run,
                            month_factor=market.month_factor)


def comparison_table(comparison: RetailComparison, p2p_bills: npt.ArrayLike | None = None,
                     p2p_supplier_profit: float | None = None) -> pd.DataFrame:
    """The incumbent alone, retail competition and (given) a P2P market in
    one table (columns in the module docstring).

    Parameters
    ----------
    comparison : RetailComparison
        From :func:`compare_retail`.
    p2p_bills : array of float, shape (n,), optional
        Each household's bill over the run in the P2P market (e.g. the run's
        ``households["bill_market"]``), the households in the order of the
        profile.
    p2p_supplier_profit : float, optional
        What the suppliers earned over the run in the P2P case (e.g. the
        utility's revenue less its cost of supply, plus the market
        operator's surplus); NaN if not given.
    """
    if not isinstance(comparison, RetailComparison):
        raise InputError("comparison", "must be a RetailComparison (from compare_retail)")
    base = comparison.incumbent_bill
    run = comparison.competition
    base_profit = comparison.incumbent_profit
    rows = {"incumbent": _row(base, base, -base, base_profit, base_profit, 1.0),
            "retail competition": _row(run.bill[-1], base, run.consumer_surplus[-1],
                                       float(run.profit[-1].sum()), base_profit,
                                       float(run.share[-1, 0]))}
    if p2p_bills is not None:
        bills = _p2p_bills(p2p_bills, base.shape[0]) * comparison.month_factor
        profit = np.nan
        if p2p_supplier_profit is not None:
            if isinstance(p2p_supplier_profit, bool) or not isinstance(
                    p2p_supplier_profit, int | float | np.number) or not np.isfinite(
                    p2p_supplier_profit):
                raise InputError("p2p_supplier_profit", "must be a finite number, got "
                                 f"{p2p_supplier_profit!r}")
            profit = float(p2p_supplier_profit) * comparison.month_factor
        rows["p2p market"] = _row(bills, base, -bills, profit, base_profit, np.nan)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case"
    return table


def _p2p_bills(value: npt.ArrayLike, n: int) -> FloatArray:
    try:
        bills = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("p2p_bills", "must be an array of numbers") from None
    if bills.shape != (n,) or not np.isfinite(bills).all():
        raise InputError("p2p_bills", f"must be {n} finite bills (one per household), "
                         f"got shape {bills.shape}")
    return bills


def _row(bills: FloatArray, base: FloatArray, surplus: FloatArray, profit: float,
         base_profit: float, share: float) -> dict[str, float]:
    surplus_change = float((surplus + base).sum())
    return {"bills_per_month": float(bills.sum()),
            "bill_saving_per_month": float((base - bills).sum()),
            "supplier_profit_per_month": profit,
            "consumer_surplus_change_per_month": surplus_change,
            "welfare_change_per_month": surplus_change + profit - base_profit,
            "incumbent_share": share,
            "households_paying_more": float((bills > base + _CENT).sum())}
