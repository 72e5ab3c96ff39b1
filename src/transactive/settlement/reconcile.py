"""Reconciliation accumulated as a run settles: statements against the ledger.

:class:`Tally` takes each committed group of intervals (their lines and the
transfers the ledger accepted for them) and keeps only sums: per participant,
the posted total of every rounded line and of the bill, the exact totals and
the rounding carried in from intervals settled elsewhere; per account, the
movement the statements imply; and which transfers of the ledger are the
run's (ranges of sequence numbers, and the ids of any it already held). Its
memory is one row per participant and one entry per account, however long the
run, so a year of intervals reconciles without keeping any interval's lines.
:meth:`Tally.reconcile` reads the movement of those transfers from the ledger
(summed in the database, :meth:`~transactive.settlement.ledger.Ledger.movements`)
and sets it against the statements in a :class:`Reconciliation`; a long run
reads them as it goes (:meth:`Tally.read_ledger`, every :data:`READ_EVERY`
transfers: the same sums, as transfers never change), so that its end waits
for the last few only (a year of 1,000 households: about a second less).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from transactive.settlement.amounts import MICRO, ROUNDED, round_micro
from transactive.settlement.ledger import Ledger, PostReport, Status, Transfer
from transactive.settlement.rules import IntervalLines, counterparty_moves
from transactive.settlement.transfers import ACCOUNTS, participant_accounts

__all__ = ["READ_EVERY", "Reconciliation", "Tally"]

_MICRO = MICRO
IntArray = npt.NDArray[np.int64]
#: How far an exact amount may be from the double-precision value it stands for
#: (snapped to a millionth of a cent, from energies snapped to a millionth of a Wh).
_SNAP_CENTS_PER_LINE = 1e-6
_POSTED = (*ROUNDED, "total_cents")
#: A settlement reads the movement of its committed transfers from the ledger
#: once this many are unread (about a month of 1,000 households settled by day).
READ_EVERY = 100_000


@dataclass(frozen=True)
class Reconciliation:
    """Statements against the ledger, account by account (double-entry
    reconciliation), and each participant's posted lines against their exact amounts.

    ``table`` has one row per account: ``account``, ``unit``, ``statements``
    (the movement the statements imply), ``ledger`` (the movement of the
    ledger's transfers for the same intervals, as the ledger holds them now,
    or for a long run's earlier transfers as it held them when the run read
    them, :meth:`Tally.read_ledger`: the database refuses to change a
    transfer, and ``transactive ledger verify`` walks them all again) and
    ``difference`` (integers: cents or Wh).

    ``residuals`` has one row per participant and one column per rounded line
    (:data:`~transactive.settlement.rules.ROUNDED`): the posted total minus
    the exact total, in Wh or cents, at most 0.5 in size by the rounding rule.

    ``bills`` (when the exact bills were given) has one row per household, in
    cents: ``energy_cents``, the statement's energy-bill line (market + utility
    + imbalance); ``exact_cents``, the sum of its exact amounts;
    ``simulated_cents``, the bill given; ``rounding_cents = energy_cents -
    exact_cents``, the residual of the running-total rounding (under half a
    cent per line: 1.5 cents at most); and ``unexplained_cents = exact_cents -
    simulated_cents``, which only the snapping of exact amounts to 1e-6 of a
    cent explains (at most a millionth of a cent per line and interval).
    """

    table: pd.DataFrame
    problems: tuple[str, ...]
    residuals: pd.DataFrame
    bills: pd.DataFrame | None = None

    @property
    def is_ok(self) -> bool:
        return not self.problems


class Tally:
    """Running sums of settled intervals, for :meth:`reconcile`.

    Examples
    --------
    >>> from transactive.settlement.rules import IntervalPrices, compute_lines
    >>> lines = compute_lines(0, None, ["a", "b"], [0.5, -0.2], IntervalPrices(0.3, 0.05))
    >>> tally = Tally()
    >>> tally.add([lines], [], PostReport(()), last_seq=0)
    >>> tally.intervals, tally.posted_frame()["total_cents"].tolist()
    (1, [15, -1])
    """

    def __init__(self) -> None:
        self._row: dict[str, int] = {}
        self._posted = np.zeros((0, len(_POSTED)), dtype=np.int64)
        self._exact = np.zeros((0, len(ROUNDED)), dtype=np.int64)
        self._carried = np.zeros((0, len(ROUNDED)), dtype=np.int64)
        self._expected: dict[str, int] = dict.fromkeys(ACCOUNTS.values(), 0)
        self._spans: list[tuple[int, int]] = []  # sequence numbers of transfers created
        self._existing: list[str] = []  # ids of transfers the ledger already held
        # the movement of the transfers read from the ledger so far, and their count
        self._moved: dict[str, int] = {}
        self._found = 0
        self.intervals = 0
        self.transfers = 0

    def add(self, lines: Sequence[IntervalLines], transfers: Sequence[Transfer],
            report: PostReport, last_seq: int) -> None:
        """Add committed intervals: their lines, their transfers and the ledger's
        report on them (one result per transfer), ``last_seq`` the ledger's last
        sequence number after the commit (the transfers it created end there)."""
        if lines:
            labels = np.concatenate([x.participant for x in lines]).astype(str)
            codes, uniques = pd.factorize(labels)
            first = np.empty(len(uniques), dtype=np.int64)
            first[codes[::-1]] = np.arange(codes.size)[::-1]  # first row of each label
            posted = np.concatenate([np.column_stack([getattr(x, c) for c in _POSTED])
                                     for x in lines]).astype(np.int64)
            sums = np.zeros((uniques.size, len(_POSTED)), dtype=np.int64)
            np.add.at(sums, codes, posted)
            exact = np.zeros((uniques.size, len(ROUNDED)), dtype=np.int64)
            np.add.at(exact, codes, np.concatenate([x.exact_micro for x in lines]))
            moves = dict.fromkeys(ACCOUNTS.values(), 0)
            for x in lines:
                for account, move in counterparty_moves(x).items():
                    moves[account] += move
            start = np.concatenate([x.start_micro for x in lines])[first]
            self.add_sums(np.asarray(uniques), sums, exact, start, moves, len(lines))
        self.add_report(transfers, report, last_seq)

    def add_sums(self, labels: npt.NDArray[Any], posted: IntArray, exact_micro: IntArray,
                 start_micro: IntArray, moves: Mapping[str, int], intervals: int) -> None:
        """Add committed intervals by their sums: per participant (``labels``), the
        posted amounts (columns :data:`~transactive.settlement.rules.ROUNDED`, then
        ``total_cents``) and the exact amounts summed over the intervals, and the
        running totals before its first one (``start_micro``); how they move each
        operator account (``moves``); and how many intervals they are."""
        names = np.asarray(labels).astype(str)
        known = np.array([u in self._row for u in names.tolist()], dtype=bool)
        if not known.all():
            new = names[~known].tolist()
            micro = np.asarray(start_micro, dtype=np.int64)[~known]
            self._row |= {u: self._posted.shape[0] + i for i, u in enumerate(new)}
            self._posted = np.vstack([self._posted, np.zeros((len(new), len(_POSTED)),
                                                             dtype=np.int64)])
            self._exact = np.vstack([self._exact, np.zeros((len(new), len(ROUNDED)),
                                                           dtype=np.int64)])
            self._carried = np.vstack([self._carried, round_micro(micro) * _MICRO - micro])
        rows = np.array([self._row[u] for u in names.tolist()], dtype=np.intp)
        self._posted[rows] += posted
        self._exact[rows] += exact_micro
        for account, move in moves.items():  # the operators' (and a day's clearing) accounts
            self._expected[account] = self._expected.get(account, 0) + move
        self.intervals += intervals

    def add_report(self, transfers: Sequence[Transfer], report: PostReport,
                   last_seq: int) -> None:
        """Add committed transfers and the ledger's report on them (see :meth:`add`)."""
        created = report.count(Status.CREATED)
        if created < len(transfers):  # some existed already: which (a bulk post creates all)
            self._existing += [t.id for t, r in zip(transfers, report.results, strict=True)
                               if r.status is Status.EXISTS]
        if created:
            lo = last_seq - created + 1
            if self._spans and self._spans[-1][1] + 1 == lo:
                lo = self._spans.pop()[0]
            self._spans.append((lo, last_seq))
        self.transfers += len(transfers)

    @property
    def unread(self) -> int:
        """How many transfers were added whose movement is not read from the ledger yet."""
        return sum(last - first + 1 for first, last in self._spans) + len(self._existing)

    def read_ledger(self, ledger: Ledger) -> None:
        """Read the movement of the transfers added so far from ``ledger`` (the
        one they were committed to) and keep only its sums, for :meth:`reconcile`."""
        self._moved, self._found = self._movements(ledger)
        self._spans, self._existing = [], []

    def _movements(self, ledger: Ledger) -> tuple[dict[str, int], int]:
        """The movement of every account by the transfers added (those read
        before, and the others read now), and how many transfers that is."""
        if not self._spans and not self._existing:
            return dict(self._moved), self._found
        moved, found = ledger.movements(self._spans, self._existing)
        for account, amount in self._moved.items():
            moved[account] = moved.get(account, 0) + amount
        return moved, found + self._found

    def posted_frame(self, *, sort: bool = True) -> pd.DataFrame:
        """Each participant's posted totals (cents and Wh): its statement lines
        summed, columns :data:`~transactive.settlement.rules.ROUNDED` and
        ``total_cents``; rows sorted by label, or in order of first appearance."""
        labels = sorted(self._row) if sort else list(self._row)
        rows = [self._row[p] for p in labels]
        return pd.DataFrame(self._posted[rows], index=pd.Index(labels, name="participant"),
                            columns=list(_POSTED))

    def reconcile(self, ledger: Ledger, minor_per_unit: int,
                  bills: pd.Series | Mapping[str, float] | None = None) -> Reconciliation:
        """The :class:`Reconciliation` of everything added (see
        :meth:`~transactive.settlement.settle.Settlement.reconciliation`)."""
        sums = self.posted_frame()
        posted = sums[list(ROUNDED)]
        expected = dict(self._expected)
        for p, paid, metered in zip(sums.index, sums["total_cents"].tolist(),
                                    sums["metered_wh"].tolist(), strict=True):
            money, energy = participant_accounts(p)
            expected[money], expected[energy] = -int(paid), int(metered)
        moved, found = self._movements(ledger)
        units = {a.id: str(a.unit) for a in ledger.accounts()}
        rows = []
        for account in sorted(set(expected) | set(moved)):
            want, got = expected.get(account, 0), moved.get(account, 0)
            rows.append((account, units.get(account, "?"), want, got, got - want))
        table = pd.DataFrame(rows, columns=["account", "unit", "statements", "ledger",
                                            "difference"])
        problems = [f"account {r.account}: statements {r.statements}, ledger {r.ledger}"
                    for r in table.itertuples() if r.difference != 0]
        if found != self.transfers:
            problems.append(f"{self.transfers - found} settled transfers are not in the ledger")
        for unit, part in table.groupby("unit"):
            if int(part["ledger"].sum()) != 0:
                problems.append(f"unit {unit}: debits != credits by {int(part['ledger'].sum())}")
        problems += ledger.check().problems
        order = [self._row[p] for p in sums.index]
        exact = pd.DataFrame(self._exact[order], index=sums.index, columns=list(ROUNDED))
        residual = posted.to_numpy() * _MICRO - exact.to_numpy() + self._carried[order]
        for i, j in np.argwhere(np.abs(residual) > _MICRO // 2).tolist():
            problems.append(f"participant {sums.index[i]}: posted {ROUNDED[j]} total is "
                            f"{residual[i, j] / _MICRO} from its exact total")
        residuals = pd.DataFrame(residual / _MICRO, index=sums.index, columns=list(ROUNDED))
        table_bills = None
        if bills is not None:
            table_bills = self._bills_table(posted, exact, bills, minor_per_unit)
            problems += self._bill_problems(table_bills)
        return Reconciliation(table, tuple(problems), residuals, table_bills)

    @staticmethod
    def _bills_table(posted: pd.DataFrame, exact: pd.DataFrame,
                     bills: pd.Series | Mapping[str, float], minor_per_unit: int
                     ) -> pd.DataFrame:
        given = pd.Series(bills, dtype=np.float64)
        given.index = given.index.astype(str)
        bill_lines = ["market_cents", "utility_cents", "imbalance_cents"]
        energy = posted[bill_lines].sum(axis=1).reindex(given.index)
        exact_cents = exact[bill_lines].sum(axis=1).reindex(given.index) / _MICRO
        table = pd.DataFrame({"energy_cents": energy, "exact_cents": exact_cents,
                              "simulated_cents": given * minor_per_unit})
        table["rounding_cents"] = table["energy_cents"] - table["exact_cents"]
        table["unexplained_cents"] = table["exact_cents"] - table["simulated_cents"]
        table.index.name = "participant"
        return table

    def _bill_problems(self, table: pd.DataFrame) -> list[str]:
        tolerance = _SNAP_CENTS_PER_LINE * 3 * self.intervals
        problems = [f"household {p} has no statement" for p in
                    table.index[table["energy_cents"].isna()]]
        off = table[table["unexplained_cents"].abs() > tolerance]
        problems += [f"household {p}: statement energy bill {r.exact_cents:.6f} exact cents, "
                     f"simulated bill {r.simulated_cents:.6f}" for p, r in off.iterrows()]
        return problems
