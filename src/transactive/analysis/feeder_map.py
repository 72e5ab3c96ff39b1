"""A feeder drawn as a tree: nodal prices and voltages on an interactive map.

Feeders rarely come with coordinates, so buses are placed from the topology:
distance (in branches) from the substation along x; the largest subtree of a
bus continues on its parent's line and the others branch off below, so the
trunk stays straight and laterals hang from it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from transactive.analysis._plotly import COLORS, figure, values
from transactive.errors import InputError
from transactive.grid.network import Network

__all__ = ["feeder_map", "radial_layout"]


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


def feeder_map(network: Network, value: npt.ArrayLike, *, colorbar_title: str,
               hover: dict[str, list[str]] | None = None, marked: npt.ArrayLike | None = None,
               marked_label: str = "", height: int = 420) -> go.Figure:
    """An interactive map of the feeder: branches as lines, buses coloured by
    ``value`` (one finite number per bus, by position), hovering a bus shows
    its number, the value and any ``hover`` columns (label -> text per bus);
    buses in ``marked`` (a boolean mask) get a red ring.

    Examples
    --------
    >>> from transactive.grid.cases import load_case
    >>> net = load_case("ieee33")
    >>> fig = feeder_map(net, net.bus_numbers * 1.0, colorbar_title="bus number")
    >>> [t.name for t in fig.data], len(fig.data[1].x)
    (['branch', 'bus'], 33)
    """
    x, y = radial_layout(network)
    f, t = network.from_position, network.to_position
    gap = np.full(f.size, np.nan)
    edge_x = np.c_[x[f], x[t], gap].ravel()
    edge_y = np.c_[y[f], y[t], gap].ravel()
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (network.n_bus,) or not np.isfinite(v).all():
        raise InputError("value", f"needs one finite number for each of the {network.n_bus} buses")
    numbers = network.bus_numbers.tolist()
    text = [f"bus {n}" for n in numbers]
    for label, column in (hover or {}).items():
        text = [f"{a}<br>{label}: {b}" for a, b in zip(text, column, strict=True)]
    traces = [
        go.Scatter(x=values(edge_x, 3), y=values(edge_y, 3), mode="lines", name="branch",
                   line={"color": COLORS["grey"], "width": 2}, hoverinfo="skip",
                   showlegend=False),
        go.Scatter(x=values(x, 3), y=values(y, 3), mode="markers", name="bus", text=text,
                   hovertemplate="%{text}<extra></extra>", showlegend=False,
                   marker={"size": 13, "color": values(v, 4), "colorscale": "Viridis",
                           "line": {"color": "black", "width": 0.5},
                           "colorbar": {"title": {"text": colorbar_title}}}),
    ]
    ring = None if marked is None else np.asarray(marked, dtype=bool)
    if ring is not None and ring.any():
        traces.append(go.Scatter(
            x=values(x[ring], 3), y=values(y[ring], 3), mode="markers", name=marked_label,
            hoverinfo="skip", marker={"size": 22, "color": "rgba(0,0,0,0)",
                                      "line": {"color": COLORS["import"], "width": 2}}))
    ref = network.ref_position
    hidden = {"visible": False, "showgrid": False, "zeroline": False}
    return figure(traces, y_title="", height=height, hovermode="closest",
                  xaxis=hidden, yaxis=hidden, legend={"x": 0, "y": 0},
                  annotations=[{"x": float(x[ref]), "y": float(y[ref]), "text": "substation",
                                "showarrow": True, "ay": -25}])
