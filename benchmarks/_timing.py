"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Fastest of ``repeat`` runs of each function, in seconds. The functions
    take turns, so that a busy machine slows them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
