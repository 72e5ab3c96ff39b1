"""The feeder drawn as a tree: positions from the topology, an interactive map."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from transactive.analysis.feeder_map import feeder_map, radial_layout
from transactive.errors import InputError
from transactive.grid.cases import load_case


@pytest.fixture(scope="module")
def feeder():
    return load_case("ieee33")


def test_layout_places_buses_by_hops_from_the_substation_without_overlap(feeder):
    x, y = radial_layout(feeder)
    n = feeder.n_bus
    f, t = feeder.from_position, feeder.to_position
    graph = coo_matrix((np.ones(f.size), (f, t)), shape=(n, n))
    hops = shortest_path(graph, directed=False, unweighted=True, indices=feeder.ref_position)
    np.testing.assert_array_equal(x, hops)
    assert len(set(zip(x.tolist(), y.tolist(), strict=True))) == n
    # the trunk (the longest chain of IEEE 33: buses 1..18) stays on the substation's line
    trunk = feeder.bus_position(np.arange(1, 19))
    assert (y[trunk] == y[feeder.ref_position]).all()


def test_map_draws_every_branch_and_bus_with_its_value_and_ring(feeder):
    n = feeder.n_bus
    value = np.linspace(0.1, 0.2, n)
    marked = np.zeros(n, dtype=bool)
    marked[[3, 7]] = True
    fig = feeder_map(feeder, value, colorbar_title="price (EUR/kWh)",
                     hover={"households": [str(i % 3) for i in range(n)]}, marked=marked,
                     marked_label="limit")
    branches, buses, ring = fig.data
    assert sum(v is None for v in branches.x) == feeder.n_branch  # one gap per branch
    assert len(branches.x) == 3 * feeder.n_branch
    assert list(buses.marker.color) == np.round(value, 4).tolist()
    numbers = feeder.bus_numbers
    assert buses.text[7] == f"bus {numbers[7]}<br>households: {7 % 3}"
    x, y = radial_layout(feeder)
    assert list(ring.x) == x[marked].tolist()
    assert list(ring.y) == y[marked].tolist()
    unmarked = feeder_map(feeder, value, colorbar_title="p", marked=np.zeros(n, dtype=bool))
    assert len(unmarked.data) == 2
    value[5] = np.nan
    with pytest.raises(InputError, match="value"):
        feeder_map(feeder, value, colorbar_title="p")
    with pytest.raises(InputError, match="value"):
        feeder_map(feeder, value[:-1], colorbar_title="p")
