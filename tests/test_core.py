"""Core types: OrderBatch validation, Clearing, the public API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transactive as te
from transactive.errors import InputError


def _batch(**over):
    cols = {"id": [1, 2, 3], "participant": ["a", "b", "c"], "side": ["buy", "sell", "sell"],
            "price": [0.3, 0.1, 0.2], "quantity": [2.0, 1.0, 1.5]}
    cols.update(over)
    return te.OrderBatch(**cols)


def test_public_api_is_sorted_and_importable():
    # constants, then classes, then functions, each alphabetical (ruff's RUF022)
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(te.__all__) == sorted(te.__all__, key=kind)
    for name in te.__all__:
        assert hasattr(te, name), name


def test_orderbatch_is_columnar_readonly_and_validated():
    ob = _batch()
    assert ob.side.tolist() == [1, -1, -1]
    assert ob.time.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="read-only"):
        ob.price[0] = 1.0


@pytest.mark.parametrize(
    ("over", "field", "row"),
    [
        ({"price": [0.3, float("nan"), 0.2]}, "price", 1),
        ({"quantity": [2.0, 1.0, 0.0]}, "quantity", 2),
        ({"quantity": [2.0, -1.0, 1.0]}, "quantity", 1),
        ({"side": ["buy", "hold", "sell"]}, "side", 1),
        ({"id": [1, 1, 3]}, "id", 1),
        ({"participant": ["a", "", "c"]}, "participant", 1),
        ({"price": ["0.3", "x", "0.2"]}, "price", 1),
        ({"node": [0, -1, 2]}, "node", 1),
    ],
)
def test_bad_rows_name_row_and_field(over, field, row):
    with pytest.raises(InputError) as info:
        _batch(**over)
    assert info.value.field == field
    assert info.value.row == row
    assert f"row {row}" in str(info.value)


def test_length_mismatch_is_refused():
    with pytest.raises(InputError, match="length 3"):
        _batch(quantity=[1.0, 2.0])


def test_from_csv_roundtrip_and_errors(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,participant,side,price,quantity,node\n"
                    "b1,alice,buy,0.30,2,1\ns1,bob,sell,0.10,1.5,2\n")
    ob = te.OrderBatch.from_csv(path)
    assert ob.id.tolist() == ["b1", "s1"]
    assert ob.node.tolist() == [1, 2]
    frame = ob.to_frame()
    assert te.OrderBatch.from_frame(frame).price.tolist() == [0.3, 0.1]

    bad = tmp_path / "bad.csv"
    bad.write_text("id,participant,side,price,quantity\n1,a,buy,0.3,2\n2,b,sell,abc,1\n")
    with pytest.raises(InputError, match="row 1: field 'price'"):
        te.OrderBatch.from_csv(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("id,participant,side,price\n1,a,buy,0.3\n")
    with pytest.raises(InputError, match="'quantity': column is missing"):
        te.OrderBatch.from_csv(missing)
    with pytest.raises(InputError, match="no such file"):
        te.OrderBatch.from_csv(tmp_path / "nope.csv")


def test_clearing_figures_and_export():
    ob = _batch()
    c = te.Clearing.from_allocation("test", ob, accepted=[2.0, 1.0, 1.0], price=[0.2, 0.2, 0.2],
                                    clearing_price=0.2)
    assert c.volume == 2.0
    assert c.welfare == pytest.approx(2 * 0.3 - 0.1 - 0.2)
    assert c.operator_surplus == pytest.approx(0.0)
    assert c.payment.tolist() == pytest.approx([0.4, -0.2, -0.2])
    d = c.to_dict()
    assert [a["id"] for a in d["allocations"]] == [1, 2, 3]
    assert set(c.to_frame().columns) >= {"id", "accepted", "price", "payment", "limit_price"}
    none = te.Clearing.from_allocation("test", ob, np.zeros(3), np.zeros(3), float("nan"))
    assert np.isnan(none.price).all()
    assert none.to_dict()["price"] is None


def test_unknown_mechanism_and_option_are_refused():
    ob = _batch()
    with pytest.raises(InputError, match="unknown mechanism 'nope'"):
        te.clear(ob, "nope")
    with pytest.raises(InputError, match="not an option"):
        te.clear(ob, "uniform", bogus=1)
    with pytest.raises(InputError, match="expected an OrderBatch"):
        te.clear(pd.DataFrame(), "uniform")  # type: ignore[arg-type]
