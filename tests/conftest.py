"""Shared test settings: in CI (``CI`` set) hypothesis draws the same examples
every run, so a red build is reproducible rather than a chance draw; and no
test reads or writes the user's configuration (the operator key): each session
has a configuration directory of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from transactive.settlement.operator import CONFIG_DIR_VAR

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``$TRANSACTIVE_CONFIG_DIR`` a fresh folder for the session (subprocesses inherit it)."""
    before = os.environ.get(CONFIG_DIR_VAR)
    os.environ[CONFIG_DIR_VAR] = str(tmp_path_factory.mktemp("config"))
    yield
    if before is None:
        del os.environ[CONFIG_DIR_VAR]
    else:
        os.environ[CONFIG_DIR_VAR] = before
