"""Time and memory of whole simulations: the default run and a large one.

Run: ``python benchmarks/bench_simulate.py [--households 1000] [--days 365]``.
Each case runs in a fresh process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import json, resource, sys, time
from transactive.sim import Scenario, simulate, write_results
import tempfile
overrides = json.loads(sys.argv[1])
scenario = Scenario().with_overrides(**overrides)
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as run_dir:  # settles into a ledger where the run is small
    result = simulate(scenario, run_dir=run_dir)
t1 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    write_results(result, tmp)
t2 = time.perf_counter()
print(json.dumps({"simulate_s": t1 - t0, "store_s": t2 - t1,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "intervals": len(result.intervals)}))
"""


def _case(overrides: dict[str, object]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(overrides)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=float, default=365)
    args = parser.parse_args(argv)
    # the same feeder loading as the default (50 households standing for 1,500)
    big = {"community.households": args.households, "time.days": args.days,
           "grid.kw_per_unit": 1500 / args.households}
    cases = [
        ("default (50 households, 7 days)", {}),
        (f"{args.households} households, {args.days:g} days, network",
         {**big, "market.mechanism": "network"}),
        (f"{args.households} households, {args.days:g} days, uniform",
         {**big, "market.mechanism": "uniform"}),
    ]
    print(f"{'case':<44} {'intervals':>9} {'simulate s':>11} {'store s':>8} {'peak MiB':>9}")
    for label, overrides in cases:
        r = _case(overrides)
        print(f"{label:<44} {r['intervals']:>9} {r['simulate_s']:>11.2f} {r['store_s']:>8.2f} "
              f"{r['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()
