"""The live exchange's configuration (``transactive serve --config exchange.toml``).

Every field has a default fit for a small sandbox trial on one machine; a file
sets any of them::

    mode = "auction"            # or "continuous"
    mechanism = "uniform"       # uniform, pay_as_bid, mcafee, muda or vcg (auctions)
    gate_period_s = 15          # an auction clears every gate period; also the
                                # settlement interval of the continuous book
    lot_kwh = 0.001             # McAfee trades whole lots (its orders must be whole lots)

    [limits]                    # risk limits of the trial
    price_floor_per_kwh = -0.5
    price_cap_per_kwh = 2.0
    max_participants = 500
    max_capacity_kw = 50        # the most a participant may register
    position_limit_kwh = 100    # open plus filled buys (or sells) per interval
    orders_per_s = 50           # order rate per participant (burst: one second's worth)

    [breaker]                   # halts trading on an abnormal price move
    max_move = 0.5              # a trade or clearing price this far (relative) from
    window = 20                 # the mean of the last `window` prices halts trading
    halt_s = 60                 # for this long, then trading resumes by itself

    [tariff]                    # the utility's, for the savings the trial reports
    retail_price_per_kwh = 0.30
    feed_in_price_per_kwh = 0.08

    [privacy]                   # differentially private volumes at every gate
    epsilon_per_release = 0.1
    total_epsilon = 10.0
"""

from __future__ import annotations

import tomllib
from os import PathLike
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from transactive.errors import InputError, validation_error
from transactive.markets.registry import available

__all__ = ["AUCTIONS", "ExchangeConfig", "load_config"]


AUCTIONS = ("uniform", "pay_as_bid", "mcafee", "muda", "vcg")
"""The registry's double auctions a gate can clear: many buyers and many
sellers, no pool or network (``vickrey`` sells one seller's lot; the book is
``mode = "continuous"``)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Section):
    price_floor_per_kwh: float = Field(-0.5, allow_inf_nan=False)
    price_cap_per_kwh: float = Field(2.0, allow_inf_nan=False)
    max_participants: int = Field(500, ge=1)
    max_capacity_kw: float = Field(50.0, gt=0, allow_inf_nan=False)
    position_limit_kwh: float = Field(100.0, gt=0, allow_inf_nan=False)
    orders_per_s: float = Field(50.0, gt=0, allow_inf_nan=False)
    max_orders_per_request: int = Field(64, ge=1, le=1024)
    max_expiry_s: float = Field(300.0, gt=0, allow_inf_nan=False)
    max_body_bytes: int = Field(65_536, ge=1024)


class Breaker(_Section):
    max_move: float = Field(0.5, gt=0, allow_inf_nan=False)
    window: int = Field(20, ge=1)
    halt_s: float = Field(60.0, gt=0, allow_inf_nan=False)


class Tariff(_Section):
    retail_price_per_kwh: float = Field(0.30, allow_inf_nan=False)
    feed_in_price_per_kwh: float = Field(0.08, allow_inf_nan=False)


class Privacy(_Section):
    epsilon_per_release: float = Field(0.1, gt=0, allow_inf_nan=False)
    total_epsilon: float = Field(10.0, gt=0, allow_inf_nan=False)
    max_kwh_per_participant: float = Field(50.0, gt=0, allow_inf_nan=False)


class ExchangeConfig(_Section):
    """What the exchange trades and under which rules (frozen)."""

    mode: Literal["auction", "continuous"] = "auction"
    mechanism: str = "uniform"
    gate_period_s: float = Field(15.0, ge=0.1, le=86_400, allow_inf_nan=False)
    lot_kwh: float = Field(0.001, gt=0, le=1000, allow_inf_nan=False)
    """McAfee's auctions trade whole lots of this size (their orders must be
    whole lots); other mechanisms and the book trade any quantity."""
    limits: Limits = Field(default_factory=Limits)
    breaker: Breaker = Field(default_factory=Breaker)
    tariff: Tariff = Field(default_factory=Tariff)
    privacy: Privacy = Field(default_factory=Privacy)

    @model_validator(mode="after")
    def _band(self) -> ExchangeConfig:
        if self.limits.price_floor_per_kwh >= self.limits.price_cap_per_kwh:
            raise ValueError("limits.price_cap_per_kwh: must be above price_floor_per_kwh")
        return self

    @model_validator(mode="after")
    def _mechanism(self) -> ExchangeConfig:
        if self.mechanism not in AUCTIONS or self.mechanism not in available():
            raise ValueError(f"mechanism: must be one of {', '.join(AUCTIONS)}, "
                             f"got {self.mechanism!r}")
        return self

    @property
    def gate_period_ms(self) -> int:
        return round(self.gate_period_s * 1000)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ExchangeConfig:
        """Validate a mapping; an error names the field (``limits.orders_per_s``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc.errors(), "config") from None


def load_config(path: str | PathLike[str] | None = None) -> ExchangeConfig:
    """Read ``exchange.toml`` (``None``: every default)."""
    if path is None:
        return ExchangeConfig()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("config", f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError("config", f"cannot read {file}: {exc}") from None
    return ExchangeConfig.from_dict(data)
