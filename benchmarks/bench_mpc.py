"""Time of the model-predictive device plans (:mod:`transactive.agents.mpc`).

A winter community (from 2026-01-12, Munich's weather drawn by
:func:`outdoor_temperature_c`), 15-minute intervals, a real-time-like price
(a daily wave with noise, 0.10-0.45 per kWh) and a flat feed-in of 0.08;
households' base net energy is a load of 0.05-0.25 kWh per interval less a
midday PV bump. Device shares as in ``examples/flexible.toml`` (a battery in
25% of households, an EV in 40%, a heat pump in 50%), and a row with every
device in every household.

Timed (best of ``--repeat``): one :func:`plan` over 96 intervals (input checks,
the LP built, HiGHS, the plan read), with the LP split into diagonal blocks of
16 households (the default) and solved whole; and a receding-horizon day:
96 plans with a 96-interval horizon, each carried out (:meth:`MPCController.run`),
the LP kept in HiGHS and re-solved from its last basis (``warm``) or built
afresh every interval (``cold``).

Run: ``python benchmarks/bench_mpc.py [--households 1000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np
import pandas as pd

from transactive.agents.devices import BatteryFleet
from transactive.agents.ev import EVFleet
from transactive.agents.heatpump import HeatPumpFleet
from transactive.agents.mpc import MPCController, plan
from transactive.agents.weather import outdoor_temperature_c
from transactive.timeline import Timeline

H = 96


def community(n: int, shares: tuple[float, float, float], seed: int = 0) -> dict[str, Any]:
    """Two days of series and fleets (the second day is the last plans' horizon)."""
    tl = Timeline(pd.Timestamp("2026-01-12", tz="Europe/Berlin"), periods=2 * H)
    rng = np.random.default_rng(seed)
    hours = np.arange(tl.periods) * tl.dt_h % 24
    price = (0.28 + 0.08 * np.sin(2 * np.pi * (hours - 11) / 24)
             + 0.03 * rng.standard_normal(tl.periods)).clip(0.10, 0.45)
    sun = np.clip(np.sin(np.pi * (hours - 8) / 8), 0, None)
    base = rng.uniform(0.05, 0.25, (tl.periods, n)) - sun[:, None] * rng.uniform(0.2, 0.8, n)
    battery = BatteryFleet.build(rng.random(n) < shares[0], rng)
    return {"prices_per_kwh": price, "feed_in_per_kwh": np.full(tl.periods, 0.08),
            "base_net_kwh": base, "outdoor_c": outdoor_temperature_c(tl, rng), "dt_h": tl.dt_h,
            "battery": battery, "ev": EVFleet.draw(tl, rng.random(n) < shares[1], rng),
            "heat_pump": HeatPumpFleet.draw(rng.random(n) < shares[2], rng, dt_h=tl.dt_h)}


def time_plan(kw: dict[str, Any], repeat: int, group: int | None) -> float:
    series = ("prices_per_kwh", "feed_in_per_kwh", "base_net_kwh", "outdoor_c")
    window = {k: v[:H] if k in series else v for k, v in kw.items()}
    soc = kw["battery"].initial_soc_kwh()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        plan(**window, battery_soc_kwh=soc, households_per_lp=group)
        best = min(best, time.perf_counter() - start)
    return best


def time_day(kw: dict[str, Any], warm: bool) -> float:
    fleets = copy.deepcopy(kw)  # the run advances the EVs and heat pumps
    mpc = MPCController(**fleets, horizon=H, warm_start=warm)
    start = time.perf_counter()
    mpc.run(fleets["battery"].initial_soc_kwh(), stop=H)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold-day", action="store_true",
                        help="also time the day with every plan built afresh (slow)")
    args = parser.parse_args()
    print(f"{'households':>10} {'devices':>22} {'what':>28} {'s':>8} {'ms/plan':>9}")
    for n in args.households:
        for label, shares in (("25/40/50 % b/ev/hp", (0.25, 0.40, 0.50)),
                              ("every device", (1.0, 1.0, 1.0))):
            kw = community(n, shares)
            for what, group in (("plan, 96 intervals", 16), ("plan, the LP whole", None)):
                sec = time_plan(kw, 1 if group is None else args.repeat, group)
                print(f"{n:>10} {label:>22} {what:>28} {sec:>8.2f} {sec * 1e3:>9.0f}")
            for warm in (True, False) if args.cold_day else (True,):
                sec = time_day(kw, warm)
                what = f"receding day ({'warm' if warm else 'cold'})"
                print(f"{n:>10} {label:>22} {what:>28} {sec:>8.2f} {sec / H * 1e3:>9.0f}")


if __name__ == "__main__":
    main()
