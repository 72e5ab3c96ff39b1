"""The ``transactive`` command line.

Mistakes never end in a traceback. A usage error (no command, an unknown
command or option, a word where a number goes, a missing argument), bad input
(a file, a field, an option value) and a path that cannot be read or written
each print one line on stderr, ``error: ...``, and exit with status 2.
``transactive`` with no command prints the help on stdout, the one line on
stderr, and exits 2, as click does for a missing command: a script that forgot
the command fails. ``transactive --version`` prints the version and exits 0.

Human output is rounded (money to 2 decimals, prices to 4, energy to 3; noise
below the last digit prints as 0) and bounded (``clear`` lists at most
:data:`MAX_ROWS` allocations). ``--json`` output is strict JSON (RFC 8259): no
NaN or infinity; a value that is undefined, such as the price of a market that
did not clear, is ``null``.

Each command imports the layers it needs when it runs, so ``--help`` stays
light; the option help that names the registered designs or the default
scenario's values is filled in when that help is shown.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from typer import _click  # typer 0.29 vendors click: its parser raises these errors
from typer._click import exceptions as usage
from typer.core import TyperCommand, TyperGroup

from transactive._version import __version__
from transactive.errors import InputError, MissingExtraError, TransactiveError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["MAX_ROWS", "app", "main"]

MAX_ROWS = 20
"""Most allocation rows ``clear`` prints without ``--json``."""


class _Command(TyperCommand):
    """A command whose option help may hold ``{fact}`` fields (the registered
    designs, the default scenario's values), filled in only when its help is
    shown: learning them imports the markets and the scenario schema."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        facts = _help_facts()
        for param in self.params:
            text = getattr(param, "help", None)
            if text:
                param.help = text.format_map(facts)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def _plain_params(params: list[_click.Parameter]) -> None:
    """Parse plain ``str`` parameters and flags without pydantic.

    typer 0.29 checks each parameter value with a pydantic ``TypeAdapter``
    that it builds when a command runs (even for ``--help`` when it is not
    given); importing pydantic for that alone costs ~80 ms. A ``str`` or a
    flag needs no conversion, so these get typer's own pass-through check.
    With another typer (other internals) nothing is changed.
    """
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:  # pragma: no cover - another typer
        return
    for param in params:
        desc = getattr(param, "type_descriptor", None)
        if desc is None or getattr(param, "_runtime_param", False) is not None:
            continue
        flag = desc.annotation is bool and getattr(param, "is_flag", False)
        if (desc.annotation is str or flag) and desc.parameter_info.parser is None:
            param._runtime_param = PassThroughRuntimeParam(  # type: ignore[attr-defined]
                parameter_info=desc.parameter_info, annotation=desc.annotation)


class _Group(TyperGroup):
    """The root: its flags (``--version``, ``--help``) parsed without pydantic."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        _plain_params(self.get_params(ctx))
        return super().parse_args(ctx, args)


class _TextCommand(_Command):
    """A command whose parameters are plain ``str`` and flags, parsed without
    pydantic (``opf``: a guard test keeps it so)."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        _plain_params(self.get_params(ctx))
        return super().parse_args(ctx, args)


def _help_facts() -> dict[str, str]:
    """The registered designs and the default scenario's values, for help text."""
    from transactive.markets import available
    from transactive.sim.scenario import MarketConfig, Scenario

    default = Scenario()
    strategy = MarketConfig.model_fields["strategy"].annotation
    return {
        "designs": ", ".join(available()),
        "strategies": ", ".join(get_args(strategy)),
        "households": str(default.community.households),
        "days": f"{default.time.days:g}",
        "mechanism": default.market.mechanism,
        "strategy": default.market.strategy,
        "seed": str(default.seed),
    }


app = typer.Typer(
    name="transactive",
    cls=_Group,
    help="Peer-to-peer and transactive electricity markets.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags as flags, no boxes
)
@functools.cache
def _out() -> Console:
    """Standard output for people (rich is imported only when something prints)."""
    from rich.console import Console

    return Console(highlight=False)


@functools.cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _print_help_and_fail(ctx: typer.Context) -> None:
    """No command given: the help on stdout, then a usage error."""
    sys.stdout.write(ctx.get_help() + "\n")
    commands = ", ".join(ctx.command.list_commands(ctx))  # type: ignore[attr-defined]
    ctx.fail(f"missing command (one of: {commands})")


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"transactive {__version__}\n")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_show_version,
        is_eager=True)] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        _print_help_and_fail(ctx)


# ------------------------------------------------------------------ formatting
def _fixed(value: float | None, digits: int) -> str:
    """``value`` to ``digits`` decimals with thousands separators; noise below
    the last digit prints as 0 (never ``-0.00``), an undefined value as ``-``.

    Examples
    --------
    >>> _fixed(0.07500000000000001, 4), _fixed(-5.2e-15, 2), _fixed(12345.678, 2)
    ('0.0750', '0.00', '12,345.68')
    >>> _fixed(float("nan"), 2), _fixed(None, 2)
    ('-', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{round(value, digits) + 0.0:,.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _print_json(data: Any) -> None:
    """Strict JSON on stdout; a NaN or infinity left in ``data`` is a bug here."""
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


# ------------------------------------------------------------------ checking
def _known_design(name: str, option: str) -> str:
    from transactive.markets import available

    if name not in available():
        raise InputError(option, f"unknown mechanism {name!r}; available: "
                                 f"{', '.join(available())}")
    return name


def _designs(names: str, option: str) -> list[str]:
    """Comma-separated design names: each registered, none twice, at least one."""
    listed = [n.strip() for n in names.split(",") if n.strip()]
    if not listed:
        raise InputError(option, "name at least one mechanism")
    for i, name in enumerate(listed):
        if name in listed[:i]:
            raise InputError(option, f"{name!r} is named twice")
        _known_design(name, option)
    return listed


def _writable_folder(path: Path, option: str) -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be
    made: its nearest existing ancestor must be a folder we may write in."""
    if path.exists() and not path.is_dir():
        raise InputError(option, f"{path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(option, f"cannot make {path}: {existing} is a file")
    if not path.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(option, f"cannot make {path}: {existing} is not writable")
    if path.exists() and not os.access(path, os.W_OK | os.X_OK):
        raise InputError(option, f"cannot write in {path}: permission denied")
    return path


def _timestamped(prefix: str) -> Path:
    """``results/<prefix>-<time>``, the prefix made safe as a folder name."""
    from transactive.sim.rundir import run_folder_name

    return Path("results") / f"{run_folder_name(prefix)}-{datetime.now():%Y%m%d-%H%M%S}"


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


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{_fixed(100 * value, 1)} %"


def _summary_table(s: dict[str, Any], run_dir: Path | None, elapsed_s: float) -> Table:
    """The summary of :func:`transactive.analysis.metrics.summary` for people."""
    cur = s["currency"]
    from rich.table import Table

    table = Table(title=f"transactive — {s['name']} ({s['mechanism']} market, "
                        f"{s['strategy']} bids)", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right", overflow="fold")
    days = f"{s['days']:g}"
    pool = s["pool_lp_pnl"]
    source = " (through the substation)" if s["mechanism"] == "network" else (
        " (through the pool)" if pool is not None else "")
    rows = [
        ("households / days / intervals", f"{s['households']} / {days} / {s['intervals']}"),
        ("consumption / PV", f"{_fixed(s['load_kwh'], 1)} kWh / {_fixed(s['pv_kwh'], 1)} kWh"),
        ("peer-to-peer (household to household)",
         f"{_fixed(s['p2p_kwh'], 1)} kWh ({_pct(s['p2p_share_of_load'])} of consumption)"),
        (f"from / to the utility{source}",
         f"{_fixed(s['utility_import_kwh'], 1)} kWh / {_fixed(s['utility_export_kwh'], 1)} kWh"),
        ("market price: buyers paid / sellers got",
         f"{_fixed(s['buyer_price_per_kwh'], 4)} / {_fixed(s['seller_price_per_kwh'], 4)} "
         f"{cur}/kWh"),
        ("bills: utility only -> market",
         f"{_fixed(s['bills_baseline'], 2)} -> {_fixed(s['bills_market'], 2)} {cur}"),
        ("savings", f"{_fixed(s['savings'], 2)} {cur} ({_pct(s['savings_share'])} of the "
                    f"{_fixed(s['baseline_spending'], 2)} spent with the utility alone)"),
        ("= utility revenue lost - operator surplus",
         f"{_fixed(s['utility_revenue_baseline'] - s['utility_revenue_market'], 2)} - "
         f"{_fixed(s['operator_surplus'], 2)} {cur}"),
    ]
    if pool is not None:
        rows.append(("  - pool providers' gain (opening value)",
                     f"{_fixed(pool, 2)} {cur} (of {_fixed(s['pool_opening_value'], 2)})"))
    rows += [
        ("carbon charge (apart from the bills)", f"{_fixed(s['carbon_cost'], 2)} {cur}"),
        ("PV curtailed: market / baseline",
         f"{_fixed(s['curtailed_kwh'], 1)} / {_fixed(s['baseline_curtailed_kwh'], 1)} kWh"),
        ("load shed: market / baseline",
         f"{_fixed(s['unserved_kwh'], 1)} / {_fixed(s['baseline_unserved_kwh'], 1)} kWh"),
        ("peak import", f"{_fixed(s['peak_import_kw'], 1)} kW"),
        ("self-sufficiency", _pct(s["self_sufficiency"])),
        ("better off / worse off (by a cent or more)",
         f"{s['households_better_off']} / {s['households_worse_off']}"),
        ("Gini of gains", "no gains" if s["gini_gains"] is None else _fixed(s["gini_gains"], 3)),
    ]
    st = s["settlement"]
    if st is not None:
        rows.append(("settled", f"{st['intervals']} intervals, {st['transfers']:,} transfers, "
                                f"{'reconciled' if st['reconciled'] else 'NOT reconciled'}"))
    rows.append(("simulated in", f"{elapsed_s:.2f} s"))
    if run_dir is not None:
        rows.append(("results", str(run_dir)))
    for key, value in rows:
        table.add_row(key, value)
    for note in s["warnings"]:
        table.add_row("[yellow]warning[/]", f"[yellow]{_escape(note)}[/]")
    return table


# ------------------------------------------------------------------ commands
_SCENARIO_HELP = "Scenario TOML file (default: the built-in community)."
# the overrides simulate and compare share ({...}: the default scenario's values)
_Households = Annotated[int | None, typer.Option(
    metavar="N", help="Override community.households (default: the scenario's, "
                      "{households}).")]
_Days = Annotated[float | None, typer.Option(
    metavar="DAYS", help="Override time.days (default: the scenario's, {days}).")]
_Seed = Annotated[int | None, typer.Option(
    metavar="N", help="Override seed (default: the scenario's, {seed}).")]


@app.command("simulate", cls=_Command,
             short_help="Simulate a community: results store, report, summary.")
def simulate_cmd(
    scenario: Annotated[Path | None, typer.Argument(help=_SCENARIO_HELP,
                                                    show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Run folder (default: results/<name>-<time>).")] = None,
    households: _Households = None,
    days: _Days = None,
    mechanism: Annotated[str | None, typer.Option(
        metavar="NAME", help="Override market.mechanism (default: the scenario's, "
                             "{mechanism}); one of {designs}.")] = None,
    strategy: Annotated[str | None, typer.Option(
        metavar="NAME", help="Override market.strategy (default: the scenario's, "
                             "{strategy}); one of {strategies}.")] = None,
    seed: _Seed = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the run in a non-empty --out folder (only a folder "
                            "holding an earlier run).")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object (no progress bar).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Simulate a prosumer community and write its results store and report."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from transactive.analysis.metrics import summary
    from transactive.analysis.report import write_report
    from transactive.sim.engine import simulate
    from transactive.sim.scenario import load_scenario

    if out is not None:
        _writable_folder(out, "--out")
    if mechanism is not None:
        _known_design(mechanism, "--mechanism")
    sc = load_scenario(scenario).with_overrides(**{
        "community.households": households, "time.days": days,
        "market.mechanism": mechanism, "market.strategy": strategy, "seed": seed,
    })
    run_dir = out or _timestamped(sc.name)
    if quiet or as_json:
        result = simulate(sc, run_dir=run_dir, overwrite=overwrite)
    else:
        with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("intervals"), TimeElapsedColumn(), console=_err(),
                      transient=True) as bar:
            task = bar.add_task("simulate", total=sc.time.timeline().periods)
            result = simulate(sc, run_dir=run_dir, overwrite=overwrite,
                              progress=lambda done, total: bar.update(task, completed=done))
    write_report(result, run_dir)
    figures = summary(result)
    if as_json:
        _print_json({**figures, "run_dir": str(run_dir)})
    else:
        _out().print(_summary_table(figures, run_dir, result.elapsed_s))
    if result.settlement is not None and not result.settlement.reconciled:
        raise TransactiveError("settlement does not reconcile: "
                               + "; ".join(result.settlement.problems))


@app.command("compare", cls=_Command,
             short_help="One community under several market designs, side by side.")
def compare_cmd(
    scenario: Annotated[Path | None, typer.Argument(help=_SCENARIO_HELP,
                                                    show_default=False)] = None,
    mechanisms: Annotated[str, typer.Option(
        metavar="NAMES", help="Comma-separated mechanisms, of {designs}.")]
    = "uniform,pay_as_bid",
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Folder (default: results/compare-<time>).")] = None,
    households: _Households = None,
    days: _Days = None,
    seed: _Seed = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier comparison in a non-empty --out folder.")]
    = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print each design's summary as one JSON object.")] = False,
) -> None:
    """Run one community under several market designs; one report side by side."""
    from transactive.analysis.metrics import summary
    from transactive.analysis.report import write_comparison, write_report
    from transactive.sim.compare import compare
    from transactive.sim.scenario import load_scenario

    names = _designs(mechanisms, "--mechanisms")
    if out is not None:
        _writable_folder(out, "--out")
    sc = load_scenario(scenario).with_overrides(**{
        "community.households": households, "time.days": days, "seed": seed,
    })
    folder = out or _timestamped("compare")
    runs = compare(sc, names, run_dir=folder, overwrite=overwrite)
    for name, result in runs.items():
        write_report(result, folder / name)
    path = write_comparison(runs, folder)
    figures = {name: summary(r) for name, r in runs.items()}
    if as_json:
        _print_json(figures)
        return
    cur = sc.tariff.currency
    from rich.table import Table

    table = Table(title=f"market designs compared: {sc.community.households} households, "
                        f"{sc.time.days:g} days")
    rows = {"p2p_kwh": ("peer-to-peer (kWh)", 1),
            "buyer_price_per_kwh": (f"buyers paid ({cur}/kWh)", 4),
            "seller_price_per_kwh": (f"sellers got ({cur}/kWh)", 4),
            "savings": (f"savings ({cur})", 2), "savings_share": ("savings share", None),
            "operator_surplus": (f"operator surplus ({cur})", 2),
            "pool_lp_pnl": (f"pool providers ({cur})", 2),
            "curtailed_kwh": ("PV curtailed (kWh)", 1),
            "households_worse_off": ("households worse off", 0),
            "gini_gains": ("Gini of gains", 3)}
    table.add_column("figure", style="bold")
    for name in figures:
        table.add_column(name, justify="right", overflow="fold")
    for key, (label, digits) in rows.items():
        cells = []
        for f in figures.values():
            value = f[key]
            if key == "gini_gains" and value is None:
                cells.append("no gains")
            elif digits is None:
                cells.append(_pct(value))
            elif digits == 0:
                cells.append(str(value))
            else:
                cells.append(_fixed(value, digits))
        table.add_row(label, *cells)
    _out().print(table)
    for name, f in figures.items():
        for note in f["warnings"]:
            _out().print(f"[yellow]{name}: {_escape(note)}[/]")
    _out().print(f"wrote {path}")


@app.command("opf", cls=_TextCommand,
             short_help="DC-OPF of a case: LMPs and their parts, flows, shadow prices.")
def opf_cmd(
    case: Annotated[str, typer.Argument(help="Built-in case name or MATPOWER .m file.")],
    security: Annotated[str, typer.Option(metavar="KIND",
                                          help="'none' or 'n-1' (preventive).")] = "none",
    post_rating: Annotated[str, typer.Option(
        metavar="RATING", help="Post-contingency rating: 'a', 'b', 'c' or a factor on rate A.")]
    = "c",
    losses: Annotated[bool, typer.Option(
        "--losses", help="Price losses (marginal loss factors from the AC power flow).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Network-constrained clearing: dispatch, LMPs (energy / congestion / loss),
    flows and shadow prices."""
    rating: str | float = post_rating
    if post_rating not in ("a", "b", "c"):
        try:
            rating = float(post_rating)
        except ValueError:
            raise InputError("--post-rating", f"expected 'a', 'b', 'c' or a number, "
                                              f"got {post_rating!r}") from None
    from transactive.grid.scopf import solve_dcopf

    result = solve_dcopf(case, security=security, post_rating=rating,  # type: ignore[arg-type]
                         losses=losses)
    out = result.to_dict()
    if as_json:
        _print_json({**out, "notes": list(result.notes)})
        return
    for note in result.notes:  # e.g. which bus became the reference
        _err().print(f"note: {_escape(note)}", highlight=False)
    binding = [b for b in out["branches"] if b["shadow_price"]]
    lmps = [b["lmp"] for b in out["buses"]]
    _out().print(f"[bold]{case}[/]: objective {_fixed(out['objective'], 2)}, "
                  f"{len(out['buses'])} buses, LMP {_fixed(min(lmps), 4)} .. "
                  f"{_fixed(max(lmps), 4)}, {len(binding)} binding branch limits")
    if binding:
        from rich.table import Table

        table = Table(title="binding branches")
        for col in ("from_bus", "to_bus", "flow_mw", "limit_mw", "shadow_price"):
            table.add_column(col, justify="right")
        for b in binding:
            table.add_row(str(b["from_bus"]), str(b["to_bus"]), _fixed(b["flow_mw"], 2),
                          _fixed(b["limit_mw"], 2), _fixed(b["shadow_price"], 4))
        _out().print(table)


def _agent_rows(net: Any, specs: list[str]) -> list[int]:
    """Generator rows from ``--agent`` values: a row (0-based, the gen table's
    order) or ``bus:N`` (every in-service generator at bus N)."""
    rows: list[int] = []
    for spec in specs:
        text = spec.strip().lower()
        if text.startswith("bus:") and text[4:].strip().isdigit():
            number = int(text[4:])
            at = (net.column("gen", "bus") == number) & net.column("gen", "in_service")
            if not at.any():
                raise InputError("--agent", f"no generator in service at bus {number}")
            rows.extend(int(g) for g in at.nonzero()[0])
        elif text.isdigit():
            rows.append(int(text))
        else:
            raise InputError("--agent", f"expected a generator row (0-based) or bus:N, "
                                        f"got {spec!r}")
    return rows


@app.command("strategic", short_help="A generator owner's best offer against the DC-OPF "
                                     "clearing, and market-power measures.")
def strategic_cmd(
    case: Annotated[str, typer.Argument(help="Built-in case name or MATPOWER .m file.")],
    agent: Annotated[list[str], typer.Option(
        metavar="GEN", help="The agent's generator: its row in the case's gen table "
                            "(0-based) or bus:N for every generator at bus N; repeat "
                            "for an owner of several.")],
    price_cap: Annotated[float, typer.Option(
        help="Highest offer and value of lost load, per MWh.")] = 1000.0,
    penalty: Annotated[float | None, typer.Option(
        help="Price of exceeding a branch limit, per MW (default: the price cap).",
        show_default=False)] = None,
    blocks: Annotated[int, typer.Option(help="Offer steps of a quadratic cost.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The agent's profit-maximising step offer anticipating the network-
    constrained clearing (bilevel, solved as one MILP with HiGHS), the prices
    it moves, and the Lerner index, HHI and residual supply index."""
    from transactive.grid.cases import load_case
    from transactive.markets.strategic import strategic_offer

    net = load_case(case)
    options = {"price_cap_per_mwh": "--price-cap", "penalty_per_mwh": "--penalty",
               "blocks": "--blocks", "agent": "--agent"}
    try:
        out = strategic_offer(net, _agent_rows(net, agent), price_cap_per_mwh=price_cap,
                              penalty_per_mwh=penalty, blocks=blocks)
    except InputError as exc:  # name the option, not the library's argument
        if exc.field not in options:
            raise
        raise InputError(options[exc.field], exc.problem) from None
    d = out.to_dict()
    if as_json:
        _print_json(d)
        return
    from rich.table import Table

    gens = ", ".join(str(g) for g in d["agent"])
    _out().print(f"[bold]{case}[/]: agent (generators {gens}) profit "
                 f"{_fixed(d['profit'], 2)} per h, truthful {_fixed(d['truthful_profit'], 2)}; "
                 f"MILP {out.n_binaries} binaries, {out.solve_time_s:.2f} s")
    table = Table(title="offer")
    for col in ("gen", "bus", "p_mw", "cost_per_mwh", "offer_per_mwh", "markup_per_mwh"):
        table.add_column(col, justify="right")
    for o in d["offers"]:
        table.add_row(str(o["gen"]), str(o["bus"]), _fixed(o["p_mw"], 3),
                      _fixed(o["cost_per_mwh"], 4), _fixed(o["offer_per_mwh"], 4),
                      _fixed(o["markup_per_mwh"], 4))
    _out().print(table)
    moved = sorted((b for b in d["buses"] if abs(b["lmp"] - b["truthful_lmp"]) > 1e-6),
                   key=lambda b: -abs(b["lmp"] - b["truthful_lmp"]))
    if moved:
        table = Table(title=f"prices moved ({len(moved)} buses"
                            f"{f', first {MAX_ROWS}' if len(moved) > MAX_ROWS else ''})")
        for col in ("bus", "truthful_lmp", "lmp", "change"):
            table.add_column(col, justify="right")
        for b in moved[:MAX_ROWS]:
            table.add_row(str(b["bus"]), _fixed(b["truthful_lmp"], 4), _fixed(b["lmp"], 4),
                          _fixed(b["lmp"] - b["truthful_lmp"], 4))
        _out().print(table)
    else:
        _out().print("no price moved")
    agent_rsi = next(o for o in d["owners"] if o["owner"] == "agent")
    net_rsi = agent_rsi["network_rsi"]
    lerner, hhi, hhi_0 = d["agent_lerner"], d["hhi"] or 0.0, d["truthful_hhi"] or 0.0
    pivotal = [o["owner"] for o in d["owners"]
               if o["rsi"] < 1 or (o["network_rsi"] is not None and o["network_rsi"] < 1 - 1e-9)]
    _out().print(f"agent Lerner index {'n/a' if lerner is None else _fixed(lerner, 4)}; "
                 f"HHI {_fixed(hhi, 0)} (truthful {_fixed(hhi_0, 0)}); agent RSI "
                 f"{_fixed(agent_rsi['rsi'], 3)} by capacity, "
                 f"{'n/a' if net_rsi is None else _fixed(net_rsi, 3)} through the network; "
                 f"pivotal: {', '.join(pivotal[:MAX_ROWS]) or 'none'}")
    if d["shed_mw"] > 1e-6 or d["relaxed_mw"] > 1e-6:
        _out().print(f"note: {_fixed(d['shed_mw'], 3)} MW of load shed, "
                     f"{_fixed(d['relaxed_mw'], 3)} MW of branch limits exceeded")


@app.command("audit", cls=_Command,
             short_help="Audit mechanisms on generated markets.")
def audit_cmd(
    mechanisms: Annotated[str, typer.Option(
        metavar="NAMES", help="Comma-separated mechanisms, of {designs}.")]
    = "uniform,pay_as_bid,mcafee,vcg,vickrey",
    markets: Annotated[int, typer.Option(metavar="N", min=1,
                                         help="Random markets per mechanism.")] = 50,
    buyers: Annotated[int, typer.Option(metavar="N", min=1, help="Buyers per market.")] = 8,
    sellers: Annotated[int, typer.Option(metavar="N", min=1, help="Sellers per market.")] = 8,
    seed: Annotated[int, typer.Option(metavar="N", min=0,
                                      help="Seed of the generated markets.")] = 0,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Folder for audit.csv and audit.svg "
                            "(default: results/audit-<time>).")] = None,
) -> None:
    """Measure mechanisms' efficiency, individual rationality, budget balance and
    gain from misreporting on generated markets."""
    from transactive.markets.audit import audit, plot_audit

    names = _designs(mechanisms, "--mechanisms")
    folder = _writable_folder(out or _timestamped("audit"), "--out")
    import numpy as np

    table = audit(names, rng=np.random.default_rng(seed), n_markets=markets,
                  n_buyers=buyers, n_sellers=sellers)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "audit.csv")
    plot_audit(table).savefig(folder / "audit.svg")
    from rich.table import Table

    view = Table(title=f"mechanism audit: {markets} markets of {buyers} buyers x {sellers} "
                       f"sellers, seed {seed}")
    view.add_column("measure", style="bold")
    for name in table.index:
        view.add_column(str(name), justify="right")
    for col in table.columns:
        view.add_row(str(col), *(_fixed(v, 4) if isinstance(v, float) else str(v)
                                 for v in table[col]))
    _out().print(view)
    _out().print(f"wrote {folder / 'audit.csv'} and {folder / 'audit.svg'}")


ledger_app = typer.Typer(help="The settlement ledger of a run.", rich_markup_mode=None)
app.add_typer(ledger_app, name="ledger")


@ledger_app.callback(invoke_without_command=True)
def _ledger(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        _print_help_and_fail(ctx)


_RunDir = Annotated[Path, typer.Argument(help="A run folder written by simulate.")]
_Operator = Annotated[str | None, typer.Option(
    metavar="PUBKEY_HEX_OR_FILE", show_default=False,
    help="The operator's public key that must sign the journal's checkpoints: 64 hex "
         "digits or a file holding them (default: the local operator key's; "
         "`transactive ledger key` prints it).")]


def _settled(run_dir: Path) -> None:
    from transactive.settlement import LEDGER_FILE

    if not (run_dir / LEDGER_FILE).is_file():
        raise InputError("run_dir", f"no {LEDGER_FILE} in {run_dir}: the run was not settled")


@ledger_app.command("verify", short_help="Re-check a run's journal and ledger.")
def ledger_verify_cmd(
    run_dir: _RunDir,
    operator: _Operator = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-check a run's journal and ledger from scratch: hash chain, signatures,
    the operator's checkpoints, debits = credits, and that replaying the
    journal reproduces the ledger."""
    from transactive.settlement import verify_run

    _settled(run_dir)
    report = verify_run(run_dir, operator)
    if as_json:
        _print_json(report.to_dict())
    else:
        _out().print(str(report))
    if not report.is_ok:
        raise typer.Exit(1)


@ledger_app.command("recover", short_help="Finish a run's settlement that was interrupted.")
def ledger_recover_cmd(
    run_dir: _RunDir,
    operator: _Operator = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Finish the settlement of a run stopped while it settled (the journal
    ahead of the ledger, or its last record cut short): sign what the journal
    holds after its last checkpoint with the local operator key, commit it,
    then verify. A damaged folder is refused, unchanged."""
    from transactive.settlement import recover_run

    _settled(run_dir)
    before, after = recover_run(run_dir, operator)
    if as_json:
        _print_json({"before": before.to_dict(), "after": after.to_dict()})
    else:
        _out().print("nothing to recover: " + str(after) if before.is_ok else
                     f"recovered ({before.verdict.lower()} before):\n{after}")
    if not after.is_ok:
        raise typer.Exit(1)


@ledger_app.command("key", short_help="Print the local operator's public key.")
def ledger_key_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the public key of the local operator key, which signs the
    journals of the runs settled here, and where the key is kept (made on
    first use). Give the public key to whoever verifies the runs elsewhere
    (`transactive ledger verify RUN_DIR --operator KEY`)."""
    from transactive.settlement._signing import public_key_hex
    from transactive.settlement.operator import default_key_path, operator_key

    path = default_key_path()
    key = public_key_hex(operator_key(path))
    if as_json:
        _print_json({"public_key": key, "path": str(path)})
    else:
        sys.stdout.write(f"operator public key  {key}\nprivate key file     {path}\n")


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by simulate.")],
) -> None:
    """Re-render a run's report.html from its results store."""
    from transactive.analysis.report import write_report
    from transactive.sim.recorder import read_results

    path = write_report(read_results(run_dir), run_dir)
    _out().print(f"wrote {path}")


@app.command("clear", cls=_Command)
def clear_cmd(
    orders: Annotated[Path, typer.Argument(help="CSV: id, participant, side, price, quantity"
                                                "[, node].")],
    mechanism: Annotated[str, typer.Option(metavar="NAME",
                                           help="Mechanism, one of {designs}.")] = "uniform",
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE",
        help="Mechanism option, repeatable (default: the mechanism's own).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every allocation).")]
    = False,
) -> None:
    """Clear one sealed-bid auction from a file of orders."""
    from transactive.markets import registry
    from transactive.orders import BUY, OrderBatch

    _known_design(mechanism, "--mechanism")
    options = _parse_options(option or [])
    batch = OrderBatch.from_csv(orders)
    result = registry.clear(batch, mechanism, **options)
    if as_json:
        _print_json(result.to_dict())
        return
    traded = (result.accepted > 0).nonzero()[0]
    price = (f"price {_fixed(result.clearing_price, 4)}" if math.isfinite(result.clearing_price)
             else "no clearing price")
    from rich.table import Table

    table = Table(title=f"{mechanism}: {price}, volume {_fixed(result.volume, 3)}, "
                        f"welfare {_fixed(result.welfare, 2)}")
    for col in ("id", "participant", "side", "quantity", "price", "payment"):
        table.add_column(col, justify="right")
    o = result.orders
    for i in traded[:MAX_ROWS]:
        table.add_row(str(o.id[i]), str(o.participant[i]), "buy" if o.side[i] == BUY else "sell",
                      _fixed(result.accepted[i], 3), _fixed(result.price[i], 4),
                      _fixed(result.payment[i], 2))
    _out().print(table)
    if traded.size > MAX_ROWS:
        _out().print(f"... and {traded.size - MAX_ROWS:,} more; use --json for all")


@app.command("learn", cls=_Command,
             short_help="Train a learning storage bidder; compare it with others.")
def learn_cmd(
    scenario: Annotated[Path | None, typer.Argument(help=_SCENARIO_HELP,
                                                    show_default=False)] = None,
    episodes: Annotated[int, typer.Option(metavar="N", min=1,
                                          help="Training days (episodes).")] = 300,
    seed: Annotated[int, typer.Option(metavar="S", min=0, help="Seed of the training days, "
                                      "the exploration and the evaluation days.")] = 0,
    evaluation_days: Annotated[int, typer.Option(
        metavar="N", min=2, help="Seeded days each bidder is evaluated on.")] = 30,
    mechanism: Annotated[str, typer.Option(
        metavar="NAME", help="The double auction the storage owner bids into (one that "
                             "clears on orders alone), of {designs}.")] = "uniform",
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Folder for report.html and summary.json "
                            "(default: results/learn-<time>).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
) -> None:
    """Train a Q-learning storage owner in a scenario's community market (its
    households bid by the scenario's strategy) and compare its profit per day
    with truthful and zero-intelligence bidders in its seat, on the same
    seeded days: mean and 95 % interval, report with learning curves."""
    from transactive.rl.learn import learn
    from transactive.rl.report import write_learn_report
    from transactive.sim.scenario import load_scenario

    _known_design(mechanism, "--mechanism")
    folder = _writable_folder(out or _timestamped("learn"), "--out")
    sc = load_scenario(scenario)
    result = learn(sc, mechanism=mechanism, episodes=episodes, seed=seed,
                   evaluation_days=evaluation_days)
    report, summary_file = write_learn_report(result, folder)
    s = result.summary()
    if as_json:
        _print_json({**s, "report": str(report), "summary_file": str(summary_file)})
        return
    from rich.table import Table

    cur = s["currency"]
    table = Table(title=f"learning to bid: {s['scenario']} ({s['households']} households, "
                        f"{s['rivals']} bids, {s['mechanism']} market), {episodes} episodes")
    for col in ("bidder", f"profit per day ({cur})", "95 % interval",
                f"learned minus it ({cur})", "95 % interval"):
        table.add_column(col, justify="right")
    for name, ci in s["profit_per_day"].items():
        diff = s["learned_minus"].get(name)
        table.add_row(name, _fixed(ci["mean"], 2), f"{_fixed(ci['ci_low'], 2)} to "
                      f"{_fixed(ci['ci_high'], 2)}",
                      "" if diff is None else _fixed(diff["mean"], 2),
                      "" if diff is None else f"{_fixed(diff['ci_low'], 2)} to "
                                              f"{_fixed(diff['ci_high'], 2)}")
    _out().print(table)
    _out().print(f"wrote {report} and {summary_file}")


# ------------------------------------------------------------------ entry point
@app.command("serve", short_help="Run the live exchange: HTTP API and dashboard.")
def serve_cmd(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data: Annotated[Path, typer.Option(help="Data folder (journal, ledger); an existing "
                                             "one is recovered.")] = Path("exchange-data"),
    config: Annotated[Path | None, typer.Option(help="exchange.toml (mode, mechanism, gate "
                                                     "period, limits, breaker, tariff).",
                                                show_default=False)] = None,
    operator_key: Annotated[Path | None, typer.Option(
        help="The operator's key file (default: the local operator key).",
        show_default=False)] = None,
) -> None:
    """Run the live exchange on HOST:PORT until Ctrl-C: the dashboard at /, the
    API documented at /docs. Every accepted command is journaled in DATA before
    it is answered; on stop the trial's evaluation is written to
    DATA/trial_report.html, and `transactive ledger verify DATA` checks the record."""
    import socket

    from transactive.server.config import load_config
    from transactive.settlement._signing import public_key_hex
    from transactive.settlement.operator import operator_key as load_operator_key

    cfg = load_config(config)
    key = load_operator_key(operator_key)
    try:
        import uvicorn

        from transactive.server.app import create_app
    except ImportError:
        raise MissingExtraError("fastapi", "server") from None
    with socket.socket() as probe:  # a port in use is one line, not uvicorn's log
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError("--port", f"cannot listen on {host}:{port}: "
                             f"{(exc.strerror or str(exc)).lower()}") from None
    app_ = create_app(_writable_folder(data, "--data"), cfg, operator_key=key)
    _out().print(f"exchange ({cfg.mode}, gate every {cfg.gate_period_s:g} s) on "
                 f"http://{host}:{port}/ ; data in {data}; operator "
                 f"{public_key_hex(key)[:16]}... ; Ctrl-C stops it")
    import logging

    # Ctrl-C stops the exchange cleanly (the trial report is written), but uvicorn
    # logs the interrupt it raises again after its shutdown as an error: not one
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: not any(word in record.getMessage() + str(record.exc_info)
                               for word in ("KeyboardInterrupt", "CancelledError")))
    uvicorn.run(app_, host=host, port=port, log_level="warning")
    _out().print(f"stopped; the trial's evaluation: {data / 'trial_report.html'}; "
                 f"check the record: transactive ledger verify {data}")


@app.command("device", short_help="Run a device agent that trades on a live exchange.")
def device_cmd(
    key: Annotated[Path, typer.Option(help="The device's key file (made on first use, "
                                            "mode 0600).", show_default=False)],
    kind: Annotated[str, typer.Option(help="battery, pv or load.")] = "battery",
    url: Annotated[str, typer.Option(help="The exchange.")] = "http://127.0.0.1:8000",
    participant: Annotated[str | None, typer.Option(
        help="Its name on the exchange (default: the key file's name).",
        show_default=False)] = None,
    capacity_kw: Annotated[float, typer.Option(min=0.001, help="Power, kW.")] = 5.0,
    energy_kwh: Annotated[float, typer.Option(min=0.001, help="A battery's capacity.")]
    = 10.0,
    gates: Annotated[int | None, typer.Option(min=1, help="Stop after this many gates.",
                                              show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of its load or generation.")] = 0,
    time_scale: Annotated[float, typer.Option(min=1.0, help="Run its day this many times "
                                                        "faster than the clock.")] = 1.0,
) -> None:
    """Register the device's key on the exchange (once) and trade for it gate
    after gate, signing every order; it reconnects if the exchange restarts."""
    from transactive.server.client import DEVICE_KINDS, ExchangeClient, load_key, run_device

    if kind not in DEVICE_KINDS:
        raise InputError("--kind", f"must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
    name = participant or key.stem
    try:
        import httpx
    except ImportError:
        raise MissingExtraError("httpx", "server") from None
    with ExchangeClient(url, name, load_key(key)) as client:
        try:
            run_device(client, kind, capacity_kw=capacity_kw, energy_kwh=energy_kwh,
                       seed=seed, gates=gates, time_scale=time_scale,
                       log=lambda line: _out().print(f"{name}: {line}"))
        except httpx.TransportError as exc:
            raise InputError("--url", f"cannot reach the exchange at {url}: {exc}") from None
        except KeyboardInterrupt:
            _out().print(f"{name}: stopped")


def _param_name(param: Any) -> str:
    """How the user wrote a parameter: its long option, or an argument's name."""
    opts = getattr(param, "opts", None) or []
    long = [o for o in opts if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and (long or opts):
        return f"option {max(long or opts, key=len)!r}"
    return f"argument {getattr(param, 'name', '?')!r}"


def _bad_value(exc: usage.BadParameter) -> str:
    """'abc' is not a number: the value and the problem, from the validation error."""
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        first = errors()[0]
        kind = str(first.get("type", ""))
        if kind.endswith("parsing") or kind == "int_from_float":
            return f"{first.get('input')!r} is not a " + (
                "whole number" if kind.startswith("int") else "number")
        return f"{first.get('input')!r}: {str(first.get('msg', exc.message)).lower()}"
    return exc.message.rstrip(".")


def _usage_message(exc: typer.TyperException) -> str:
    """One line for an error of typer's command-line parser."""
    ctx = getattr(exc, "ctx", None)
    where = f" (try '{ctx.command_path} --help')" if ctx is not None else ""
    if isinstance(exc, usage.NoSuchOption):
        guess = " or ".join(repr(p) for p in sorted(exc.possibilities or ()))
        return (f"unknown option {exc.option_name!r}"
                + (f" (did you mean {guess}?)" if guess else where))
    if isinstance(exc, usage.MissingParameter) and exc.param is not None:
        return f"missing {_param_name(exc.param)}{where}"
    if isinstance(exc, usage.BadParameter) and exc.param is not None:
        return f"{_param_name(exc.param)}: {_bad_value(exc)}"
    message = exc.format_message() if isinstance(exc, usage.ClickException) else str(exc)
    unknown = re.fullmatch(r"No such command (.+?)\.(?: Did you mean (.+)\?)?", message)
    if unknown and ctx is not None:
        name, guess = unknown.groups()
        hint = (f"did you mean {guess.replace(', ', ' or ')}?" if guess else
                "one of: " + ", ".join(ctx.command.list_commands(ctx)))
        return f"unknown command {name} ({hint})"
    return message[:1].lower() + message[1:].rstrip(".")


def _fail(message: str) -> int:
    _err().print(f"[bold red]error:[/] {message}", markup=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; every user error is one line on stderr and exit 2."""
    try:
        code = app(args=argv, prog_name="transactive", standalone_mode=False)
    except InputError as exc:
        if exc.field.startswith("-"):  # one of our options: say so, as the parser does
            return _fail(_escape(f"option {exc.field!r}: {exc.problem}"))
        return _fail(_escape(str(exc)))
    except TransactiveError as exc:
        return _fail(_escape(str(exc)))
    except typer.TyperException as exc:  # usage errors of typer's (vendored click) parser
        return _fail(_escape(_usage_message(exc)))
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a user's path that cannot be read or written
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return _fail(_escape(f"{where}{(exc.strerror or str(exc)).lower()}"))
    except typer.Abort:
        return _fail("aborted")
    return code if isinstance(code, int) else 0


def _escape(text: str) -> str:
    """Text printed as is, not read as rich markup."""
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    sys.exit(main())
