"""Time, memory and run-folder size of whole simulations, and where the time goes.

Run: ``python benchmarks/bench_simulate.py [--households 1000] [--days 365] [--split]``.
Each case runs in a fresh process with every default (network market, settlement
as ``[settlement] mode = "auto"`` decides) into a fresh run folder, so its peak
memory and folder are its own; beside its time, the simulating process's CPU
time (on a shared machine, the steadier figure) (peak: the simulating process's plus, for runs
settled by day, the settlement process's beside it, whose CPU time is printed
too). ``--split`` profiles each case once more and
splits its time by part: devices (profiles, batteries), orders (bidding
strategies), market (the mechanism and the baseline in Python: for the network
market the merit order where no limit binds, and building and reading the LPs
of the other intervals), HiGHS (the solver's own runs), carbon (loss factors
by AC power flow), results (books, store) and settlement (ledger, journal,
statements; for runs settled by day in their own process, handing each day
over and waiting for it); "other" is the engine's own bookkeeping. Profiling slows Python,
so the split is in shares of the profiled time.
Targets (issue "fast years"): a year of 1,000 households under 20 s, 2 GiB and a
1 GiB run folder; the default run under 3 s of simulation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import cProfile, json, pathlib, pstats, resource, sys, tempfile, time
from transactive.sim import Scenario, simulate
overrides, split = json.loads(sys.argv[1]), sys.argv[2] == "1"
scenario = Scenario().with_overrides(**overrides)
# each part: the cumulative time of its entry points (file suffix, function)
parts = {"devices": [("sim/community.py", "build_community"),
                     ("agents/devices.py", "self_consumption"),
                     ("sim/engine.py", "_islanded")],
         "orders": [("agents/strategies.py", "limit_prices")],  # net_orders: in the market
         "market": [("sim/market.py", "clear_day")],
         "carbon": [("sim/settling.py", "charge")],
         "results": [("sim/books.py", "add"), ("sim/books.py", "frames"),
                     ("sim/recorder.py", "write_tables"), ("sim/recorder.py", "finish")],
         # settled here, or handed to the settlement process and waited for
         "settlement": [("sim/settling.py", "day"), ("sim/settling.py", "close"),
                        ("sim/settle_process.py", "day"), ("sim/settle_process.py", "close")]}
with tempfile.TemporaryDirectory() as tmp:
    run_dir = pathlib.Path(tmp) / "run"
    prof = cProfile.Profile() if split else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if prof: prof.enable()
    result = simulate(scenario, run_dir=run_dir)
    if prof: prof.disable()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    size = sum(p.stat().st_size for p in run_dir.iterdir())
    # the settlement process, if the run had one (the largest child's peak: a
    # short-lived helper such as `uname` reports its parent's pages as its own)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    beside = result.settlement is not None and run_dir.joinpath("statements.parquet").exists()
    out = {"simulate_s": elapsed, "cpu_s": cpu, "folder_mib": size / 2**20,
           "settled": result.settlement is not None,
           "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                        + (child.ru_maxrss if beside else 0)) / 1024,
           "settle_process_cpu_s": (child.ru_utime + child.ru_stime) if beside else 0.0,
           "intervals": len(result.intervals)}
    if prof:
        stats = pstats.Stats(prof).stats
        def cumulative(file, name):
            return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name)
        split = {k: sum(cumulative(f, n) for f, n in v) for k, v in parts.items()}
        highs = sum(v[3] for (f, _, n), v in stats.items() if n.endswith("highspy._core.run>"))
        split["market"] -= highs  # the market's Python: building and reading its LPs
        split["HiGHS"] = highs
        total = sum(v[3] for (f, _, n), v in stats.items() if n == "simulate")
        split["other"] = total - sum(split.values())
        out["split"] = {k: v / total for k, v in split.items()}
print(json.dumps(out))
"""


def _case(overrides: dict[str, object], split: bool) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(overrides), str(int(split))],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--split", action="store_true", help="profile where the time goes")
    parser.add_argument("--flexible", action="store_true",
                        help="also the same community with EVs, heat pumps and appliances, "
                        "on rules, bidding, and bidding with every program ([vpp], "
                        "[demand_response], [retail]) (issue 'flexibility': within 3x of plain)")
    args = parser.parse_args(argv)
    big = {"community.households": args.households, "time.days": args.days}
    cases = [
        ("default (50 households, 7 days)", {}),
        (f"{args.households} households, {args.days:g} days, network", big),
        (f"{args.households} households, {args.days:g} days, uniform",
         {**big, "market.mechanism": "uniform"}),
    ]
    if args.flexible:
        devices = {**big, "ev.share": 0.4, "heat_pump.share": 0.5, "shiftable.share": 0.5}
        cases += [(f"{args.households} households, {args.days:g} days, devices on rules",
                   devices),
                  (f"{args.households} households, {args.days:g} days, devices bid",
                   {**devices, "flexibility.control": "market"}),
                  (f"{args.households} hh, {args.days:g} d, bid, every program",
                   {**devices, "flexibility.control": "market", "vpp.enabled": True,
                    "demand_response.enabled": True, "retail.enabled": True})]
    print(f"{'case':<40} {'intervals':>9} {'simulate s':>11} {'cpu s':>7} {'peak MiB':>9}"
          f" {'folder MiB':>10} {'settled':>8}")
    for label, overrides in cases:
        r = _case(overrides, split=False)
        print(f"{label:<40} {r['intervals']:>9} {r['simulate_s']:>11.2f} {r['cpu_s']:>7.2f}"
              f" {r['peak_mib']:>9.0f} {r['folder_mib']:>10.1f}"
              f" {'yes' if r['settled'] else 'no':>8}", flush=True)
        if args.split:
            split = _case(overrides, split=True)["split"]
            print("    time split: " + ", ".join(f"{k} {v:.0%}" for k, v in split.items()),
                  flush=True)
        if r["settle_process_cpu_s"]:
            print(f"    settled beside the simulation: the settlement process used "
                  f"{r['settle_process_cpu_s']:.1f} s of CPU (its statements writer included)",
                  flush=True)


if __name__ == "__main__":
    main()
