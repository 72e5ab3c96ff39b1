"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from transactive.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "transactive.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_simulate_writes_store_and_report_and_report_rerenders(tmp_path):
    out = tmp_path / "run"
    proc = _run("simulate", "--households", "8", "--days", "1", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "P2P traded" in proc.stdout
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 6
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # works offline
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").exists()


def test_clear_json_matches_hand_worked_case(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("id,participant,side,price,quantity\n"
                   "b1,alice,buy,0.30,2\nb2,carol,buy,0.22,1\ns1,bob,sell,0.10,1.5\n"
                   "s2,dave,sell,0.20,2\n")
    proc = _run("clear", str(csv), "--mechanism", "uniform", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # demand 3 kWh at >= 0.22, supply 3.5 at <= 0.20: all bids trade (3 kWh),
    # s1 fully, s2 1.5 of 2; CE interval [0.20, 0.22] -> midpoint 0.21
    assert out["mechanism"] == "uniform"
    assert out["price"] == pytest.approx(0.21)
    assert out["volume"] == pytest.approx(3.0)
    assert out["welfare"] == pytest.approx(0.6 + 0.22 - 0.15 - 0.30)
    alloc = {a["id"]: a for a in out["allocations"]}
    assert alloc["s2"]["quantity"] == pytest.approx(1.5)
    assert alloc["s1"]["payment"] == pytest.approx(-1.5 * 0.21)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clear", "missing.csv"], "no such file"),
        (["clear", "{bad}", "--mechanism", "nope"], "unknown mechanism 'nope'"),
        (["simulate", "--households", "1", "--quiet"], "community.households"),
        (["report", "."], "not a run folder"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,participant,side,price,quantity\n1,a,buy,0.3,2\n")
    args = [str(bad) if a == "{bad}" else a for a in args]
    proc = subprocess.run([sys.executable, "-m", "transactive.cli", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1


def test_opf_json_has_the_documented_shape(capsys):
    assert main(["opf", "case9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out) == ["branches", "buses", "generators", "objective"]
    assert sorted(out["buses"][0]) == ["bus", "congestion", "energy", "lmp", "loss"]
    assert sorted(out["branches"][0]) == ["flow_mw", "from_bus", "limit_mw", "shadow_price",
                                          "to_bus"]
    assert {b["bus"] for b in out["buses"]} == set(range(1, 10))  # MATPOWER numbers
    assert out["objective"] == pytest.approx(5216.03, rel=1e-5)
    for bus in out["buses"]:
        assert bus["lmp"] == pytest.approx(bus["energy"] + bus["congestion"] + bus["loss"])


def test_audit_writes_table_and_plot(tmp_path):
    assert main(["audit", "--mechanisms", "uniform,vcg", "--markets", "4",
                 "--out", str(tmp_path)]) == 0
    table = (tmp_path / "audit.csv").read_text().splitlines()
    assert table[0].startswith(",efficiency") or "efficiency" in table[0]
    assert len(table) == 3
    assert (tmp_path / "audit.svg").stat().st_size > 1000


def test_compare_writes_one_report_per_design_and_the_comparison(tmp_path):
    assert main(["compare", "--mechanisms", "uniform,amm", "--households", "6", "--days", "1",
                 "--out", str(tmp_path)]) == 0
    html = (tmp_path / "comparison.html").read_text()
    assert "uniform" in html
    assert "amm" in html
    for name in ("uniform", "amm"):
        assert (tmp_path / name / "report.html").exists()
        assert (tmp_path / name / "results.sqlite").exists()
    assert main(["compare", "--mechanisms", "uniform,nope", "--out", str(tmp_path)]) == 2


def test_opf_with_losses_prices_them_and_generation_covers_them(capsys):
    assert main(["opf", "case30", "--losses", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    losses = [b["loss"] for b in out["buses"]]
    assert max(abs(x) for x in losses) > 1e-3  # a loss part at the buses away from the slack
    for bus in out["buses"]:
        assert bus["lmp"] == pytest.approx(bus["energy"] + bus["congestion"] + bus["loss"])
    from transactive.grid import load_case, solve_dcopf

    net = load_case("case30")
    res = solve_dcopf(net, losses=True)
    assert res.gen_p_mw.sum() > net.bus_load_mw.sum()  # generation also covers the losses
    assert main(["opf", "case30", "--losses", "--security", "n-1"]) == 2
