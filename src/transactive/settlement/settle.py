"""The engine-facing settlement service: one call per interval, or per day block.

:class:`Settlement` joins the rules (:mod:`~transactive.settlement.rules`), the
ledger and, optionally, the journal. For each interval it computes the lines,
turns them into one linked group of transfers, checks the interval's
invariants, journals the clearing, the new accounts and the transfers
(write-ahead, forced to disk) and then commits them to the ledger together with
the journal position. :meth:`Settlement.batch` groups many intervals into one
journal sync and one ledger commit, the fast path for long simulations, and
:meth:`Settlement.settle_amounts` settles a block of intervals (a day) whose
participants are aligned once, rounding the block in one step
(:func:`~transactive.settlement.rules.running_lines`: the same cents as interval
by interval). :meth:`Settlement.settle_block` takes a block as arrays of
intervals x participants (:class:`~transactive.settlement.amounts.BlockAmounts`)
and, by day, settles it from the arrays alone: the day's transfers come
straight from each participant's posted amounts summed over the day
(:mod:`~transactive.settlement.transfers`), with no object per interval, and
its statement rows go to the file as columns (Parquet for long runs,
:mod:`~transactive.settlement.statements`).

Memory: given a ``statements`` file, the service writes each committed
interval's statement rows to it and keeps none of them; the reconciliation is
kept as running sums either way (:class:`~transactive.settlement.reconcile.Tally`),
so a year of a thousand households settles in the memory of a day.

Granularity (:attr:`SettlementConfig.granularity`): with ``"interval"`` every
interval is one linked group of transfers, ids ``f"{run_id}/{interval}/{code}/{participant}"``,
and the journal holds each interval's clearing. With ``"day"`` the intervals of
a day (``interval // periods_per_day``) are netted into one group: one transfer
per participant and unit through a clearing account, and one per line from
the clearing account to the line's counterparty
(:func:`~transactive.settlement.transfers.transfer_batch_from_sums` with ``net``),
ids ``f"{run_id}/{first}-{last}/net_money/{participant}"`` (and ``net_energy``)
and ``f"{run_id}/{first}-{last}/{code}"``. The statements keep
every interval's row unchanged: each line is still rounded interval by
interval by the participant's running total, and the day's transfer is the sum
of those whole units, so statements and ledger reconcile exactly. A day is
settled inside one :meth:`Settlement.batch` (the netting happens when the batch
ends), and the journal holds only what the ledger needs to be replayed and
verified (accounts and transfers), not the clearings.

Attestation: given the operator's key (``operator``), every commit's journal
records end with a checkpoint the key signs
(:meth:`~transactive.settlement.journal.Journal.checkpoint`), forced to disk
with them before the ledger commits, so the ledger never holds a record the
operator has not attested (:func:`~transactive.settlement.verify.verify_run`
checks it).

Crash safety: on construction the ledger is brought up to date with any
journal records it had not committed (replayed after its cursor; attested
first, given the key); re-settling an
interval that is already in the ledger answers ``EXISTS`` and changes nothing,
because transfer ids are deterministic,
and so are the amounts, provided the restarted service continues the
participants' running totals (``Settlement(..., totals=...)``): the rounding of
an interval depends on the intervals before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transactive.clearing import Clearing
from transactive.errors import InputError
from transactive.settlement.amounts import (
    BlockAmounts,
    ExactAmounts,
    flows,
    post_running,
    round_micro,
)
from transactive.settlement.journal import Journal, replay_journal
from transactive.settlement.ledger import (
    Account,
    AccountKind,
    Ledger,
    PostReport,
    SettlementError,
    Transfer,
    TransferBatch,
    Unit,
)
from transactive.settlement.reconcile import READ_EVERY, Reconciliation, Tally
from transactive.settlement.rules import (
    GridFeeMode,
    IntervalLines,
    IntervalPrices,
    Price,
    RunningTotals,
    checked_transfers,
    compute_lines,
    running_lines,
    statement_rows,
)
from transactive.settlement.statements import StatementRows, StatementWriter
from transactive.settlement.transfers import (
    ACCOUNTS,
    CLEARING,
    check_sums,
    operator_moves,
    participant_accounts,
    transfer_batch_from_sums,
)

__all__ = ["IntervalSettlement", "Reconciliation", "Settlement", "SettlementConfig"]

Granularity = Literal["interval", "day"]

_OPERATORS = (
    Account(ACCOUNTS["market_money"], AccountKind.MARKET, Unit.CENT),
    Account(ACCOUNTS["market_energy"], AccountKind.MARKET, Unit.WH),
    Account(ACCOUNTS["grid"], AccountKind.GRID, Unit.CENT),
    Account(ACCOUNTS["utility_money"], AccountKind.UTILITY, Unit.CENT),
    Account(ACCOUNTS["utility_energy"], AccountKind.UTILITY, Unit.WH),
    Account(ACCOUNTS["carbon"], AccountKind.CARBON, Unit.CENT),
    Account(ACCOUNTS["rounding_money"], AccountKind.MARKET, Unit.CENT),
    Account(ACCOUNTS["rounding_energy"], AccountKind.MARKET, Unit.WH),
)
#: The accounts a day netted per participant pays through (see settlement.transfers).
_CLEARING = (Account(CLEARING[0], AccountKind.MARKET, Unit.CENT),
             Account(CLEARING[1], AccountKind.MARKET, Unit.WH))


@dataclass(frozen=True)
class SettlementConfig:
    """How a run settles.

    ``run_id`` prefixes every transfer id (so several runs can share a ledger);
    ``grid_fee`` is ``"flat"`` or ``"locational"`` (see the rules);
    ``minor_per_unit`` is the number of minor units (cents) per currency unit;
    ``granularity`` is ``"interval"`` (one group of transfers per interval) or
    ``"day"`` (each day's transfers netted, a day being ``periods_per_day``
    intervals; see the module docstring).
    """

    run_id: str = ""
    grid_fee: GridFeeMode = "flat"
    minor_per_unit: int = 100
    granularity: Granularity = "interval"
    periods_per_day: int = 96

    def __post_init__(self) -> None:
        if "/" in self.run_id or len(self.run_id) > 64:
            raise InputError("run_id", "must be at most 64 characters without '/'")
        if self.grid_fee not in ("flat", "locational"):
            raise InputError("grid_fee", f"must be 'flat' or 'locational', got {self.grid_fee!r}")
        if isinstance(self.minor_per_unit, bool) or not isinstance(self.minor_per_unit, int) \
                or self.minor_per_unit <= 0:
            raise InputError("minor_per_unit", f"must be a positive integer, "
                             f"got {self.minor_per_unit!r}")
        if self.granularity not in ("interval", "day"):
            raise InputError("granularity", f"must be 'interval' or 'day', "
                             f"got {self.granularity!r}")
        if isinstance(self.periods_per_day, bool) or not isinstance(self.periods_per_day, int) \
                or self.periods_per_day <= 0:
            raise InputError("periods_per_day", f"must be a positive integer, "
                             f"got {self.periods_per_day!r}")

    @property
    def prefix(self) -> str:
        return f"{self.run_id}/" if self.run_id else ""


@dataclass(frozen=True)
class IntervalSettlement:
    """The settlement of one interval: its lines and transfers.

    ``report`` is the ledger's answer (``None`` inside :meth:`Settlement.batch`
    until the batch commits). With ``"day"`` granularity the last interval of
    each day carries the day's netted transfers and the others none.
    """

    lines: IntervalLines
    transfers: Sequence[Transfer]
    """A :class:`~transactive.settlement.ledger.TransferBatch` (columns), or
    empty for an interval of a day settled by day but its last."""
    report: PostReport | None = None

    @property
    def interval(self) -> int:
        return self.lines.interval

    def statement(self) -> pd.DataFrame:
        """One statement row per participant."""
        return self.lines.to_frame()


@dataclass
class _Pending:
    clearings: list[tuple[int, Clearing]] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    groups: list[list[Transfer] | TransferBatch] = field(default_factory=list)  # a batch: a day
    days: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _DayPart:
    """A day of a block, planned: its statement rows and its sums for the tally
    (the arguments of :meth:`~transactive.settlement.reconcile.Tally.add_sums`)."""

    rows: StatementRows
    sums: tuple[npt.NDArray[np.generic], npt.NDArray[np.int64], npt.NDArray[np.int64],
                npt.NDArray[np.int64], dict[str, int], int]


def _line_columns(amounts: npt.NDArray[np.int64], rows: npt.NDArray[np.intp]
                  ) -> npt.NDArray[np.int64]:
    """``amounts`` (intervals x participants x lines) at the flat positions
    ``rows`` of (intervals x participants), as lines x rows, each line
    contiguous: where the lines lie apart in memory (as
    :func:`~transactive.settlement.amounts.exact_lines` makes them), a view
    when ``rows`` are all the positions (everyone settled in every interval)
    and one gather along the rows otherwise (``np.take``: several times
    faster than indexing the second axis)."""
    lines = np.moveaxis(amounts, -1, 0).reshape(amounts.shape[-1], -1)
    if rows.size == lines.shape[1]:  # rows are 0, 1, ... (flatnonzero of a mask)
        out: npt.NDArray[np.int64] = np.ascontiguousarray(lines)
        return out
    return np.take(lines, rows, axis=1)


class Settlement:
    """Settle market intervals into a ledger, optionally through a journal.

    Parameters
    ----------
    ledger : Ledger
    journal : Journal, optional
        Write-ahead journal; when given, records missing from the ledger are
        replayed into it first (crash recovery).
    config : SettlementConfig, optional
    totals : RunningTotals, optional
        The participants' running totals to continue from (default: none, as
        for a new run). A service restarted in the middle of a run passes the
        totals of the intervals settled before (e.g. rebuilt with
        :meth:`RunningTotals.advance` from their lines); every participant in
        them must have accounts in the ledger.
    statements : path, optional
        Stream the statements to this file as they are committed (CSV, gzip-ed
        if the name ends in ``.gz``; :class:`~transactive.settlement.statements.StatementWriter`)
        instead of keeping the lines in memory: :attr:`settled` and
        :meth:`statements` then hold only the batch not yet committed, and the
        reconciliation, kept as running sums (:class:`~transactive.settlement.reconcile.Tally`)
        either way, is all that stays. Close the file with :meth:`close`.
    operator : Ed25519PrivateKey, optional
        The operator's key (:func:`~transactive.settlement.operator.operator_key`),
        which signs a checkpoint of the journal at the end of every commit (see
        the module docstring); without it the journal is not attested.

    Examples
    --------
    >>> from transactive.orders import OrderBatch
    >>> ob = OrderBatch(id=[1, 2], participant=["a", "b"], side=["buy", "sell"],
    ...                 price=[0.30, 0.10], quantity=[2.0, 2.0])
    >>> clearing = Clearing.from_allocation("uniform", ob, [2.0, 2.0], [0.2, 0.2], 0.2)
    >>> s = Settlement(Ledger(":memory:"))
    >>> done = s.settle_interval(0, clearing, ["a", "b", "c"], [2.5, -2.0, 1.0],
    ...                          retail_price_per_kwh=0.30, feed_in_price_per_kwh=0.05,
    ...                          grid_fee_per_kwh=0.02)
    >>> cols = ["participant", "market_cents", "utility_cents", "grid_fee_cents", "total_cents"]
    >>> print(done.statement()[cols].to_string(index=False))
    participant  market_cents  utility_cents  grid_fee_cents  total_cents
              a            40             15               4           59
              b           -40              0               0          -40
              c             0             30               0           30
    >>> s.ledger.balance("participant:a:money"), s.reconciliation().is_ok
    (-59, True)

    Each participant's lines are rounded by its running totals (see
    :mod:`~transactive.settlement.rules`), kept here (:attr:`totals`) from
    interval to interval: settle each participant's intervals in order
    (settling the last one again posts the same transfers). A new
    ``Settlement`` starts the totals afresh unless given ``totals``; without
    them, re-settling an interval of a run already in the ledger may round
    differently, and the ledger then refuses it (:class:`SettlementError`).

    With ``concurrent``, :meth:`settle_block` hands a day block's journal and
    ledger commit to a thread of its own and returns while it runs (SQLite and
    the journal's sync release the interpreter, so the next block is computed
    meanwhile); the block is booked (tally, statements) and its error raised
    at the next :meth:`wait`, which the next block, every reader and
    :meth:`close` call first. The same files, byte for byte; a failed block
    leaves the settlement behind its in-memory totals, so a run stops there.
    """

    def __init__(self, ledger: Ledger, journal: Journal | None = None, *,
                 config: SettlementConfig | None = None,
                 totals: RunningTotals | None = None,
                 statements: str | Path | None = None, concurrent: bool = False,
                 operator: Ed25519PrivateKey | None = None) -> None:
        if totals is not None and not isinstance(totals, RunningTotals):
            raise InputError("totals", f"must be a RunningTotals, got {type(totals).__name__}")
        if operator is not None and not isinstance(operator, Ed25519PrivateKey):
            raise InputError("operator", f"must be an Ed25519 private key, got "
                             f"{type(operator).__name__}")
        if operator is not None and journal is None:
            raise InputError("operator", "signs the journal's checkpoints: give the journal")
        self.ledger = ledger
        self.journal = journal
        self._operator = operator
        self.config = config or SettlementConfig()
        self._pending: _Pending | None = None
        self._settled: list[IntervalSettlement] = []
        self._kept: list[StatementRows] = []  # rows of blocks, when not streaming
        self._open = 0  # where the intervals of the open batch start in _settled
        self._tally = Tally()
        self._totals = RunningTotals() if totals is None else totals
        self._days_done: set[int] = set()
        if journal is not None:
            if ledger.cursor > journal.seq:
                raise SettlementError(f"the ledger has applied journal record {ledger.cursor}, "
                                      f"but the journal holds only {journal.seq}")
            if operator is not None and journal.seq > ledger.cursor and not journal.at_checkpoint:
                journal.checkpoint(operator)  # what the ledger takes is attested first
            replay_journal(journal.path, ledger, after=ledger.cursor)
        self._known = {a.id for a in ledger.accounts()}
        unknown = [p for p in self._totals.participant.tolist()
                   if participant_accounts(p)[0] not in self._known]
        if unknown:
            raise InputError("totals", f"participant {unknown[0]!r} has running totals but "
                             "no accounts in the ledger")
        missing = [a for a in _OPERATORS if a.id not in self._known]
        if missing:
            self._commit(_Pending(accounts=missing))
            self._known |= {a.id for a in missing}
        self._writer = None if statements is None else StatementWriter(statements)
        # with ``concurrent``, a day block's journal and ledger commit runs on a thread
        # of its own while the caller goes on (at most one in flight, see wait())
        self._committer = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
                           if concurrent else None)
        self._inflight: tuple[Future[PostReport], _Pending, list[_DayPart]] | None = None

    # ----------------------------------------------------------------- settling
    def settle_interval(
        self,
        interval: int,
        clearing: Clearing | None,
        participants: npt.ArrayLike,
        metered_kwh: npt.ArrayLike,
        *,
        retail_price_per_kwh: Price,
        feed_in_price_per_kwh: Price,
        grid_fee_per_kwh: Price = 0.0,
        imbalance_penalty_per_kwh: Price = 0.0,
        planned_kwh: npt.ArrayLike | None = None,
        carbon_cost: npt.ArrayLike | None = None,
    ) -> IntervalSettlement:
        """Settle one interval: compute, check, journal and commit its transfers.

        ``participants`` (labels) and ``metered_kwh`` (net import, kWh) are
        parallel arrays over everyone settled in the interval; ``planned_kwh``
        (same shape) is each participant's planned position (default: metered,
        so no imbalance); ``carbon_cost`` a carbon charge in currency. Prices
        are per kWh: one number, or an array with one price per participant
        (tariffs). Returns
        after the ledger commit (or, inside :meth:`batch`, at once; the batch
        commits when it ends). Raises :class:`SettlementError` if the ledger
        refuses the interval.
        """
        if self.config.granularity == "day" and self._pending is None:
            raise SettlementError("with 'day' granularity, settle intervals inside "
                                  "Settlement.batch() (a day is netted when it ends)")
        prices = IntervalPrices(retail_price_per_kwh, feed_in_price_per_kwh, grid_fee_per_kwh,
                                imbalance_penalty_per_kwh)
        lines = compute_lines(interval, clearing, participants, metered_kwh, prices,
                              planned_kwh=planned_kwh, carbon_cost=carbon_cost,
                              grid_fee=self.config.grid_fee,
                              minor_per_unit=self.config.minor_per_unit, totals=self._totals)
        totals = self._totals.advance(lines)
        done = self._add(lines, clearing, self._new_accounts(lines.participant))
        self._totals = totals
        return done

    def settle_amounts(self, participants: npt.ArrayLike, amounts: Sequence[ExactAmounts],
                       clearings: Sequence[Clearing | None] | None = None) -> None:
        """Settle consecutive intervals from their exact amounts, rounded in one step.

        ``participants`` are the labels of everyone in the intervals, aligned
        once; each interval's :class:`~transactive.settlement.rules.ExactAmounts`
        (from :func:`~transactive.settlement.rules.exact_amounts`) names its
        participants by position in them, and ``clearings`` (optional, one per
        interval) are journaled with ``"interval"`` granularity. The lines and
        transfers are those of :meth:`settle_interval` called interval by
        interval (:func:`~transactive.settlement.rules.running_lines`), without
        looking up a label per interval. Inside a :meth:`batch`, or in a batch
        of its own; the results are in :attr:`settled` (or the statements file).
        """
        if clearings is not None and len(clearings) != len(amounts):
            raise InputError("clearings", f"must have one clearing per interval "
                             f"({len(amounts)}), got {len(clearings)}")
        if self._pending is None:
            with self.batch():
                self.settle_amounts(participants, amounts, clearings)
            return
        labels = np.asarray(participants)
        lines, totals = running_lines(labels, amounts, self._totals, self.config.grid_fee)
        if not lines:
            return
        seen = np.unique(np.concatenate([a.rows for a in amounts]))
        self._pending.accounts += self._new_accounts(labels[seen])
        for k, x in enumerate(lines):
            self._add(x, None if clearings is None else clearings[k], [])
        self._totals = totals

    def settle_block(self, participants: npt.ArrayLike, block: BlockAmounts,
                     clearings: Sequence[Clearing | None] | None = None) -> None:
        """Settle consecutive intervals from their exact amounts, as arrays.

        ``participants`` are the labels of the block's participants by position
        and ``block`` their exact amounts
        (:func:`~transactive.settlement.amounts.block_amounts`). With ``"day"``
        granularity each day of the block is settled from the block's arrays
        alone, in one durable commit: rounded in one pass
        (:func:`~transactive.settlement.amounts.post_running`), netted into one
        group of transfers per day straight from each participant's posted
        amounts summed over the day, checked, journaled and committed, its
        statement rows written (or kept) and the reconciliation's sums updated,
        with no per-interval object. The days must be whole and not settled
        before, and the call is a batch of its own (not inside :meth:`batch`).
        With ``"interval"`` granularity it is :meth:`settle_amounts` of the
        block's intervals, ``clearings`` (one per interval, optional) journaled.
        The lines, transfers and statements are those of :meth:`settle_amounts`
        either way.

        Examples
        --------
        >>> from transactive.settlement.amounts import block_amounts
        >>> s = Settlement(Ledger(":memory:"), config=SettlementConfig(
        ...     granularity="day", periods_per_day=2))
        >>> b = block_amounts(0, [[0.05, -0.05], [0.05, -0.05]], np.zeros((2, 2)),
        ...                   np.zeros((2, 2)), retail_price_per_kwh=0.3,
        ...                   feed_in_price_per_kwh=0.05)
        >>> s.settle_block(["a", "b"], b)
        >>> s.statements()["utility_cents"].tolist()     # 1.5 cents by running totals
        [2, 0, 1, 0]
        >>> s.ledger.balance("participant:a:money"), s.reconciliation().is_ok
        (-3, True)
        """
        labels = np.asarray(participants)
        if labels.shape != (block.present.shape[1],):
            raise InputError("participants", f"must have one label per column of the block "
                             f"({block.present.shape[1]}), got shape {labels.shape}")
        if clearings is not None and len(clearings) != len(block):
            raise InputError("clearings", f"must have one clearing per interval "
                             f"({len(block)}), got {len(clearings)}")
        if self.config.granularity == "interval":
            self.settle_amounts(labels, [block.interval(k) for k in range(len(block))],
                                clearings)
            return
        if self._pending is not None:
            raise SettlementError("settle_block commits its days itself: call it outside "
                                  "Settlement.batch()")
        ppd = self.config.periods_per_day
        days = block.intervals // ppd
        cuts = np.flatnonzero(np.diff(days)) + 1
        pending, totals, done = _Pending(), self._totals, []
        try:
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(block)], strict=True):
                day = int(days[a])
                if day in self._days_done or day in pending.days:
                    raise SettlementError(f"day {day} (interval {block.first + a}) is already "
                                          "settled: with 'day' granularity settle each day's "
                                          "intervals in one call")
                part, totals = self._day_part(labels, block.part(a, b), totals, pending)
                pending.days.append(day)
                done.append(part)
            if self._committer is None:
                report = self._commit(pending)
        except BaseException:
            self._known -= {a.id for a in pending.accounts}
            raise
        self._totals = totals
        self._days_done.update(pending.days)
        if self._committer is not None:  # the block before is booked, this one committed
            self.wait()                   # beside the caller's next block
            self._inflight = (self._committer.submit(self._commit, pending), pending, done)
            return
        self._book(pending, done, report)

    def wait(self) -> None:
        """Wait for the day block being committed on the commit thread (a
        ``concurrent`` settlement) and book it: its sums and the ledger's report
        in the tally, its statement rows written; raise what its commit raised.
        Every reader of the ledger, the tally or the statements waits first."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            future, pending, done = inflight
            self._book(pending, done, future.result())

    def _book(self, pending: _Pending, done: list[_DayPart], report: PostReport) -> None:
        """A committed day block into the tally and the statements."""
        transfers = TransferBatch.concat(pending.groups)
        for part in done:
            self._tally.add_sums(*part.sums)
        self._tally.add_report(transfers, report, last_seq=self.ledger.n_transfers)
        if self._tally.unread >= READ_EVERY:  # no commit runs: the connection is free
            self._tally.read_ledger(self.ledger)
        for part in done:
            if self._writer is not None:
                self._writer.write(part.rows)
            else:
                self._kept.append(part.rows)

    def _day_part(self, labels: npt.NDArray[np.generic], block: BlockAmounts,
                  totals: RunningTotals, pending: _Pending) -> tuple[_DayPart, RunningTotals]:
        """One day of a block: its transfers (added to ``pending``, with the new
        accounts), statement rows and sums for the tally, and the totals after it."""
        present, exact = block.present, block.exact_micro
        n_t, n = present.shape
        cols = np.flatnonzero(present.any(axis=0))  # who is in the day, by position
        start = np.zeros((n, exact.shape[2]), dtype=np.int64)
        if cols.size:
            start[cols] = totals.start_of(block.first, labels[cols])
        posted = post_running(start, exact)
        # each participant in order of first appearance (interval, then position)
        order = cols[np.lexsort((cols, np.argmax(present[:, cols], axis=0)))]
        names = [str(p) for p in labels[order].tolist()]
        summed = posted.sum(axis=0)[order]
        flow_sums = flows(summed)
        total = summed[:, 3:].sum(axis=1)  # energy bill + grid fee + carbon
        due = round_micro(flows(exact.sum(axis=1))).sum(axis=0)  # R per interval, summed
        last = block.first + n_t - 1
        span = str(block.first) if n_t == 1 else f"{block.first}-{last}"
        transfers = transfer_batch_from_sums(names, flow_sums, due, span=span,
                                             interval=block.first, prefix=self.config.prefix,
                                             net=True)
        moves = operator_moves(flow_sums.sum(axis=0), due, net=True)
        check_sums(span, names, summed[:, 0], total, moves, transfers)
        pending.accounts += self._new_accounts(labels[cols])
        self._clearing(pending)
        pending.groups.append(transfers)
        # the totals after the day: through its end, and before each one's last interval
        day_exact = exact.sum(axis=0)
        through = start + day_exact
        at = n_t - 1 - np.argmax(present[::-1, cols], axis=0)
        totals = totals._updated(labels[cols], block.first + at, through[cols] - exact[at, cols],
                                 through[cols])
        idx = np.flatnonzero(present.ravel())
        everyone = idx.size == present.size  # each row settled: the arrays as they are
        utility, imbalance, fee = (rates.reshape(-1) if everyone else rates.reshape(-1)[idx]
                                   for rates in (block.utility_price_per_kwh,
                                                 block.imbalance_price_per_kwh,
                                                 block.grid_fee_per_kwh))
        rows = StatementRows(
            np.repeat(block.intervals, n) if everyone else block.first + idx // n, labels,
            np.tile(np.arange(n, dtype=np.intp), n_t) if everyone
            else (idx % n).astype(np.intp),
            # lines x rows, each line contiguous (a column of the statements)
            _line_columns(posted, idx), _line_columns(exact, idx), utility, imbalance, fee,
            grid_fee=self.config.grid_fee)
        sums = (labels[order], np.column_stack([summed, total]), day_exact[order],
                start[order], moves, n_t)
        return _DayPart(rows, sums), totals

    def _add(self, lines: IntervalLines, clearing: Clearing | None,
             new_accounts: list[Account]) -> IntervalSettlement:
        """Turn one interval's lines into transfers: held for the batch, or committed."""
        self.wait()
        if self.config.granularity == "day" and self._pending is not None:
            self._pending.accounts += new_accounts  # the day is netted when the batch ends
            done = IntervalSettlement(lines, ())
            self._settled.append(done)
            return done
        transfers = checked_transfers([lines], prefix=self.config.prefix)
        if self._pending is not None:
            self._pending.accounts += new_accounts
            if clearing is not None:
                self._pending.clearings.append((lines.interval, clearing))
            self._pending.groups.append(transfers)
            done = IntervalSettlement(lines, transfers)
            self._settled.append(done)
            return done
        pending = _Pending(clearings=[] if clearing is None else [(lines.interval, clearing)],
                           accounts=new_accounts, groups=[transfers])
        done = IntervalSettlement(lines, transfers, self._commit(pending))
        self._settled.append(done)
        self._finish(len(self._settled) - 1)
        return done

    def _finish(self, start: int) -> None:
        """The intervals from ``start`` on are committed: add them to the tally, write
        their statements and, when streaming, let them go."""
        done = self._settled[start:]
        lines = [d.lines for d in done]
        results = tuple(r for d in done if d.report is not None for r in d.report.results)
        self._tally.add(lines, TransferBatch.concat([d.transfers for d in done]),
                        PostReport(results), last_seq=self.ledger.n_transfers)
        if self._writer is not None:
            self._writer.write(statement_rows(lines))
            del self._settled[start:]

    @property
    def totals(self) -> RunningTotals:
        """The running totals of every participant settled here."""
        return self._totals

    def _clearing(self, pending: _Pending) -> None:
        """The clearing accounts a netted day pays through, created with the first."""
        new = [a for a in _CLEARING if a.id not in self._known]
        pending.accounts += new
        self._known |= {a.id for a in new}

    def _new_accounts(self, participants: npt.NDArray[np.generic]) -> list[Account]:
        """The accounts of participants new to the running totals (and the ledger)."""
        new: list[Account] = []
        if self._totals.covers(participants):
            return new
        for p in participants[~pd.Index(participants).isin(self._totals.participant)].tolist():
            money, energy = participant_accounts(p)
            if money not in self._known:
                new += [Account(money, AccountKind.PARTICIPANT_MONEY, Unit.CENT),
                        Account(energy, AccountKind.PARTICIPANT_ENERGY, Unit.WH)]
                self._known |= {money, energy}
        return new

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Settle many intervals with one journal sync and one ledger commit.

        Nothing is durable until the block ends; if it raises, nothing of the
        block is journaled or committed.
        """
        if self._pending is not None:
            raise SettlementError("batches do not nest")
        self.wait()
        self._pending = _Pending()
        start, totals = len(self._settled), self._totals
        try:
            yield
            if self.config.granularity == "day":
                self._net_days(self._pending, start)
        except BaseException:
            pending, self._pending = self._pending, None
            del self._settled[start:]
            self._totals = totals
            self._known -= {a.id for a in pending.accounts}
            raise
        pending, self._pending = self._pending, None
        report = self._commit(pending)
        self._days_done.update(pending.days)
        pos = 0
        for i in range(start, len(self._settled)):
            done = self._settled[i]
            n = len(done.transfers)
            self._settled[i] = IntervalSettlement(
                done.lines, done.transfers, PostReport(report.results[pos:pos + n]))
            pos += n
        self._finish(start)

    def _net_days(self, pending: _Pending, start: int) -> None:
        """Net the batch's intervals day by day into ``pending`` (one group a day),
        the day's transfers carried by its last interval."""
        ppd = self.config.periods_per_day
        pos = start
        while pos < len(self._settled):
            day = self._settled[pos].interval // ppd
            if day in self._days_done or day in pending.days:
                raise SettlementError(f"day {day} (interval {self._settled[pos].interval}) "
                                      "is already settled in another batch: with 'day' "
                                      "granularity settle each day's intervals in one batch")
            end = pos
            while end < len(self._settled) and self._settled[end].interval // ppd == day:
                end += 1
            lines = [s.lines for s in self._settled[pos:end]]
            transfers = checked_transfers(lines, prefix=self.config.prefix, net=True)
            self._clearing(pending)
            pending.groups.append(transfers)
            pending.days.append(day)
            self._settled[end - 1] = IntervalSettlement(lines[-1], transfers)
            pos = end

    def _commit(self, pending: _Pending) -> PostReport:
        """Journal (write-ahead, one sync) and commit the pending accounts and
        groups, the groups as one batch of columns, the ledger's commit after the
        journal's sync; raise if anything is refused."""
        batch = TransferBatch.concat(pending.groups).check()
        cursor, synced = None, None
        if self.journal is not None:
            with self.journal.group(sync=False):
                for interval, clearing in pending.clearings:
                    self.journal.append_clearing(interval, clearing)
                if pending.accounts:
                    self.journal.append_accounts(pending.accounts)
                if pending.groups:
                    self.journal.append_transfers(batch)
                if self._operator is not None:
                    self.journal.checkpoint(self._operator)
            cursor = self.journal.seq
            # write-ahead: the journal reaches the disk while the ledger plans and
            # inserts, and the ledger commits only once it is there
            synced = self.journal.sync_later()
        try:
            acc_report, report = self.ledger.apply(accounts=pending.accounts, groups=batch,
                                                   cursor=cursor, before_commit=synced)
        finally:
            if synced is not None:
                synced()
        refused = acc_report.refused + report.refused
        if refused:
            first = refused[0]
            raise SettlementError(f"the ledger refused {len(refused)} transfers or accounts; "
                                  f"first {first.id}: {first.reason}")
        return report

    # ----------------------------------------------------------------- results
    @property
    def settled(self) -> tuple[IntervalSettlement, ...]:
        """The intervals settled through this object, in order (when streaming
        statements, only those not committed yet)."""
        return tuple(self._settled)

    @property
    def tally(self) -> Tally:
        """Running sums of every committed interval (for :meth:`reconciliation`)."""
        self.wait()
        return self._tally

    def statements(self) -> pd.DataFrame:
        """Every participant's statement rows for the intervals in :attr:`settled`
        and the blocks settled (:meth:`settle_block`), when not streaming them."""
        self.wait()
        rows = StatementRows.concat([statement_rows([s.lines for s in self._settled]),
                                     *self._kept])
        frame = rows.frame()
        if self._kept and self._settled:  # both kinds: in interval order
            frame = frame.sort_values("interval", kind="stable", ignore_index=True)
        return frame

    def write_statements(self, path: str | Path) -> Path:
        """Write the statements of :attr:`settled` as CSV (one row per participant
        and interval)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.statements().to_csv(out, index=False)
        return out

    def close(self) -> None:
        """Wait for a commit in flight, then close the statements file (if streaming)."""
        try:
            self.wait()
        finally:
            if self._committer is not None:
                self._committer.shutdown()
            if self._writer is not None:
                self._writer.close()

    def reconciliation(self, bills: pd.Series | Mapping[str, float] | None = None
                       ) -> Reconciliation:
        """Reconcile the statements with the ledger, account by account, and
        each participant's posted lines with their exact amounts.

        For the intervals committed here, each account's movement implied by
        the statements (participants: their rows; operators: what they are
        due and the rounding accounts the rest) must equal the movement of
        the transfers the ledger accepted for them, in integer cents and Wh;
        each unit's debits must equal its credits; the ledger must pass its
        own integrity check; and every participant's posted total of each
        rounded line must be within half a unit of its exact total. Kept as
        running sums (:class:`~transactive.settlement.reconcile.Tally`), so
        it needs no interval's lines.

        Parameters
        ----------
        bills : Series or mapping of participant label to currency, optional
            Each household's exact energy bill (what it paid in the market and
            to the utility, without grid fees and carbon), e.g. from a
            simulation. The statements' energy-bill lines are reported against
            them (see :class:`Reconciliation`), and a difference beyond the
            rounding rule's residual is a problem.
        """
        self.wait()
        return self._tally.reconcile(self.ledger, self.config.minor_per_unit, bills)
