"""Scenario files: defaults, validation with field paths, overrides, the template."""

from __future__ import annotations

from pathlib import Path

import pytest

from transactive.errors import InputError
from transactive.sim.scenario import Scenario, load_scenario, scenario_template

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_default_and_empty_file_agree(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_scenario(empty) == load_scenario(None) == Scenario()


def test_example_file_is_the_template_and_loads():
    assert (EXAMPLES / "default.toml").read_text() == scenario_template()
    assert load_scenario(EXAMPLES / "default.toml") == Scenario()


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("[community]\nhouseholds = 1\n", "community.households", "greater than or equal to 2"),
        ("[community]\nhousehold = 10\n", "community.household", "unknown field"),
        ("[market]\nmechanism = 'magic'\n", "market", "unknown mechanism 'magic'"),
        ("[market]\noptions = { bogus = 1 }\n", "market", "not an option"),
        ("[market]\nstrategy = 'greedy'\n", "market.strategy", "'truthful' or 'zic'"),
        ("[time]\nstart = 2026-06-01T00:00:00\n", "time.start", "UTC offset"),
        ("[time]\nstep_minutes = 7\n", "time.step_minutes", "divide a day"),
        ("[community]\npv_share = 0.1\nbattery_share = 0.5\n", "community", "battery_share"),
        ("[tariff]\nfeed_in_price_per_kwh = 0.5\n", "tariff", "feed_in_price_per_kwh"),
        ("seed = 'abc'\n", "seed", "integer"),
    ],
)
def test_bad_fields_are_named(tmp_path, text, field, problem):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.field == field
    assert problem in info.value.problem


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_scenario(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[community\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_scenario(bad)


def test_overrides_are_validated():
    s = Scenario().with_overrides(**{"community.households": 12, "seed": None})
    assert s.community.households == 12
    assert s.seed == Scenario().seed
    with pytest.raises(InputError, match=r"community\.households"):
        Scenario().with_overrides(**{"community.households": 0})


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_file_loads(path):
    assert isinstance(load_scenario(path), Scenario)
