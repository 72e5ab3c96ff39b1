"""The same community under several market designs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

from transactive.errors import InputError
from transactive.markets import registry
from transactive.sim.engine import simulate
from transactive.sim.result import SimulationResult
from transactive.sim.rundir import prepare_run_dir
from transactive.sim.scenario import Scenario

__all__ = ["compare"]


def compare(
    scenario: Scenario,
    mechanisms: Sequence[str],
    *,
    run_dir: str | PathLike[str] | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, SimulationResult]:
    """Run ``scenario`` once per mechanism (same community, same seed).

    The scenario's own ``market.options`` go to its own mechanism; the others
    run with their defaults. Every name is checked before anything runs.
    With ``run_dir`` (an empty folder, or one ``overwrite`` may replace) each
    design's run is written, settled, to its own sub-folder ``run_dir/<name>``.
    """
    names = list(dict.fromkeys(m.strip() for m in mechanisms if m.strip()))
    if not names:
        raise InputError("mechanisms", "name at least one mechanism")
    for name in names:
        registry.get(name)
    folder = None
    if run_dir is not None:
        folder = Path(run_dir)
        if folder.is_dir() and overwrite:  # a comparison's folder holds design folders
            for sub in sorted(folder.iterdir()):
                if sub.is_dir():
                    prepare_run_dir(sub, overwrite=True).rmdir()
        folder = prepare_run_dir(folder, overwrite=overwrite)
    runs: dict[str, SimulationResult] = {}
    for name in names:
        options = scenario.market.options if name == scenario.market.mechanism else {}
        variant = Scenario.from_dict({
            **scenario.model_dump(mode="json"),
            "name": f"{scenario.name}-{name}",
            "market": {**scenario.market.model_dump(mode="json"), "mechanism": name,
                       "options": dict(options)},
        })
        step = None if progress is None else (lambda d, t, n=name: progress(n, d, t))
        runs[name] = simulate(variant, progress=step,
                              run_dir=None if folder is None else folder / name)
    return runs
