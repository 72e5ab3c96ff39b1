"""Helpers of the tests that handle run folders: the CLI in a subprocess, a
copy of a run's journal and ledger to tamper with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from transactive.settlement import JOURNAL_FILE, LEDGER_FILE


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``transactive ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "transactive.cli", *args],
                          capture_output=True, text=True, timeout=300)


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a run folder's journal and ledger in ``dst`` (made)."""
    dst.mkdir()
    for name in (JOURNAL_FILE, LEDGER_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst
