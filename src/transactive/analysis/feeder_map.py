"""A feeder drawn as a tree: nodal prices and voltages on a map of the network.

Feeders rarely come with coordinates, so buses are placed from the topology:
distance (in branches) from the substation along x; the largest subtree of a
bus continues on its parent's line and the others branch off below, so the
trunk stays straight and laterals hang from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from transactive.grid.network import Network

__all__ = ["feeder_figure", "radial_layout"]


def radial_layout(network: Network) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(x, y)`` of every bus (by position) for drawing a radial feeder.

    Examples
    --------
    >>> from transactive.grid.cases import load_case
    >>> x, y = radial_layout(load_case("ieee33"))
    >>> int(x.max()), float(x[0]), float(y[0])
    (17, 0.0, 0.0)
    """
    n = network.n_bus
    children: list[list[int]] = [[] for _ in range(n)]
    parent = np.full(n, -1)
    adjacency: list[list[int]] = [[] for _ in range(n)]
    for f, t in zip(network.from_position.tolist(), network.to_position.tolist(), strict=True):
        adjacency[f].append(t)
        adjacency[t].append(f)
    root = network.ref_position
    order = [root]
    seen = np.zeros(n, dtype=bool)
    seen[root] = True
    for bus in order:  # breadth first; the list grows while we walk it
        for nxt in adjacency[bus]:
            if not seen[nxt]:
                seen[nxt] = True
                parent[nxt] = bus
                children[bus].append(nxt)
                order.append(nxt)
    size = np.ones(n)
    for bus in reversed(order):
        if parent[bus] >= 0:
            size[parent[bus]] += size[bus]
    x, y = np.zeros(n), np.zeros(n)
    lane = 0.0
    stack = [root]
    while stack:
        bus = stack.pop()
        kids = sorted(children[bus], key=lambda c: -size[c])
        for i, child in enumerate(kids):
            x[child] = x[bus] + 1
            if i == 0:
                y[child] = y[bus]
            else:
                lane -= 1
                y[child] = lane
        stack.extend(reversed(kids[1:]))
        stack.extend(kids[:1])
    return x, y


def feeder_figure(network: Network, panels: list[tuple[str, npt.ArrayLike, str]],
                  marked: npt.ArrayLike | None = None, marked_label: str = "") -> Figure:
    """One map per panel ``(title, value per bus, colormap)``; buses in
    ``marked`` (a boolean mask) get a red ring."""
    x, y = radial_layout(network)
    segments = np.stack([np.c_[x[network.from_position], y[network.from_position]],
                         np.c_[x[network.to_position], y[network.to_position]]], axis=1)
    fig = Figure(figsize=(10.0, 2.4 * len(panels) + 0.4), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    ring = None if marked is None else np.asarray(marked, dtype=bool)
    for ax, (title, values, cmap) in zip(axes, panels, strict=True):
        ax.add_collection(LineCollection(list(segments), colors="#999999", linewidths=1.2,
                                         zorder=1))
        kwargs: dict[str, Any] = {"c": np.asarray(values, dtype=np.float64), "cmap": cmap,
                                  "s": 60, "zorder": 2, "edgecolors": "black",
                                  "linewidths": 0.4}
        points = ax.scatter(x, y, **kwargs)
        if ring is not None and ring.any():
            ax.scatter(x[ring], y[ring], s=160, facecolors="none", edgecolors="#d6604d",
                       linewidths=1.6, zorder=3, label=marked_label)
            ax.legend(loc="lower right", fontsize=8)
        for pos in (network.ref_position,):
            ax.annotate("substation", (x[pos], y[pos]), textcoords="offset points",
                        xytext=(0, 8), ha="center", fontsize=8)
        fig.colorbar(points, ax=ax, shrink=0.9).set_label(title, fontsize=8)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_axis_off()
        ax.margins(0.05, 0.15)
    return fig
