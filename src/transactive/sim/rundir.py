"""Run folders: one run, whole, per folder; folder names that stay where they are put.

A run folder holds what one run wrote: ``results.sqlite``, ``report.html`` and,
when it settled, ``settlement.sqlite``, ``journal.jsonl`` and ``statements.csv``
(``statements.parquet`` when settled by day). A folder that exists and is not
empty is refused, so two runs never mix (a settled run's ledger beside another run's results would
verify for the wrong run). With ``overwrite`` a folder that holds an earlier
run (and nothing else) is emptied first; any other non-empty folder is still
refused, so no user file is ever deleted.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from transactive.errors import InputError

__all__ = ["RUN_FILES", "discard_run", "prepare_run_dir", "run_folder_name"]

#: The files (and SQLite side files) a run, or a comparison of runs, writes into its folder.
RUN_FILES = frozenset({
    "results.sqlite", "report.html", "settlement.sqlite", "settlement.sqlite-wal",
    "settlement.sqlite-shm", "journal.jsonl", "statements.csv", "statements.csv.gz",
    "statements.parquet", "comparison.html",
})

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_folder_name(name: str) -> str:
    """A scenario name made safe as one folder name: letters, digits, ``.``,
    ``_`` and ``-`` only, no leading dot, at most 80 characters.

    Examples
    --------
    >>> run_folder_name("../../x"), run_folder_name("my run/2026"), run_folder_name("..")
    ('x', 'my-run-2026', 'run')
    """
    safe = _UNSAFE.sub("-", name).strip(".-")[:80].strip(".-")
    return safe or "run"


def prepare_run_dir(path: str | PathLike[str], *, overwrite: bool = False) -> Path:
    """Make ``path`` an empty folder for one run and return it.

    Raises
    ------
    InputError
        ``path`` is a file; or a non-empty folder (without ``overwrite``, or
        holding files a run does not write).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError("run_dir", f"{folder} is a file, not a folder")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            foreign = [name for name in entries if name not in RUN_FILES]
            if not overwrite:
                raise InputError("run_dir", f"{folder} is not empty ({', '.join(entries[:3])}"
                                 f"{', ...' if len(entries) > 3 else ''}): a folder holds one "
                                 "run; choose another or overwrite it")
            if foreign:
                raise InputError("run_dir", f"{folder} holds files a run does not write "
                                 f"({', '.join(foreign[:3])}); not overwriting it")
            for name in entries:
                (folder / name).unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("run_dir", f"cannot create {folder}: {exc.strerror}") from None
    return folder


def discard_run(folder: Path, *, made: bool) -> None:
    """Remove what a failed run wrote into ``folder`` (which was empty when
    it began), and the folder itself if the run ``made`` it: bad input
    changes nothing on disk."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    if made and not any(folder.iterdir()):
        folder.rmdir()
