"""The same community under several market designs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transactive.errors import InputError
from transactive.markets import registry
from transactive.sim.engine import SimulationResult, simulate
from transactive.sim.scenario import Scenario

__all__ = ["compare"]


def compare(
    scenario: Scenario,
    mechanisms: Sequence[str],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, SimulationResult]:
    """Run ``scenario`` once per mechanism (same community, same seed).

    The scenario's own ``market.options`` go to its own mechanism; the others
    run with their defaults. Every name is checked before anything runs.
    """
    names = list(dict.fromkeys(m.strip() for m in mechanisms if m.strip()))
    if not names:
        raise InputError("mechanisms", "name at least one mechanism")
    for name in names:
        registry.get(name)
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
        runs[name] = simulate(variant, progress=step)
    return runs
