"""A run's settlement in a process of its own, beside the simulation.

Settling a day (rounding, netting, journal, ledger, statements) costs about
as much as simulating it, and the two need each other only through the day's
arrays. :class:`SettlementProcess` stands in for
:class:`~transactive.sim.settling.RunSettlement`: each day's exact amounts
(:func:`~transactive.sim.settling.day_amounts`, made in the simulating
process, which waits for the child anyway; some 8 MB for a thousand
households) are written into one of :data:`AHEAD_DAYS` slots (fewer for a
community of several thousand households) of memory the two processes share
(an anonymous ``memfd`` on Linux, an unlinked temporary file elsewhere), and
a small message down a pipe tells the child (``python -m
transactive.sim.settle_process``) which; the child copies the day out, frees
the slot (a byte on a pipe of its own) and settles it with a
:class:`~transactive.sim.settling.RunSettlement` of its own while the
simulation goes on. The simulation runs as many days ahead as there are slots
of the settlement (a faster simulation then waits, and memory stays a few
days'), so its last days and its results store are done while the child
settles the days before; no day is pickled or pushed through a pipe (which
cost each process over a second of CPU a year of 1,000 households).
The ledger, journal and statements are the same, byte for byte, as settling
in the simulating process: the same code settles the same days in the same
order.

An error in the child (a refused posting, a full disk) reaches the
simulation at its next day or at :meth:`SettlementProcess.close`, raised as
the child raised it; the child leaves the files closed. The simulation uses
the child for runs settled by day (the long ones, see
:func:`~transactive.sim.settling.settlement_granularity`), where it halves
the time on two cores; a small run settles in its own process.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from transactive.settlement import SettlementConfig
from transactive.settlement.amounts import ROUNDED, BlockAmounts
from transactive.settlement.ledger import SettlementError
from transactive.settlement.operator import default_key_path, operator_key
from transactive.settlement.settle import Granularity
from transactive.sim.books import DayOutcome
from transactive.sim.settling import (
    RunSettlement,
    SettlementSummary,
    day_amounts,
    settlement_day,
)

__all__ = ["AHEAD_DAYS", "SettlementProcess"]

#: How long :meth:`SettlementProcess.abandon` waits for the child to close its files.
_ABANDON_WAIT_S = 60.0
#: Days handed over but not yet taken by the child: how far the simulation may
#: run ahead (the shared slots hold this many days' arrays) ...
AHEAD_DAYS = 8
#: ... in at most this much shared memory (fewer slots for a larger
#: community, at least two: 8 for up to some 2,000 households).
_SLOTS_BYTES = 64 << 20
_RATES = ("utility_price_per_kwh", "imbalance_price_per_kwh", "grid_fee_per_kwh")


def _shared_fd() -> int:
    """A descriptor of fresh memory to share: anonymous memory where the
    system has it (Linux), else an unlinked temporary file."""
    with contextlib.suppress(AttributeError, OSError):  # none, or refused (a sandbox)
        return os.memfd_create("transactive-settlement")
    shared, path = tempfile.mkstemp(prefix="transactive-settlement-")
    os.unlink(path)
    return shared


def _n_slots(n_columns: int, periods_per_day: int) -> int:
    """How many days the shared slots hold for a community (see _SLOTS_BYTES)."""
    day_bytes = periods_per_day * n_columns * (8 * (len(ROUNDED) + len(_RATES)) + 1)
    return max(2, min(AHEAD_DAYS, _SLOTS_BYTES // day_bytes))


class _Slots:
    """``n_slots`` days' exact amounts (each line, rate and who is present:
    intervals x households and the counterparty, see
    :class:`~transactive.settlement.amounts.BlockAmounts`) in memory mapped
    from ``fd``, which both processes map."""

    def __init__(self, fd: int, n_columns: int, periods_per_day: int, n_slots: int) -> None:
        self.n = n_slots
        exact = (n_slots, len(ROUNDED), periods_per_day, n_columns)  # each line contiguous
        rates = (len(_RATES), n_slots, periods_per_day, n_columns)
        present = (n_slots, periods_per_day, n_columns)
        n_exact, n_rates = int(np.prod(exact)), int(np.prod(rates))
        size = 8 * (n_exact + n_rates) + int(np.prod(present))
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        self._map = mmap.mmap(fd, size)
        self.exact = np.frombuffer(self._map, np.int64, n_exact).reshape(exact)
        self.rates = np.frombuffer(self._map, np.float64, n_rates, 8 * n_exact).reshape(rates)
        self.present = np.frombuffer(self._map, np.bool_, int(np.prod(present)),
                                     8 * (n_exact + n_rates)).reshape(present)

    def put(self, slot: int, block: BlockAmounts) -> tuple[int, int, int]:
        """Write ``block`` (a day) into ``slot``; the message that names it."""
        n_t = len(block)
        self.exact[slot, :, :n_t] = np.moveaxis(block.exact_micro, -1, 0)
        for j, name in enumerate(_RATES):
            self.rates[j, slot, :n_t] = getattr(block, name)
        self.present[slot, :n_t] = block.present
        return slot, block.first, n_t

    def take(self, slot: int, first: int, n_t: int) -> BlockAmounts:
        """A copy of the day in ``slot`` (the slot is free once this returns),
        its lines on the last axis of a line-major block, as block_amounts makes it."""
        exact = np.moveaxis(self.exact[slot, :, :n_t].copy(), 0, -1)
        rates = (self.rates[j, slot, :n_t].copy() for j in range(len(_RATES)))
        return BlockAmounts(first, self.present[slot, :n_t].copy(), exact, *rates)

    def close(self) -> None:
        del self.exact, self.rates, self.present  # no view outlives the map
        self._map.close()


class SettlementProcess:
    """:class:`~transactive.sim.settling.RunSettlement` run in a child process:
    the same arguments, :meth:`day`, :meth:`close` and :meth:`abandon` (the
    operator key is made or checked here, before the child starts)."""

    def __init__(self, run_dir: str | Path, n_households: int, periods_per_day: int, *,
                 granularity: Granularity = "day", key_path: str | Path | None = None) -> None:
        key_file = Path(key_path) if key_path is not None else default_key_path()
        operator_key(key_file)
        self.config = SettlementConfig(granularity=granularity, periods_per_day=periods_per_day)
        root = str(Path(__file__).resolve().parents[2])  # where this transactive is imported from
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"  # the child's arithmetic is elementwise: BLAS threads only contend
        # glibc: a day's arrays (a few MB each) from the heap, kept when freed,
        # instead of fresh pages from the kernel every day (measured: -10 % time)
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 << 20))
        env.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 30))
        shared = _shared_fd()
        freed, freed_w = os.pipe()  # the child writes a byte on it for each slot it frees
        try:
            self._slots = _Slots(shared, n_households + 1, periods_per_day,
                                 _n_slots(n_households + 1, periods_per_day))
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "transactive.sim.settle_process", str(shared),
                 str(freed_w)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                pass_fds=(shared, freed_w))
        except BaseException:
            os.close(freed)
            raise
        finally:  # mapped here, inherited by the child
            os.close(freed_w)
            os.close(shared)
        self._freed = freed
        self._sent = self._taken = 0  # days handed over, and taken by the child
        self._send(("open", (str(run_dir), int(n_households), int(periods_per_day),
                             granularity, self._slots.n, str(key_file))))

    def day(self, out: DayOutcome, *, retail_price: npt.NDArray[np.float64],
            feed_in_price: npt.NDArray[np.float64], grid_fee_per_kwh: float = 0.0) -> None:
        """Hand the day to the child (see :meth:`RunSettlement.day`); returns at
        once, or, with every slot's day waiting, once the child takes one."""
        # the day's exact amounts made here (this process waits for the child anyway)
        block = day_amounts(settlement_day(out, retail_price=retail_price,
                                           feed_in_price=feed_in_price,
                                           grid_fee_per_kwh=grid_fee_per_kwh), self.config)
        while self._sent - self._taken >= self._slots.n:  # every slot in use: wait for one
            taken = os.read(self._freed, self._slots.n)
            if not taken:  # the child stopped: say why
                self._reply()
                raise SettlementError("the settlement process stopped")
            self._taken += len(taken)
        self._send(("day", self._slots.put(self._sent % self._slots.n, block)))
        self._sent += 1

    def close(self, bills: npt.NDArray[np.float64]) -> SettlementSummary:
        """Wait for the child to settle every day, reconcile and close the files."""
        self._send(("close", np.asarray(bills, dtype=np.float64)))
        summary = self._reply()
        if not isinstance(summary, SettlementSummary):
            raise SettlementError(f"the settlement process answered {type(summary).__name__}")
        return summary

    def abandon(self) -> None:
        """Stop the child without settling what it holds; its files are closed
        when this returns."""
        self._end(wait_s=_ABANDON_WAIT_S)

    def _end(self, wait_s: float | None = None) -> int:
        """Close our ends of the pipes (the child then sees the end of its
        input), wait for the child and release the slots; its exit status."""
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):  # buffered for a stopped child
                    pipe.close()
        try:
            code = self._proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        if self._freed >= 0:
            os.close(self._freed)
            self._freed = -1
            self._slots.close()
        return code

    def _send(self, message: tuple[str, Any]) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            pickle.dump(message, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except BrokenPipeError:  # the child stopped: say why
            self._reply()
            raise SettlementError("the settlement process stopped") from None

    def _reply(self) -> object:
        """The child's answer: a summary, or the error it stopped on (raised)."""
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            kind, value = pickle.load(stdout)
        except (EOFError, pickle.UnpicklingError):
            code = self._end()
            raise SettlementError(f"the settlement process ended (exit status {code}) "
                                  "without an answer") from None
        self._end()
        if kind == "error":
            raise _error(value)
        return value


def _error(blob: tuple[bytes, str]) -> BaseException:
    """The child's exception as it raised it, or a SettlementError with its message."""
    pickled, text = blob
    try:
        exc = pickle.loads(pickled)
    except Exception:  # one that does not unpickle: keep its words
        return SettlementError(text)
    return exc if isinstance(exc, BaseException) else SettlementError(text)


def _serve(source: IO[bytes], sink: IO[bytes], shared: int = -1, freed: int = -1) -> int:
    """The child's loop: open, settle each day (from the slots mapped from
    ``shared``, each freed with a byte on ``freed``), close (or abandon at end
    of input)."""
    run: RunSettlement | None = None
    slots: _Slots | None = None
    try:
        while True:
            try:
                kind, value = pickle.load(source)
            except EOFError:  # the simulation stopped: leave what is durable
                if run is not None:
                    run.abandon()
                return 0
            if kind == "open":
                run_dir, n, ppd, granularity, n_slots, key_path = value
                slots = _Slots(shared, n + 1, ppd, n_slots)
                run = RunSettlement(run_dir, n, ppd, granularity=granularity,
                                    key_path=key_path)
            elif run is None or slots is None:
                raise SettlementError(f"settlement process: {kind!r} before 'open'")
            elif kind == "day":
                block = slots.take(*value)
                os.write(freed, b"\x01")
                run.settle_block(block)
            elif kind == "close":
                summary = run.close(value)
                pickle.dump(("ok", summary), sink, protocol=pickle.HIGHEST_PROTOCOL)
                sink.flush()
                return 0
            else:
                raise SettlementError(f"settlement process: unknown message {kind!r}")
    except BaseException as exc:  # every failure goes back to the simulation
        if run is not None:
            run.abandon()
        try:
            pickled = pickle.dumps(exc)
        except Exception:
            pickled = b""
        pickle.dump(("error", (pickled, f"{type(exc).__name__}: {exc}")), sink)
        sink.flush()
        return 1


def main(argv: list[str] | None = None) -> int:
    """Serve the simulation on standard input and output (binary pickles), the
    days in the slots mapped from the first argument (a file descriptor),
    each freed with a byte on the second; anything printed goes to standard
    error."""
    shared, freed = (int(a) for a in (sys.argv[1:] if argv is None else argv))
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    # the libraries' objects (some 80,000 with pandas) live as long as the
    # process: the collector's full passes over a year's run need not walk them
    gc.freeze()
    return _serve(source, sink, shared, freed)


if __name__ == "__main__":
    raise SystemExit(main())
