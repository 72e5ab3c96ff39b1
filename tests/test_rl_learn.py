"""transactive learn: training, the evaluation against truthful and
zero-intelligence bidders, the report and the JSON summary."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from transactive.cli import main
from transactive.rl.learn import learn
from transactive.sim.scenario import Scenario

SMALL = ('name = "small"\nseed = 5\n[time]\ndays = 2\nstep_minutes = 120\n'
         '[community]\nhouseholds = 8\n[market]\nstrategy = "zic"\n')


def test_learn_is_seeded_and_pairs_its_evaluation() -> None:
    sc = Scenario().with_overrides(**{"community.households": 8, "time.days": 2.0,
                                      "time.step_minutes": 120})
    a = learn(sc, episodes=20, seed=4, evaluation_days=4)
    b = learn(sc, episodes=20, seed=4, evaluation_days=4)
    for name in ("learned", "truthful", "zic"):
        np.testing.assert_array_equal(a.profit[name], b.profit[name])
    np.testing.assert_array_equal(a.training.episode_return, b.training.episode_return)
    s = a.summary()
    diff = s["learned_minus"]["truthful"]
    assert diff["mean"] == pytest.approx(s["profit_per_day"]["learned"]["mean"]
                                         - s["profit_per_day"]["truthful"]["mean"])
    for ci in s["profit_per_day"].values():
        assert ci["ci_low"] <= ci["mean"] <= ci["ci_high"]
        assert ci["n"] == 4
    assert len(a.day["learned"]["traded_kwh"]) == 12


def test_cli_learn_writes_report_and_summary(tmp_path, capsys) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    out = tmp_path / "run"
    assert main(["learn", str(scenario), "--episodes", "15", "--seed", "2",
                 "--evaluation-days", "3", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in printed.items() if k not in ("report", "summary_file")} == written
    assert written["rivals"] == "zic"
    assert written["episodes"] == 15
    assert written["households"] == 8
    page = (out / "report.html").read_text()
    charts = re.findall(r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>',
                        page)
    assert [c for c, _ in charts] == ["learning-curve", "evaluation", "day-price", "day-traded"]
    curve = json.loads(charts[0][1].replace("<\\/", "</"))
    assert len(curve["data"][0]["y"]) == 15
    assert "https://" not in page.split("<script>", 1)[0]  # plotly.js inline, nothing fetched
    assert main(["learn", str(scenario), "--episodes", "3", "--evaluation-days", "2",
                 "--out", str(tmp_path / "human")]) == 0
    human = capsys.readouterr().out
    assert "learning to bid: small" in human
    assert "truthful" in human


@pytest.mark.parametrize(("args", "message"), [
    (["--mechanism", "nope"], "option '--mechanism': unknown mechanism 'nope'"),
    (["--episodes", "0"], "option '--episodes'"),
    (["--evaluation-days", "1"], "option '--evaluation-days'"),
])
def test_cli_learn_refusals(tmp_path, capsys, args: list[str], message: str) -> None:
    assert main(["learn", *args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
