"""A run's settlement in a process of its own, beside the simulation.

Settling a day (rounding, netting, journal, ledger, statements) costs about
as much as simulating it, and the two need each other only through the day's
arrays. :class:`SettlementProcess` stands in for
:class:`~transactive.sim.settling.RunSettlement`: each day's
:class:`~transactive.sim.settling.SettlementDay` (a few megabytes of arrays
for a thousand households) goes down a pipe to a child Python process
(``python -m transactive.sim.settle_process``), which settles it with a
:class:`~transactive.sim.settling.RunSettlement` of its own while the
simulation goes on. A thread of the simulation feeds the pipe, so the
simulation runs up to :data:`AHEAD_DAYS` days ahead of the settlement (a
faster simulation then waits, and memory stays a few days'): the
simulation's last days and its results store are done while the child
settles the days before, and the child's threads have both cores once the
simulation has finished. The
ledger, journal and statements are the same, byte for byte, as settling in
the simulating process: the same code settles the same days in the same
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
import os
import pickle
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from transactive.settlement import SettlementConfig
from transactive.settlement.ledger import SettlementError
from transactive.settlement.settle import Granularity
from transactive.sim.books import DayOutcome
from transactive.sim.settling import RunSettlement, SettlementSummary, settlement_day

__all__ = ["SettlementProcess"]

#: How long :meth:`SettlementProcess.abandon` waits for the child to close its files.
_ABANDON_WAIT_S = 60.0
#: Days handed over but not yet taken by the child (a few MB each for a
#: thousand households): how far the simulation may run ahead.
AHEAD_DAYS = 8


class SettlementProcess:
    """:class:`~transactive.sim.settling.RunSettlement` run in a child process:
    the same arguments, :meth:`day`, :meth:`close` and :meth:`abandon`."""

    def __init__(self, run_dir: str | Path, n_households: int, periods_per_day: int, *,
                 granularity: Granularity = "day") -> None:
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
        self._proc = subprocess.Popen([sys.executable, "-m", "transactive.sim.settle_process"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        # messages pickled by the simulation, written to the pipe by a thread of
        # their own (None: no more); ``_broken`` once the child stopped reading
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD_DAYS)
        self._broken = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="settlement-pipe", daemon=True)
        self._feeder.start()
        self._send(("open", (str(run_dir), int(n_households), int(periods_per_day),
                             granularity)))

    def day(self, out: DayOutcome, *, retail_price: npt.NDArray[np.float64],
            feed_in_price: npt.NDArray[np.float64], grid_fee_per_kwh: float = 0.0) -> None:
        """Hand the day to the child (see :meth:`RunSettlement.day`); returns at
        once, or, with :data:`AHEAD_DAYS` days waiting, once the child takes one."""
        self._send(("day", settlement_day(out, retail_price=retail_price,
                                          feed_in_price=feed_in_price,
                                          grid_fee_per_kwh=grid_fee_per_kwh)))

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
        """Drop the days not yet handed over, stop the feeder, close our ends of
        the pipes (the child then sees the end of its input) and wait for the
        child; its exit status."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._outbox.get_nowait()
        self._outbox.put(None)
        self._feeder.join()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):  # buffered for a stopped child
                    pipe.close()
        try:
            return self._proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def _send(self, message: tuple[str, Any]) -> None:
        """Queue ``message`` for the child; if the child has stopped, raise why."""
        if self._broken.is_set():
            self._reply()
            raise SettlementError("the settlement process stopped")
        self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _feed(self) -> None:
        """The feeder thread: each queued message down the pipe, until None;
        after the child stopped reading, the rest dropped."""
        stdin = self._proc.stdin
        assert stdin is not None
        while (blob := self._outbox.get()) is not None:
            if self._broken.is_set():
                continue
            try:
                stdin.write(blob)
                stdin.flush()
            except (BrokenPipeError, ValueError):  # the child stopped (or the pipe closed)
                self._broken.set()

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


def _serve(source: IO[bytes], sink: IO[bytes]) -> int:
    """The child's loop: open, settle each day, close (or abandon at end of input)."""
    run: RunSettlement | None = None
    try:
        while True:
            try:
                kind, value = pickle.load(source)
            except EOFError:  # the simulation stopped: leave what is durable
                if run is not None:
                    run.abandon()
                return 0
            if kind == "open":
                run_dir, n, ppd, granularity = value
                run = RunSettlement(run_dir, n, ppd, granularity=granularity)
            elif run is None:
                raise SettlementError(f"settlement process: {kind!r} before 'open'")
            elif kind == "day":
                run.settle(value)
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


def main() -> int:
    """Serve the simulation on standard input and output (binary pickles);
    anything printed goes to standard error."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    # the libraries' objects (some 80,000 with pandas) live as long as the
    # process: the collector's full passes over a year's run need not walk them
    gc.freeze()
    return _serve(source, sink)


if __name__ == "__main__":
    raise SystemExit(main())
