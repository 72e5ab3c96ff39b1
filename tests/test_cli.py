"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from transactive.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "transactive.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_simulate_writes_store_and_report_and_report_rerenders(tmp_path):
    out = tmp_path / "run"
    proc = _run("simulate", "--households", "8", "--days", "1", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "peer-to-peer" in proc.stdout
    assert str(out) in proc.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    html = (out / "report.html").read_text()
    # works offline: nothing loaded from elsewhere (plotly.js is inline)
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=["']?(https?:)?//""",
                         html)
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").read_text() == html  # everything simulate wrote
    # a folder holds one run: a second run there is refused, --overwrite replaces it
    again = _run("simulate", "--households", "8", "--days", "1", "--out", str(out), "-q")
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert "not empty" in again.stderr


def test_simulate_json_is_the_summary_as_strict_json(tmp_path):
    out = tmp_path / "run"
    proc = _run("simulate", "--households", "6", "--days", "1", "--out", str(out), "--json",
                "--mechanism", "mcafee")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    for key in ("households", "intervals", "p2p_kwh", "utility_import_kwh",
                "utility_export_kwh", "buyer_price_per_kwh", "seller_price_per_kwh",
                "bills_baseline", "bills_market", "savings", "savings_share",
                "operator_surplus", "pool_lp_pnl", "curtailed_kwh", "unserved_kwh",
                "peak_import_kw", "households_better_off", "households_worse_off",
                "gini_gains", "self_sufficiency", "warnings"):
        assert key in figures
    assert figures["households"] == 6
    assert figures["run_dir"] == str(out)
    # McAfee with truthful bids at the tariff: buyers pay retail, sellers get feed-in
    assert figures["gini_gains"] is None
    assert figures["households_better_off"] == 0
    rerun = _run("simulate", "--households", "6", "--days", "1", "--out", str(out), "--json",
                 "--mechanism", "mcafee", "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    assert {**json.loads(rerun.stdout), "settlement": None} == {**figures, "settlement": None}


def test_a_scenario_name_never_escapes_results(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "../../escape"\n[time]\ndays = 1\n[community]\nhouseholds = 4\n')
    proc = subprocess.run([sys.executable, "-m", "transactive.cli", "simulate", str(scenario),
                           "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    made = [p.name for p in (tmp_path / "results").iterdir()]
    assert len(made) == 1
    assert made[0].startswith("escape-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "s.toml"]


def test_clear_json_matches_hand_worked_case(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("id,participant,side,price,quantity\n"
                   "b1,alice,buy,0.30,2\nb2,carol,buy,0.22,1\ns1,bob,sell,0.10,1.5\n"
                   "s2,dave,sell,0.20,2\n")
    proc = _run("clear", str(csv), "--mechanism", "uniform", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # demand 3 kWh at >= 0.22, supply 3.5 at <= 0.20: all bids trade (3 kWh),
    # s1 fully, s2 1.5 of 2; s2 is partly filled, so only its limit clears the market
    # (above 0.20 it would sell all 2 kWh, 3.5 offered against 3 demanded): price 0.20
    assert out["mechanism"] == "uniform"
    assert out["price"] == pytest.approx(0.20)
    assert out["volume"] == pytest.approx(3.0)
    assert out["welfare"] == pytest.approx(0.6 + 0.22 - 0.15 - 0.30)
    alloc = {a["id"]: a for a in out["allocations"]}
    assert alloc["s2"]["quantity"] == pytest.approx(1.5)
    assert alloc["s1"]["payment"] == pytest.approx(-1.5 * 0.20)


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
    assert sorted(out) == ["branches", "buses", "generators", "notes", "objective"]
    assert out["notes"] == []  # case9 names its reference bus
    assert sorted(out["buses"][0]) == ["bus", "congestion", "energy", "lmp", "loss"]
    assert sorted(out["branches"][0]) == ["flow_mw", "from_bus", "limit_mw", "shadow_price",
                                          "to_bus"]
    assert {b["bus"] for b in out["buses"]} == set(range(1, 10))  # MATPOWER numbers
    assert out["objective"] == pytest.approx(5216.03, rel=1e-5)
    # by hand: no limit binds in case9's DC-OPF, so every generator runs at one marginal
    # cost lam: 0.22 P1 + 5 = 0.17 P2 + 1.2 = 0.245 P3 + 1 = lam with P1 + P2 + P3 = 315 MW
    a, b = np.array([0.11, 0.085, 0.1225]), np.array([5.0, 1.2, 1.0])
    lam = (315 + (b / (2 * a)).sum()) / (1 / (2 * a)).sum()  # 24.0442
    for bus in out["buses"]:
        assert bus["lmp"] == pytest.approx(lam, rel=1e-6)
        assert bus["energy"] == pytest.approx(lam, rel=1e-6)
        assert bus["congestion"] == pytest.approx(0.0, abs=1e-9)
        assert bus["loss"] == 0.0
    p_mw = [g["p_mw"] for g in out["generators"]]
    assert p_mw == pytest.approx((lam - b) / (2 * a), rel=1e-6)


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
    losses = np.array([b["loss"] for b in out["buses"]])
    assert np.abs(losses).max() > 1e-3  # a loss part at the buses away from the slack
    from transactive.grid import load_case, marginal_loss_factors, solve_dcopf

    net = load_case("case30")
    # the loss part is the energy price times the marginal loss factor of the AC power
    # flow at the case's set points, computed here on its own: -energy * mlf
    energy = np.array([b["energy"] for b in out["buses"]])
    assert losses == pytest.approx(-energy * marginal_loss_factors(net), abs=1e-9)
    res = solve_dcopf(net, losses=True)
    assert res.gen_p_mw.sum() > net.bus_load_mw.sum()  # generation also covers the losses
    assert main(["opf", "case30", "--losses", "--security", "n-1"]) == 2


# ------------------------------------------------------------------ usage errors
BOX = set("╭╮╰╯│─┏┃")


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert not BOX & set(err)
    return lines[0]


def test_no_arguments_print_the_help_and_exit_2():
    proc = _run()
    assert proc.returncode == 2
    assert proc.stdout.startswith("Usage: transactive [OPTIONS] COMMAND")
    for command in ("simulate", "compare", "opf", "audit", "report", "clear", "ledger"):
        assert f"\n  {command} " in proc.stdout
    line = _one_line_error(proc.stderr)
    assert "missing command" in line


def test_unknown_flag_is_one_line_with_a_suggestion():
    proc = _run("simulate", "--housholds", "3")
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = _one_line_error(proc.stderr)
    assert line == "error: unknown option '--housholds' (did you mean '--households'?)"


def test_version_prints_the_version_and_exits_0():
    from transactive._version import __version__

    proc = _run("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"transactive {__version__}\n"
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["simulat"], "unknown command 'simulat' (did you mean 'simulate'?)"),
        (["ledger", "nope"], "unknown command 'nope' (one of: verify, recover, key)"),
        (["--versio"], "unknown option '--versio' (did you mean '--version'?)"),
        (["simulate", "--days", "abc"], "option '--days': 'abc' is not a number"),
        (["simulate", "--households", "2.5"], "option '--households': '2.5' is not a whole number"),
        (["audit", "--markets", "0"], "option '--markets': '0': input should be greater than"),
        (["simulate", "--households"], "option '--households' requires an argument"),
        (["simulate", "a.toml", "b.toml"], "unexpected extra argument"),
        (["opf", "case9", "--json=1"], "option '--json' does not take a value"),
        (["clear"], "missing argument 'orders' (try 'transactive clear --help')"),
        (["ledger", "verify"], "missing argument 'run_dir'"),
        (["opf", "case9", "--post-rating", "x"], "option '--post-rating': expected 'a', 'b'"),
        (["clear", "o.csv", "-o", "foo"], "option '--option': expected KEY=VALUE, got 'foo'"),
        (["audit", "--mechanisms", ","], "option '--mechanisms': name at least one mechanism"),
        (["audit", "--mechanisms", "vcg,vcg"], "option '--mechanisms': 'vcg' is named twice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, args, line):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert line in _one_line_error(captured.err)


@pytest.mark.parametrize("command", ["ledger"])
def test_a_group_without_its_command_prints_its_help_and_exits_2(capsys, command):
    assert main([command]) == 2
    captured = capsys.readouterr()
    assert "verify" in captured.out
    assert "missing command (one of: verify, recover, key)" in _one_line_error(captured.err)


# ------------------------------------------------------------------ help
def _option_blocks(help_text: str) -> dict[str, str]:
    """Option name -> its help text, from click's plain help layout."""
    blocks: dict[str, str] = {}
    current = None
    for text in help_text.split("Options:", 1)[1].splitlines():
        found = re.match(r"  (?:-\w, )?(--[\w-]+)", text)
        if found:
            current = found.group(1)
            blocks[current] = text
        elif current and text.startswith("    "):
            blocks[current] += " " + text.strip()
    return blocks


@pytest.mark.parametrize("command", ["simulate", "compare", "opf", "audit", "clear"])
def test_help_shows_flags_as_flags_and_every_default(capsys, command):
    from typer.main import get_command

    from transactive.cli import app

    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text
    assert not BOX & set(text)
    blocks = _option_blocks(text)
    params = get_command(app).commands[command].params  # type: ignore[attr-defined]
    options = [p for p in params if p.param_type_name == "option"]
    assert sorted(blocks) == sorted([max(p.opts, key=len) for p in options] + ["--help"])
    for p in options:
        name = max(p.opts, key=len)
        if p.is_flag:
            assert re.match(rf"  (-\w, )?{name}  ", blocks[name]), blocks[name]  # no metavar
        else:
            assert "default" in blocks[name], blocks[name]


def test_help_names_the_registered_designs_and_the_scenarios_defaults(capsys):
    from transactive.markets import available
    from transactive.sim.scenario import Scenario

    default = Scenario()
    assert main(["simulate", "--help"]) == 0
    blocks = _option_blocks(capsys.readouterr().out)
    mechanism = blocks["--mechanism"]
    assert all(name in mechanism for name in available())
    assert f"default: the scenario's, {default.market.mechanism}" in mechanism
    assert f"default: the scenario's, {default.community.households})" in blocks["--households"]
    assert f"default: the scenario's, {default.seed})" in blocks["--seed"]
    for command, option in (("compare", "--mechanisms"), ("audit", "--mechanisms"),
                            ("clear", "--mechanism")):
        assert main([command, "--help"]) == 0
        block = _option_blocks(capsys.readouterr().out)[option]
        assert all(name in block for name in available()), (command, block)


@pytest.mark.parametrize("command", [["simulate", "--mechanism"], ["compare", "--mechanisms"],
                                     ["audit", "--mechanisms"], ["clear", "o.csv", "--mechanism"]])
def test_an_unknown_design_is_refused_with_the_known_ones(capsys, command):
    from transactive.markets import available

    assert main([*command, "uniform,nope" if command[-1].endswith("s") else "nope"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "unknown mechanism 'nope'" in line
    assert all(name in line for name in available())


# ------------------------------------------------------------------ paths
@pytest.mark.parametrize("command", [["simulate", "--quiet"], ["compare"], ["audit"]])
def test_an_out_that_is_a_file_or_under_one_is_refused(tmp_path, capsys, command):
    file = tmp_path / "taken"
    file.write_text("x")
    assert main([*command, "--out", str(file)]) == 2
    assert f"option '--out': {file} is a file, not a folder" in _one_line_error(
        capsys.readouterr().err)
    assert main([*command, "--out", str(file / "run")]) == 2
    assert f"{file} is a file" in _one_line_error(capsys.readouterr().err)
    assert file.read_text() == "x"


def test_an_out_in_an_unwritable_place_is_refused(tmp_path, capsys, monkeypatch):
    import transactive.cli as cli

    real = os.access
    monkeypatch.setattr(cli.os, "access",  # as if read-only (tests run as root)
                        lambda path, mode: not mode & os.W_OK and real(path, mode))
    assert main(["audit", "--out", str(tmp_path / "new")]) == 2
    assert f"cannot make {tmp_path / 'new'}: {tmp_path} is not writable" in _one_line_error(
        capsys.readouterr().err)
    assert main(["audit", "--out", str(tmp_path)]) == 2
    assert "permission denied" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("error", "problem"),
    [(PermissionError(13, "Permission denied"), "permission denied"),
     (IsADirectoryError(21, "Is a directory"), "is a directory"),
     (NotADirectoryError(20, "Not a directory"), "not a directory"),
     (FileNotFoundError(2, "No such file or directory"), "no such file or directory"),
     (FileExistsError(17, "File exists"), "file exists")],
)
def test_an_os_error_on_a_users_path_is_one_line_naming_it(tmp_path, capsys, monkeypatch,
                                                          error, problem):
    from transactive.orders import OrderBatch

    path = tmp_path / "orders.csv"
    error.filename = str(path)

    def refuse(cls, p):
        raise error

    monkeypatch.setattr(OrderBatch, "from_csv", classmethod(refuse))
    assert main(["clear", str(path)]) == 2
    assert _one_line_error(capsys.readouterr().err) == f"error: {path}: {problem}"


def test_a_folder_given_as_the_orders_file_is_refused(tmp_path, capsys):
    assert main(["clear", str(tmp_path)]) == 2
    assert str(tmp_path) in _one_line_error(capsys.readouterr().err)


# ------------------------------------------------------------------ output
def _orders(path, rows):
    path.write_text("id,participant,side,price,quantity\n"
                    + "".join(f"{i},{p},{side},{price!r},{q!r}\n"
                              for i, (p, side, price, q) in enumerate(rows)))
    return path


def test_human_output_is_rounded(tmp_path, capsys):
    # the midpoint of [0.05, 0.1] is 0.07500000000000001 in floating point
    csv = _orders(tmp_path / "o.csv", [("a", "buy", 0.1, 0.1), ("b", "buy", 0.1, 0.2),
                                       ("c", "sell", 0.05, 0.3)])
    assert main(["clear", str(csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["price"] == (0.05 + 0.1) / 2 != 0.075
    assert main(["clear", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "price 0.0750" in out
    assert "0.07500000000000001" not in out
    assert not re.search(r"\d\.\d{5,}|\de-?\d", out)  # no long tails, no exponents
    for opf in (["opf", "case9"], ["opf", "case30", "--security", "n-1"]):
        assert main(opf) == 0
        out = capsys.readouterr().out
        assert not re.search(r"\d\.\d{5,}|\de-?\d", out), out


def test_clear_prints_a_bounded_table_and_json_has_every_row(tmp_path, capsys):
    from transactive.cli import MAX_ROWS

    rng = np.random.default_rng(3)
    n = 4_000
    rows = [(f"p{i}", "buy" if i % 2 else "sell", round(float(rng.uniform(0.05, 0.3)), 4),
             round(float(rng.uniform(0.5, 5)), 3)) for i in range(n)]
    csv = _orders(tmp_path / "o.csv", rows)
    assert main(["clear", str(csv), "--json"]) == 0
    traded = len(json.loads(capsys.readouterr().out)["allocations"])
    assert traded > MAX_ROWS
    assert main(["clear", str(csv)]) == 0
    out = capsys.readouterr().out
    body = [r for r in out.splitlines() if re.match(r"│\s*\d+ │", r)]
    assert len(body) == MAX_ROWS
    assert out.rstrip().endswith(f"... and {traded - MAX_ROWS:,} more; use --json for all")


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_undefined_values_are_null(tmp_path, capsys):
    csv = _orders(tmp_path / "o.csv", [("a", "buy", 0.1, 1.0), ("b", "sell", 0.2, 1.0)])
    assert main(["clear", str(csv), "--json"]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["price"] is None  # no trade, no clearing price
    assert (out["volume"], out["allocations"]) == (0.0, [])
    assert main(["clear", str(csv)]) == 0
    assert "no clearing price" in capsys.readouterr().out
    # each payment is finite, but welfare, 1e308 - (-1e308), overflows: null, not Infinity
    big = _orders(tmp_path / "big.csv", [("a", "buy", 1e308, 1.0), ("b", "sell", -1e308, 1.0)])
    assert main(["clear", str(big), "--json"]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["welfare"] is None
    assert out["volume"] == 1.0


def test_an_order_whose_payment_overflows_is_refused_naming_row_and_field(tmp_path, capsys):
    csv = _orders(tmp_path / "o.csv", [("a", "buy", 0.3, 2.0), ("b", "buy", 1e308, 1e10),
                                       ("c", "sell", 0.1, 1.0)])
    assert main(["clear", str(csv), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert _one_line_error(captured.err) == (
        "error: row 1: field 'price': price x quantity must be finite, got 1e+308 x 1e+10")
    from transactive.errors import InputError
    from transactive.orders import OrderBatch

    with pytest.raises(InputError, match="row 0: field 'price'") as info:
        OrderBatch(id=[1], participant=["a"], side=["sell"], price=[-1e300], quantity=[1e9])
    assert (info.value.field, info.value.row) == ("price", 0)


def test_json_to_a_reader_that_goes_away_ends_quietly(tmp_path):
    csv = _orders(tmp_path / "o.csv", [("a", "buy", 0.3, 2.0), ("b", "sell", 0.1, 1.0)])
    with subprocess.Popen([sys.executable, "-m", "transactive.cli", "clear", str(csv),
                           "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # as `| head` does once it has read enough (here: before any write)
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 1
    assert err == ""


def test_help_imports_no_heavy_library():
    code = ("import sys\nfrom transactive.cli import main\nmain(['--help'])\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.splitlines()[-1] == "[]"
