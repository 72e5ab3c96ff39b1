"""Shared test settings: in CI (``CI`` set) hypothesis draws the same examples
every run, so a red build is reproducible rather than a chance draw."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
