"""The base of every scenario section (:mod:`transactive.sim.scenario`):
frozen once validated, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A scenario section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
