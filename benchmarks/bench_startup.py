"""Start-up: what a whole process costs before and around the work.

Run: ``python benchmarks/bench_startup.py [--repeat 5]``. Every row is a fresh
process (best of ``--repeat``), with the bytecode an install compiles (``make
demo``/``make test`` compile it) and ``PYTHONDONTWRITEBYTECODE=1`` as here.
The repeats go round the rows in turn, so on a busy machine every row (and
so every ratio) samples the same stretch of time.
Targets (issue "fast start"): ``transactive --help`` at most twice ``import
typer``; ``import transactive`` under 0.3 s; ``transactive opf`` on PGLib
case2869pegase at least 6x faster than pandapower's whole process (parse,
``from_ppc``, ``rundcopp``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

CASE = Path(__file__).resolve().parents[2] / "shared" / "cases" / "pglib_opf_case2869_pegase.m"

_PANDAPOWER = """
import logging, sys
logging.disable(logging.WARNING)
import pandapower as pp
from pandapower.converter.pypower import from_ppc
sys.path.insert(0, {bench!r})
from bench_opf import to_ppc
from transactive.grid import read_matpower
net = from_ppc(to_ppc(read_matpower({case!r})), f_hz=50, validate_conversion=False)
pp.rundcopp(net)
print(net.res_bus.lam_p.iloc[0])
"""


def _seconds(cmd: list[str]) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(__file__).resolve().parents[1] / "src")], check=True)
    exe = str(Path(sys.executable).with_name("transactive"))
    rows = [
        ("python -c 'import typer'", [sys.executable, "-c", "import typer"]),
        ("python -c 'import transactive'", [sys.executable, "-c", "import transactive"]),
        ("transactive --help", [exe, "--help"]),
        ("transactive --version", [exe, "--version"]),
    ]
    if CASE.is_file():
        bench = str(Path(__file__).resolve().parent)
        rows += [
            ("transactive opf case2869pegase --json", [exe, "opf", str(CASE), "--json"]),
            ("pandapower: parse, from_ppc, rundcopp",
             [sys.executable, "-c", _PANDAPOWER.format(bench=bench, case=str(CASE))]),
        ]
    times = {label: float("inf") for label, _ in rows}
    for _ in range(args.repeat):
        for label, cmd in rows:
            times[label] = min(times[label], _seconds(cmd))
    print(f"{'process':<42} {'best s':>8}")
    for label, _ in rows:
        print(f"{label:<42} {times[label]:>8.3f}")
    help_ratio = times["transactive --help"] / times["python -c 'import typer'"]
    print(f"--help / import typer: {help_ratio:.2f} (target <= 2)")
    if CASE.is_file():
        ratio = (times["pandapower: parse, from_ppc, rundcopp"]
                 / times["transactive opf case2869pegase --json"])
        print(f"pandapower / transactive opf, whole process: {ratio:.1f}x (target >= 6)")


if __name__ == "__main__":
    main()
