"""The ``transactive`` command line.

User errors (a bad file, field or option) print one line naming the problem
and exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import click
import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from transactive.analysis.metrics import summary
from transactive.analysis.report import write_comparison, write_report
from transactive.errors import InputError, TransactiveError
from transactive.grid.scopf import solve_dcopf
from transactive.markets import registry
from transactive.markets.audit import audit, plot_audit
from transactive.orders import OrderBatch
from transactive.settlement import LEDGER_FILE, verify_run
from transactive.sim.compare import compare
from transactive.sim.engine import SimulationResult, simulate
from transactive.sim.recorder import read_results, write_results
from transactive.sim.scenario import load_scenario

__all__ = ["app", "main"]

app = typer.Typer(
    name="transactive",
    help="Peer-to-peer and transactive electricity markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values parse as JSON where they can (numbers, booleans)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError("--option", f"expected KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def _summary_table(result: SimulationResult, run_dir: Path | None) -> Table:
    s = summary(result)
    table = Table(title=f"transactive — {result.scenario.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("households / intervals", f"{s['households']} / {s['intervals']}"),
        ("market design / strategy", f"{s['mechanism']} / {s['strategy']}"),
        ("consumption / PV", f"{s['load_kwh']:,.0f} kWh / {s['pv_kwh']:,.0f} kWh"),
        ("P2P traded", f"{s['p2p_volume_kwh']:,.1f} kWh ({s['p2p_share_of_load']:.1%} of load)"),
        ("intervals with trade", f"{s['intervals_with_trade']}"),
        ("volume-weighted P2P price", f"{s['volume_weighted_price']:.4f} per kWh"),
        ("community self-sufficiency", f"{s['self_sufficiency']:.1%}"),
        ("bills: utility only -> P2P", f"{s['bill_baseline']:,.2f} -> {s['bill_p2p']:,.2f}"),
        ("savings", f"{s['savings']:,.2f} ({s['savings_share']:.1%})"),
        ("better off / worse off", f"{s['households_better_off']} / {s['households_worse_off']}"),
        ("Gini of gains", f"{s['gini_of_gains']:.3f}"),
        ("simulated in", f"{result.elapsed_s:.2f} s"),
    ]
    if result.settlement is not None:
        st = result.settlement
        rows.insert(-1, ("settled", f"{st.intervals} intervals, {st.transfers:,} transfers, "
                                    f"{'reconciled' if st.reconciled else 'NOT reconciled'}"))
    if run_dir is not None:
        rows.append(("results", str(run_dir)))
    for key, value in rows:
        table.add_row(key, value)
    return table


@app.command("simulate")
def simulate_cmd(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file (default: the "
                                                         "built-in community).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default results/<name>-<time>).")]
    = None,
    households: Annotated[int | None, typer.Option(help="Override community.households.")] = None,
    days: Annotated[float | None, typer.Option(help="Override time.days.")] = None,
    mechanism: Annotated[str | None, typer.Option(help="Override market.mechanism.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Override market.strategy.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Simulate a prosumer community and write its results store and report."""
    sc = load_scenario(scenario).with_overrides(**{
        "community.households": households, "time.days": days,
        "market.mechanism": mechanism, "market.strategy": strategy, "seed": seed,
    })
    run_dir = out or Path("results") / f"{sc.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if quiet:
        result = simulate(sc, run_dir=run_dir)
    else:
        with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("intervals"), TimeElapsedColumn(), console=err_console,
                      transient=True) as bar:
            task = bar.add_task("simulate", total=sc.time.timeline().periods)
            result = simulate(sc, run_dir=run_dir,
                              progress=lambda done, total: bar.update(task, completed=done))
    write_results(result, run_dir)
    write_report(result, run_dir)
    console.print(_summary_table(result, run_dir))
    if result.settlement is not None and not result.settlement.reconciled:
        raise TransactiveError("settlement does not reconcile: "
                               + "; ".join(result.settlement.problems))


@app.command("compare")
def compare_cmd(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file (default: the "
                                                         "built-in community).")] = None,
    mechanisms: Annotated[str, typer.Option(help="Comma-separated mechanism names.")]
    = "uniform,pay_as_bid",
    out: Annotated[Path | None, typer.Option(help="Folder (default results/compare-<time>).")]
    = None,
    households: Annotated[int | None, typer.Option(help="Override community.households.")] = None,
    days: Annotated[float | None, typer.Option(help="Override time.days.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override seed.")] = None,
) -> None:
    """Run one community under several market designs; one report side by side."""
    sc = load_scenario(scenario).with_overrides(**{
        "community.households": households, "time.days": days, "seed": seed,
    })
    names = mechanisms.split(",")
    folder = out or Path("results") / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    runs = compare(sc, names)
    for name, result in runs.items():
        write_results(result, folder / name)
        write_report(result, folder / name)
    path = write_comparison(runs, folder)
    table = Table(title="market designs compared")
    table.add_column("design", style="bold")
    columns = {"p2p_volume_kwh": "traded kWh", "volume_weighted_price": "price/kWh",
               "savings": "savings", "operator_surplus": "operator",
               "households_worse_off": "worse off", "gini_of_gains": "Gini"}
    for label in columns.values():
        table.add_column(label, justify="right")
    for name, r in runs.items():
        stats = summary(r)
        table.add_row(name, *(f"{stats[key]:,.4g}" for key in columns))
    console.print(table)
    console.print(f"wrote {path}")


@app.command("opf")
def opf_cmd(
    case: Annotated[str, typer.Argument(help="Built-in case name or MATPOWER .m file.")],
    security: Annotated[str, typer.Option(help="'none' or 'n-1' (preventive).")] = "none",
    post_rating: Annotated[str, typer.Option(
        help="Post-contingency rating: 'a', 'b', 'c' or a factor on rate A.")] = "c",
    losses: Annotated[bool, typer.Option(
        "--losses", help="Price losses (marginal loss factors from the AC power flow).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Network-constrained clearing: dispatch, LMPs (energy / congestion / loss),
    flows and shadow prices."""
    rating: str | float = post_rating
    with contextlib.suppress(ValueError):
        rating = float(post_rating)
    result = solve_dcopf(case, security=security, post_rating=rating,  # type: ignore[arg-type]
                         losses=losses)
    out = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    binding = [b for b in out["branches"] if b["shadow_price"]]
    lmps = [b["lmp"] for b in out["buses"]]
    console.print(f"[bold]{case}[/]: objective {out['objective']:,.2f}, "
                  f"{len(out['buses'])} buses, LMP {min(lmps):,.2f} .. {max(lmps):,.2f}, "
                  f"{len(binding)} binding branch limits")
    table = Table(title="binding branches")
    for col in ("from_bus", "to_bus", "flow_mw", "limit_mw", "shadow_price"):
        table.add_column(col, justify="right")
    for b in binding:
        table.add_row(*(f"{b[c]:,.4g}" if isinstance(b[c], float) else str(b[c])
                        for c in ("from_bus", "to_bus", "flow_mw", "limit_mw", "shadow_price")))
    if binding:
        console.print(table)


@app.command("audit")
def audit_cmd(
    mechanisms: Annotated[str, typer.Option(help="Comma-separated mechanism names.")]
    = "uniform,pay_as_bid,mcafee,vcg,vickrey",
    markets: Annotated[int, typer.Option(help="Random markets per mechanism.")] = 50,
    buyers: Annotated[int, typer.Option(help="Buyers per market.")] = 8,
    sellers: Annotated[int, typer.Option(help="Sellers per market.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the generated markets.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Folder for audit.csv and audit.svg "
                                                 "(default results/audit-<time>).")] = None,
) -> None:
    """Measure mechanisms' efficiency, individual rationality, budget balance and
    gain from misreporting on generated markets."""
    names = [m.strip() for m in mechanisms.split(",") if m.strip()]
    table = audit(names, rng=np.random.default_rng(seed), n_markets=markets,
                  n_buyers=buyers, n_sellers=sellers)
    folder = out or Path("results") / f"audit-{datetime.now():%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "audit.csv")
    plot_audit(table).savefig(folder / "audit.svg")
    view = Table(title=f"mechanism audit: {markets} markets of {buyers} buyers x {sellers} "
                       f"sellers, seed {seed}")
    view.add_column("measure", style="bold")
    for name in table.index:
        view.add_column(str(name), justify="right")
    for col in table.columns:
        view.add_row(str(col), *(f"{v:.4g}" if isinstance(v, float) else str(v)
                                 for v in table[col]))
    console.print(view)
    console.print(f"wrote {folder / 'audit.csv'} and {folder / 'audit.svg'}")


ledger_app = typer.Typer(help="The settlement ledger of a run.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by simulate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-check a run's journal and ledger from scratch: hash chain, signatures,
    debits = credits, and that replaying the journal reproduces the ledger."""
    if not (run_dir / LEDGER_FILE).is_file():
        raise InputError("run_dir", f"no {LEDGER_FILE} in {run_dir}: the run was not settled")
    report = verify_run(run_dir)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        console.print(str(report), highlight=False)
    if not report.is_ok:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by simulate.")],
) -> None:
    """Re-render a run's report.html from its results store."""
    path = write_report(read_results(run_dir), run_dir)
    console.print(f"wrote {path}")


@app.command("clear")
def clear_cmd(
    orders: Annotated[Path, typer.Argument(help="CSV: id, participant, side, price, quantity"
                                                "[, node].")],
    mechanism: Annotated[str, typer.Option(help="Registered mechanism.")] = "uniform",
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="Mechanism option KEY=VALUE (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Clear one sealed-bid auction from a file of orders."""
    batch = OrderBatch.from_csv(orders)
    result = registry.clear(batch, mechanism, **_parse_options(option or []))
    out = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    table = Table(title=f"{mechanism}: price {out['price']}, volume {out['volume']:g}, "
                        f"welfare {out['welfare']:g}")
    for col in ("id", "participant", "side", "quantity", "price", "payment"):
        table.add_column(col, justify="right")
    for row in out["allocations"]:
        table.add_row(*(f"{row[c]:g}" if isinstance(row[c], float) else str(row[c])
                        for c in ("id", "participant", "side", "quantity", "price", "payment")))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and exit 2."""
    try:
        code = app(args=argv, standalone_mode=False)  # a typer.Exit comes back as its code
    except TransactiveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True,
                          soft_wrap=True)
        return 2
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
