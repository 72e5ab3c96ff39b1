"""Scenario files: a TOML document with a pydantic schema.

Every field has a default, so an empty file (or no file) is the built-in
default community. Unknown or malformed fields are refused, with the dotted
path of the field and the reason, before anything runs. ``examples/default.toml``
lists every field with its meaning.
"""

from __future__ import annotations

import textwrap
import tomllib
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from transactive.errors import InputError, validation_error
from transactive.grid.cases import load_case
from transactive.grid.network import Network
from transactive.markets import registry
from transactive.programs.carbon import CarbonPrices
from transactive.programs.critical_peak import (
    CriticalPeakTariff,
    PriceTrigger,
    TemperatureTrigger,
)
from transactive.programs.tariffs import RealTimeTariff, RetailTariff, Tariff
from transactive.programs.wholesale import (
    DayAheadModel,
    SyntheticDayAhead,
    WholesalePrices,
    child_seed,
    read_day_ahead_csv,
)
from transactive.sim._schema import Section
from transactive.sim.flex_config import (
    DemandResponseConfig,
    EVConfig,
    FlexibilityConfig,
    HeatPumpConfig,
    RetailConfig,
    ShiftableConfig,
    VppConfig,
)
from transactive.timeline import Timeline

__all__ = ["ENGINE_OPTIONS", "Scenario", "load_scenario", "scenario_template"]

#: Mechanism options the engine supplies every interval (a scenario may not set them).
ENGINE_OPTIONS = frozenset({"rng", "pool", "import_price", "export_price", "dt_h", "network",
                            "kw_per_unit", "shed_price", "import_max_mw"})


class TimeConfig(Section):
    """The simulated period."""

    start: datetime = Field(
        datetime.fromisoformat("2026-06-01T00:00:00+02:00"),
        description="First interval's start, ISO 8601 with a UTC offset.",
    )
    days: float = Field(7.0, gt=0, le=3660, description="Length of the run in days.")
    step_minutes: int = Field(15, ge=1, le=1440, description="Market interval in minutes.")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-06-01T00:00:00+02:00")
        return value

    @field_validator("step_minutes")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if 1440 % value:
            raise ValueError("must divide a day (1440 minutes)")
        return value

    def timeline(self) -> Timeline:
        periods = round(self.days * 1440 / self.step_minutes)
        return Timeline(pd.Timestamp(self.start), periods=max(periods, 1),
                        step_minutes=self.step_minutes)


class CommunityConfig(Section):
    """The prosumer community: households and their devices."""

    households: int = Field(50, ge=2, le=1_000_000, description="Number of households.")
    pv_share: float = Field(0.5, ge=0, le=1, description="Share of households with rooftop PV.")
    battery_share: float = Field(
        0.25, ge=0, le=1,
        description="Share of all households with a home battery (batteries go to PV owners).",
    )
    pv_kw_min: float = Field(3.0, gt=0, le=1000, description="Smallest PV system, kWp.")
    pv_kw_max: float = Field(10.0, gt=0, le=1000, description="Largest PV system, kWp.")
    battery_kwh_min: float = Field(5.0, gt=0, le=10_000, description="Smallest battery, kWh.")
    battery_kwh_max: float = Field(13.5, gt=0, le=10_000, description="Largest battery, kWh.")
    battery_kw_min: float = Field(3.0, gt=0, le=5000, description="Smallest battery power, kW.")
    battery_kw_max: float = Field(5.0, gt=0, le=5000, description="Largest battery power, kW.")
    battery_efficiency: float = Field(
        0.95, gt=0, le=1, description="One-way (charge and discharge) battery efficiency."
    )
    annual_kwh_mean: float = Field(
        3500.0, ge=100, le=1_000_000,
        description="Mean annual consumption, kWh (100 kWh to 1 GWh: a flat to a large business).",
    )
    annual_kwh_sigma: float = Field(
        0.35, ge=0, le=2, description="Spread of annual consumption (sigma of its logarithm)."
    )
    latitude_deg: float = Field(48.1, ge=-66, le=66, description="Site latitude for PV.")
    longitude_deg: float = Field(11.6, ge=-180, le=180, description="Site longitude for PV.")

    @model_validator(mode="after")
    def _ranges(self) -> CommunityConfig:
        if self.battery_share > self.pv_share:
            raise ValueError("battery_share must not exceed pv_share (batteries go to PV owners)")
        for low, high in (("pv_kw_min", "pv_kw_max"), ("battery_kwh_min", "battery_kwh_max"),
                          ("battery_kw_min", "battery_kw_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        return self


TariffKind = Literal["flat", "tou", "rtp", "cpp"]
#: Every kind of tariff, in the order the report sets their bills side by side.
TARIFF_KINDS: tuple[str, ...] = get_args(TariffKind)


class TariffConfig(Section):
    """The utility's retail tariff and feed-in price (the status quo)."""

    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$",
                          description="ISO 4217 code of the tariff's currency (labels only).")
    kind: TariffKind = Field(
        "tou",
        description="'flat', time-of-use 'tou', real-time 'rtp' (the day-ahead price plus an "
        "adder) or critical-peak 'cpp' (a flat or tou base and a critical price on event days).",
    )
    energy_price_per_kwh: float = Field(
        0.28, gt=0, le=100,
        description="Retail price (flat), or the off-peak price of a 'tou' tariff (and of a "
        "'cpp' base).",
    )
    peak_price_per_kwh: float = Field(0.38, gt=0, le=100,
                                      description="Peak retail price of a 'tou' tariff.")
    peak_start_hour: float = Field(17.0, ge=0, le=24, description="Weekday peak start, local.")
    peak_end_hour: float = Field(21.0, ge=0, le=24, description="Weekday peak end, local.")
    feed_in_price_per_kwh: float = Field(
        0.08, ge=-100, le=100,
        description="Price the utility pays for export ('flat', 'tou' and 'cpp').",
    )
    adder_per_kwh: float = Field(
        0.20, ge=0, le=100,
        description="'rtp': retail = day-ahead price + this (network charges, levies, taxes, "
        "margin; 0.20 puts the mean retail price near the 'flat' default).",
    )
    feed_in_floor_per_kwh: float | None = Field(
        0.0, ge=-100, le=100,
        description="'rtp': feed-in = the day-ahead price, but not below this (never above "
        "retail); unset: no floor.",
    )
    wholesale_csv: str | None = Field(
        None, min_length=1,
        description="Day-ahead prices for 'rtp' (and a 'cpp' price trigger) from a CSV file: "
        "columns start (ISO 8601 with a UTC offset) and price_per_kwh or price_per_mwh. "
        "Unset: synthetic prices drawn from the run's seed.",
    )
    wholesale_mean_price_per_kwh: float = Field(
        0.0796, gt=0, le=10,
        description="Mean of the synthetic day-ahead price (0.0796: the German-Luxembourg "
        "base price of 2024, 79.6 EUR/MWh).",
    )
    cpp_base: Literal["flat", "tou"] = Field(
        "tou", description="'cpp': the base tariff outside events, priced by the fields above."
    )
    critical_price_per_kwh: float = Field(
        0.80, gt=0, le=100,
        description="'cpp': retail price in the event hours of event days (above the base).",
    )
    event_start_hour: float = Field(17.0, ge=0, le=24, description="'cpp': event start, local.")
    event_end_hour: float = Field(20.0, ge=0, le=24, description="'cpp': event end, local.")
    event_trigger: Literal["price", "heat", "cold"] = Field(
        "price",
        description="'cpp': what calls an event day (weekdays only), averaged over its event "
        "hours: the day-ahead price, or a hot or a cold outdoor temperature.",
    )
    event_price_threshold_per_kwh: float = Field(
        0.20, ge=-100, le=100, description="'cpp', trigger 'price': the price at or above which."
    )
    event_heat_threshold_c: float = Field(
        28.0, ge=-60, le=60, description="'cpp', trigger 'heat': the temperature at or above which."
    )
    event_cold_threshold_c: float = Field(
        -5.0, ge=-60, le=60, description="'cpp', trigger 'cold': the temperature at or below which."
    )
    max_events_per_year: int = Field(
        15, ge=0, le=366, description="'cpp': most event days a calendar year (first come)."
    )
    event_notice_hour: float = Field(
        14.0, ge=0, lt=24,
        description="'cpp': when an event is announced the day before, local (after the noon "
        "day-ahead auction).",
    )

    def tariff(
        self,
        seed: int | np.random.SeedSequence | None = None,
        *,
        outdoor_c: npt.ArrayLike | None = None,
        latitude_deg: float = 48.0,
        longitude_deg: float = 11.0,
    ) -> RetailTariff:
        """The tariff. ``seed`` draws the synthetic day-ahead prices (child 0)
        and the weather of a temperature trigger (child 1); it is needed for
        'rtp' without ``wholesale_csv`` and for 'cpp' with a synthetic price or
        a temperature trigger. A 'heat' or 'cold' trigger uses ``outdoor_c``
        (one value per interval of the run) if given, else the seeded weather
        at ``latitude_deg``, ``longitude_deg``."""
        base = Tariff(
            kind=self.cpp_base if self.kind == "cpp" else "flat" if self.kind == "flat" else "tou",
            energy_price_per_kwh=self.energy_price_per_kwh,
            feed_in_price_per_kwh=self.feed_in_price_per_kwh,
            peak_price_per_kwh=self.peak_price_per_kwh,
            peak_start_hour=self.peak_start_hour,
            peak_end_hour=self.peak_end_hour,
        )
        if self.kind in ("flat", "tou"):
            return base
        if self.kind == "rtp":
            return RealTimeTariff(self.wholesale(seed), adder_per_kwh=self.adder_per_kwh,
                                  feed_in_floor_per_kwh=self.feed_in_floor_per_kwh)
        trigger: PriceTrigger | TemperatureTrigger
        if self.event_trigger == "price":
            trigger = PriceTrigger(self.wholesale(seed), self.event_price_threshold_per_kwh)
        else:
            hot = self.event_trigger == "heat"
            threshold = self.event_heat_threshold_c if hot else self.event_cold_threshold_c
            if outdoor_c is None:
                trigger = TemperatureTrigger(threshold, hot=hot, seed=self._seed(seed, 1),
                                             latitude_deg=latitude_deg,
                                             longitude_deg=longitude_deg)
            else:
                trigger = TemperatureTrigger(threshold, hot=hot,
                                             temperature_c=np.asarray(outdoor_c, np.float64))
        return CriticalPeakTariff(
            base, self.critical_price_per_kwh, trigger, event_start_hour=self.event_start_hour,
            event_end_hour=self.event_end_hour, max_events_per_year=self.max_events_per_year,
            notice_hour=self.event_notice_hour)

    def wholesale(self, seed: int | np.random.SeedSequence | None) -> WholesalePrices:
        """The day-ahead prices: ``wholesale_csv``, or drawn from ``seed``
        (child 0, the prices an 'rtp' tariff is made of)."""
        if self.wholesale_csv is not None:
            try:
                return read_day_ahead_csv(self.wholesale_csv)
            except InputError as exc:
                raise InputError("tariff.wholesale_csv", str(exc)) from None
        model = DayAheadModel(mean_price_per_kwh=self.wholesale_mean_price_per_kwh)
        return SyntheticDayAhead(self._seed(seed, 0), model)

    @staticmethod
    def _seed(seed: int | np.random.SeedSequence | None, key: int) -> np.random.SeedSequence:
        if seed is None:
            raise ValueError("this tariff draws random prices or weather: pass the run's "
                             "seed, TariffConfig.tariff(seed=...)")
        return child_seed(seed, key)

    @model_validator(mode="after")
    def _consistent(self) -> TariffConfig:
        try:
            self.tariff(seed=0)
        except InputError as exc:
            raise ValueError(f"{exc.field.removeprefix('tariff.')}: {exc.problem}") from None
        return self


class PoolConfig(Section):
    """The AMM pool of market design 'amm' (ignored by the others)."""

    invariant: Literal["constant_product", "constant_sum", "stableswap"] = Field(
        "constant_product", description="Pool invariant: x*y=k, x+y=k, or StableSwap."
    )
    fee: float = Field(0.003, ge=0, lt=1, description="Swap fee, kept in the pool for its LPs.")
    amplification: float = Field(100.0, gt=0, le=1e6, description="StableSwap amplification A.")
    energy_kwh_per_household: float = Field(
        5.0, gt=0, le=10_000, description="Opening energy reserve per household, kWh."
    )
    opening_price_per_kwh: float = Field(0.18, gt=0, le=100,
                                         description="Opening pool price per kWh.")


class MarketConfig(Section):
    """The market design and how participants bid."""

    mechanism: str = Field(
        "network",
        description="A registered mechanism name: 'network' (nodal prices through the feeder), "
        "'uniform', 'pay_as_bid', 'book', 'amm', 'vcg', 'mcafee', ...",
    )
    strategy: Literal["truthful", "zic"] = Field(
        "truthful",
        description="'truthful' bids marginal values; 'zic' is zero-intelligence-constrained.",
    )
    options: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Options passed to the mechanism, e.g. price_rule."
    )
    pool: PoolConfig = Field(default_factory=PoolConfig, description="The AMM's pool.")

    @model_validator(mode="after")
    def _known(self) -> MarketConfig:
        reserved = sorted(ENGINE_OPTIONS & set(self.options))
        if reserved:
            raise ValueError(f"option {reserved[0]!r} is set by the engine, not the scenario")
        try:
            registry.check_options(self.mechanism, self.options, supplied=ENGINE_OPTIONS)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self


class GridConfig(Section):
    """The network the community sits on."""

    case: str = Field(
        "ieee33",
        description="Feeder: a built-in case name (e.g. 'ieee33', the Baran & Wu 33-bus "
        "feeder), a MATPOWER .m file, or 'none' for a copper plate. Households are spread "
        "over its buses; design 'network' clears through it.",
    )

    vm_min_pu: float = Field(
        0.95, gt=0.5, lt=1.0, description="Lowest voltage allowed at any bus (per unit)."
    )
    vm_max_pu: float = Field(
        1.05, gt=1.0, lt=1.5, description="Highest voltage allowed at any bus (per unit)."
    )
    kw_per_unit: float | None = Field(
        None, gt=0, le=1e6,
        description="How many kW on the feeder one simulated household's kW stands for. Unset: "
        "derived so that the community stands for all the feeder's customers, whatever its "
        "size (feeder design load x 1,500 h / the community's annual consumption).",
    )
    value_of_lost_load_per_kwh: float = Field(
        10.0, gt=0, le=100_000,
        description="Price at which the network market sheds demand it cannot serve "
        "within the limits (design 'network').",
    )
    import_limit_kw: float | None = Field(
        None, gt=0, le=1e9,
        description="Most the feeder can import at its substation, kW on the feeder (its "
        "transformer, or the operator's import envelope). Unset: the feeder's design load. "
        "Design 'network' prices it: at the limit, demand that can wait waits.",
    )

    @field_validator("case")
    @classmethod
    def _exists(cls, value: str) -> str:
        if value != "none":
            load_case(value)  # an InputError names the problem
        return value

    def network(self) -> Network | None:
        """The feeder with this section's voltage band, or None for a copper plate."""
        if self.case == "none":
            return None
        net = load_case(self.case)
        return net.replace(bus=net.bus.assign(vm_min_pu=self.vm_min_pu,
                                              vm_max_pu=self.vm_max_pu))


class FaultConfig(Section):
    """An upstream fault that islands the community (none unless 'start' is set)."""

    start: datetime | None = Field(
        None, description="When the fault starts (ISO 8601 with a UTC offset); unset: no fault."
    )
    hours: float = Field(4.0, gt=0, le=168, description="How long the community is islanded.")
    critical_share: float = Field(
        0.3, ge=0, le=1, description="Share of each household's load that is critical."
    )
    critical_value_per_kwh: float = Field(
        10.0, gt=0, le=100_000, description="Value of lost load of critical load (served first)."
    )
    flexible_value_per_kwh: float = Field(
        0.5, gt=0, le=100_000, description="Value of the rest of the load (curtailed first)."
    )
    black_start_reserve: float = Field(
        0.2, ge=0, le=1,
        description="Share of the batteries' capacity kept for a black start (never used).",
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-06-03T18:00:00+02:00")
        return value

    @model_validator(mode="after")
    def _critical_first(self) -> FaultConfig:
        if self.critical_value_per_kwh <= self.flexible_value_per_kwh:
            raise ValueError("critical_value_per_kwh must exceed flexible_value_per_kwh")
        return self

    def window(self, timeline: Timeline) -> range:
        """The intervals of the fault (empty without one)."""
        if self.start is None:
            return range(0)
        step_s = timeline.step_minutes * 60
        first = int((pd.Timestamp(self.start) - timeline.start).total_seconds() // step_s)
        count = max(1, round(self.hours * 60 / timeline.step_minutes))
        return range(max(first, 0), min(first + count, timeline.periods))


class CarbonConfig(Section):
    """Carbon-aware settlement: each participant's emissions priced in its statement."""

    price_per_kg: float = Field(0.08, ge=0, le=100, description="Carbon price per kg CO2.")
    grid_kg_per_kwh: float = Field(
        0.4, ge=0, le=5, description="Marginal emission rate of supply from the upstream grid."
    )
    local_kg_per_kwh: float = Field(
        0.0, ge=0, le=5, description="Emissions of local generation sold (e.g. PV life cycle)."
    )

    def prices(self) -> CarbonPrices:
        return CarbonPrices(price_per_kg=self.price_per_kg, grid_kg_per_kwh=self.grid_kg_per_kwh,
                            local_kg_per_kwh=self.local_kg_per_kwh)


class SettlementConfig(Section):
    """How the run settles (into the run folder's ledger and journal)."""

    mode: Literal["auto", "on", "off"] = Field(
        "auto",
        description="'on' (or 'auto') settles every interval of a run written to a folder "
        "through the double-entry ledger and journal; 'off' skips it.",
    )
    granularity: Literal["auto", "interval", "day"] = Field(
        "auto",
        description="'interval' posts each interval's transfers; 'day' nets each "
        "account's transfers per day (the statements keep every interval); 'auto' "
        "picks 'day' above 200,000 household-intervals.",
    )
    grid_fee_per_kwh: float = Field(
        0.0, ge=0, le=100,
        description="Network fee per kWh bought in the market, to the grid operator."
    )


class OutputConfig(Section):
    """What the results store keeps."""

    record: Literal["auto", "orders", "households", "summary"] = Field(
        "auto",
        description="'orders' keeps every order and its clearing; 'households' keeps each "
        "household's energy per interval; 'summary' keeps intervals and household totals; "
        "'auto' picks 'orders' for small runs and 'summary' for large ones.",
    )


class Scenario(Section):
    """A whole simulation: community, time, tariff, market, output.

    Examples
    --------
    >>> s = Scenario.model_validate({"community": {"households": 10}})
    >>> s.community.households, s.market.mechanism
    (10, 'network')
    """

    name: str = Field("default-community", min_length=1, max_length=200,
                      description="Name of the run (its folder name is made safe from it).")
    seed: int = Field(42, ge=0, description="Seed of every random draw in the run.")
    time: TimeConfig = Field(default_factory=TimeConfig)
    community: CommunityConfig = Field(default_factory=CommunityConfig)
    tariff: TariffConfig = Field(default_factory=TariffConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    grid: GridConfig = Field(default_factory=GridConfig)
    fault: FaultConfig = Field(default_factory=FaultConfig)
    settlement: SettlementConfig = Field(default_factory=SettlementConfig)
    carbon: CarbonConfig = Field(default_factory=CarbonConfig)
    flexibility: FlexibilityConfig = Field(default_factory=FlexibilityConfig)
    ev: EVConfig = Field(default_factory=EVConfig)
    heat_pump: HeatPumpConfig = Field(default_factory=HeatPumpConfig)
    shiftable: ShiftableConfig = Field(default_factory=ShiftableConfig)
    demand_response: DemandResponseConfig = Field(default_factory=DemandResponseConfig)
    vpp: VppConfig = Field(default_factory=VppConfig)
    retail: RetailConfig = Field(default_factory=RetailConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Validate a plain mapping; errors become :class:`InputError` with the field path."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc.errors(), "scenario") from None

    @model_validator(mode="after")
    def _fault_in_run(self) -> Scenario:
        if self.fault.start is not None and not self.fault.window(self.time.timeline()):
            raise ValueError("fault.start: the fault lies outside the simulated period")
        return self

    @model_validator(mode="after")
    def _vpp_devices(self) -> Scenario:
        if self.vpp.enabled and self.flexibility.control != "market":
            raise ValueError("vpp.enabled: the aggregator dispatches devices that state their "
                             "flexibility as bids: set [flexibility] control = \"market\"")
        return self

    @property
    def flexible(self) -> bool:
        """Whether any device responds to prices (``[flexibility] control =
        "market"``) or runs by rules beyond the plain battery (an EV, a heat
        pump, an appliance): the engine then steps interval by interval."""
        return (self.flexibility.control != "rules" or self.ev.share > 0
                or self.heat_pump.share > 0 or self.shiftable.share > 0)

    def with_overrides(self, **overrides: Any) -> Scenario:
        """A re-validated copy with dotted-path overrides, e.g.
        ``{"community.households": 100}``; ``None`` values are ignored."""
        data = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return Scenario.from_dict(data)


def load_scenario(path: str | PathLike[str] | None = None) -> Scenario:
    """Read and validate a scenario file; ``None`` gives the built-in default."""
    if path is None:
        return Scenario()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("scenario", f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("scenario", f"cannot read {file}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError("scenario", f"{file} is not valid TOML: {exc}") from None
    grid = data.get("grid")
    if isinstance(grid, dict) and isinstance(grid.get("case"), str):
        case = grid["case"]
        if case.lower().endswith(".m") and not Path(case).is_absolute():
            # a case file is named relative to the scenario file, not to where we run
            data = {**data, "grid": {**grid, "case": str(file.parent / case)}}
    return Scenario.from_dict(data)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):  # an inline table of its set fields
        value = {k: v for k, v in value.model_dump().items() if v is not None}
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _template_lines(model: BaseModel, path: str) -> list[str]:
    lines: list[str] = []
    nested: list[tuple[str, BaseModel]] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            nested.append((f"{path}.{name}" if path else name, value))
            continue
        lines += [f"# {line}" for line in textwrap.wrap(info.description or "", 86)]
        if value is None:  # TOML has no null: an unset field stays commented out
            lines.append(f"# {name} =")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    for child, section in nested:
        doc = " ".join((type(section).__doc__ or "").split())
        lines += ["", f"[{child}]  # {doc}", *_template_lines(section, child)]
    return lines


def scenario_template() -> str:
    """The default scenario as TOML, every field with its meaning as a comment."""
    head = ["# transactive scenario: every field is optional; these are the defaults."]
    return "\n".join(head + _template_lines(Scenario(), "")) + "\n"
