"""Heat pumps in 1R1C buildings, bidding like the Olympic Peninsula thermostats.

A building is one thermal resistance ``r_k_per_kw`` (to the outdoor air) and
one capacitance ``c_kwh_per_k`` (its air and mass): with heat ``q_kw``
delivered over an interval of ``dt_h`` hours the indoor temperature moves
exactly (the solution of ``C dT/dt = (T_out - T) / R + q``) to

    T' = T_out + R q + (T - T_out - R q) exp(-dt / (R C)).

The heat pump delivers ``q = cop * p_el`` with a coefficient of performance
that falls with the outdoor temperature, ``cop = cop_at_7c + cop_slope *
(T_out - 7)`` clipped to [1.5, 6] (a linear fit of air-to-water heat pumps'
EN 14511 ratings, about 3.5 at 7 degC and 2.6 at -2 degC; typical rated
points, not one product). Internal gains (people, appliances) add
``gains_kw``. Heating only: above ``heating_limit_c`` outdoors it is off.

Comfort: the occupant's set point ``setpoint_c`` with a band of
``+-band_k``; ``comfort_violation_kh`` sums the kelvin-hours outside it.

The bid (:meth:`HeatPumpFleet.segments`) is the transactive thermostat of the
Olympic Peninsula demonstration (Hammerstrom et al., PNNL-17167, 2007): the
colder the house within its band, the higher it bids,
``price = mean + k * std * (setpoint - T) / band`` over the price forecast's
mean and standard deviation, clipped to the floor and cap; a house that would
fall below its band without heating this interval bids at the cap for what
keeps it in the band (must run), and one above its band does not bid.

Examples
--------
>>> fleet = HeatPumpFleet.draw(np.array([True, False]), np.random.default_rng(0), dt_h=0.25)
>>> seg = fleet.segments(np.array([0.0]), 0, price_mean=0.25, price_std=0.05,
...                      price_floor=0.05, price_cap=0.40)
>>> seg.household.tolist()       # only the house with a heat pump bids
[0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from transactive.agents.flexibility import Part, Segments
from transactive.errors import InputError
from transactive.orders import BUY

__all__ = ["HeatPumpFleet", "cop"]

FloatArray = npt.NDArray[np.float64]


def cop(outdoor_c: npt.ArrayLike, cop_at_7c: float = 3.5, cop_slope: float = 0.1) -> FloatArray:
    """Coefficient of performance at outdoor temperature (degC), clipped to [1.5, 6].

    >>> cop(np.array([-10.0, 7.0, 20.0])).round(2).tolist()
    [1.8, 3.5, 4.8]
    """
    c = cop_at_7c + cop_slope * (np.asarray(outdoor_c, np.float64) - 7.0)
    if c.ndim == 0:  # one temperature: as np.clip, without its overhead
        return np.float64(min(max(float(c), 1.5), 6.0))  # type: ignore[return-value]
    return np.clip(c, 1.5, 6.0)


@dataclass(eq=False)
class HeatPumpFleet:
    """Heat pumps of ``n`` households (``p_max_kw`` 0: none); state
    ``indoor_c`` per household; ``comfort_violation_kh`` accumulates."""

    r_k_per_kw: FloatArray
    c_kwh_per_k: FloatArray
    p_max_kw: FloatArray
    setpoint_c: FloatArray
    band_k: FloatArray
    dt_h: float
    gains_kw: float = 0.3
    heating_limit_c: float = 15.0
    comfort_k: float = 1.0
    """``k`` of the bid: how many standard deviations of price a kelvin of
    the band is worth to the occupant."""
    bias: FloatArray | None = None
    """Per house, a lasting offset of its bid in standard deviations of the
    forecast (occupants differ; drawn in :meth:`draw`, +-0.5)."""
    indoor_c: FloatArray = field(init=False)
    comfort_violation_kh: FloatArray = field(init=False)
    _decay: FloatArray = field(init=False, repr=False)
    """Per house, what is left of its difference to the steady state after
    an interval: ``exp(-dt / (R C))`` (its building does not change)."""
    heats: npt.NDArray[np.bool_] = field(init=False)
    """Which houses have a heat pump (``p_max_kw > 0``)."""
    _lowest_c: FloatArray = field(init=False, repr=False)
    """Per house, the lower edge of its comfort band."""

    def __post_init__(self) -> None:
        n = self.p_max_kw.shape[0]
        for name in ("r_k_per_kw", "c_kwh_per_k", "setpoint_c", "band_k"):
            arr = getattr(self, name)
            if arr.shape != (n,) or not np.isfinite(arr).all():
                raise InputError(f"heat_pump.{name}", f"must be {n} finite values")
        if (self.r_k_per_kw <= 0).any() or (self.c_kwh_per_k <= 0).any():
            raise InputError("heat_pump.r_k_per_kw", "the building's R and C must be > 0")
        if (self.p_max_kw < 0).any():
            raise InputError("heat_pump.p_max_kw", "must be >= 0")
        if (self.band_k <= 0).any():
            raise InputError("heat_pump.band_k", "the comfort band must be wider than 0 "
                             "(its lower edge below its upper edge)")
        if not (np.isfinite(self.dt_h) and self.dt_h > 0):
            raise InputError("dt_h", f"must be > 0, got {self.dt_h!r}")
        self.indoor_c = self.setpoint_c.copy()
        self.comfort_violation_kh = np.zeros(n)
        self._decay = np.exp(-self.dt_h / (self.r_k_per_kw * self.c_kwh_per_k))
        self.heats = self.p_max_kw > 0
        self._lowest_c = self.setpoint_c - self.band_k

    @classmethod
    def draw(cls, has_heat_pump: npt.NDArray[np.bool_], rng: np.random.Generator, *,
             dt_h: float, setpoint_c: float = 20.5, band_k: float = 1.0) -> HeatPumpFleet:
        """Seeded buildings: a heat loss of 150-300 W/K, a time constant of
        40-100 h, a heat pump of 2.5-5 kW electric (sized for -10 degC at a
        COP of 1.8); occupants' set points spread +-0.5 K around
        ``setpoint_c`` and houses start anywhere in the lower half of their
        band (households differ: their thermostats do not act in step)."""
        mask = np.asarray(has_heat_pump, dtype=bool)
        if band_k <= 0:
            raise InputError("heat_pump.band_k", f"must be > 0, got {band_k!r}")
        n = mask.size
        ua = rng.uniform(0.15, 0.30, n)  # kW/K
        tau_h = rng.uniform(40.0, 100.0, n)
        setpoint = setpoint_c + rng.uniform(-0.5, 0.5, n)
        fleet = cls(r_k_per_kw=1.0 / ua, c_kwh_per_k=tau_h * ua,
                    p_max_kw=np.where(mask, np.round(ua * 30.0 / 1.8 * 2) / 2, 0.0),
                    setpoint_c=setpoint, band_k=np.full(n, band_k), dt_h=dt_h)
        fleet.indoor_c = setpoint - rng.uniform(0.0, band_k, n)
        fleet.bias = rng.uniform(-0.5, 0.5, n)
        return fleet

    def _next_c(self, outdoor_c: FloatArray, p_el_kw: FloatArray) -> FloatArray:
        """Indoor temperature at the end of the interval with ``p_el_kw``
        (``outdoor_c`` one for all houses or one each)."""
        q = cop(outdoor_c) * p_el_kw + self.gains_kw
        steady = outdoor_c + self.r_k_per_kw * q
        return steady + (self.indoor_c - steady) * self._decay

    def power_to_reach_kw(self, outdoor_c: npt.ArrayLike, target_c: npt.ArrayLike
                          ) -> FloatArray:
        """Electric power that brings each house to ``target_c`` by the end of
        the interval (0 if it gets there without heating), within the heat
        pump's power: the 1R1C step solved for the heat."""
        out = np.asarray(outdoor_c, np.float64)  # one for all houses or one each
        target = np.asarray(target_c, np.float64)
        decay = self._decay
        steady = out + (target - out - (self.indoor_c - out) * decay) / (1 - decay)
        p_heat = (steady - out) / self.r_k_per_kw - self.gains_kw
        return np.clip(p_heat / cop(out), 0.0, self.p_max_kw)

    def segments(self, outdoor_c: npt.ArrayLike, t: int, *, price_mean: float,
                 price_std: float, price_floor: float, price_cap: float) -> Segments:
        """Interval ``t``'s bids at outdoor temperature ``outdoor_c`` (a
        number, or one per household)."""
        return Segments.of_parts(self.parts(outdoor_c, t, price_mean=price_mean,
                                            price_std=price_std, price_floor=price_floor,
                                            price_cap=price_cap))[0]

    def parts(self, outdoor_c: npt.ArrayLike, t: int, *, price_mean: float,
              price_std: float, price_floor: float, price_cap: float) -> list[Part]:
        """:meth:`segments` as parts (what keeps each house in its band, the
        rest of its power; see
        :meth:`~transactive.agents.flexibility.Segments.of_parts`)."""
        must, rest = self.wants(outdoor_c)
        return self.priced(must, rest, price_mean=price_mean, price_std=price_std,
                           price_floor=price_floor, price_cap=price_cap)

    def wants(self, outdoor_c: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """What each house bids for at ``outdoor_c``, before any price (kWh):
        what keeps it in its band (must run), the rest of its power."""
        out = np.asarray(outdoor_c, np.float64)
        on = self.heats & (out < self.heating_limit_c)
        # the power that just keeps the house at the band's lower edge
        p_must = self.power_to_reach_kw(out, self._lowest_c)
        must = np.where(on, p_must * self.dt_h, 0.0)
        rest = np.where(on & (self.indoor_c < self.setpoint_c + self.band_k),
                        self.p_max_kw * self.dt_h - must, 0.0)
        return must, rest

    def priced(self, must: FloatArray, rest: FloatArray, *, price_mean: float,
               price_std: float, price_floor: float, price_cap: float) -> list[Part]:
        """The parts of :meth:`wants`: what must run at the cap, the rest
        by the house's place in its band on the forecast's mean and standard
        deviation."""
        bias = 0.0 if self.bias is None else self.bias
        price = price_mean + self.comfort_k * price_std * (
            (self.setpoint_c - self.indoor_c) / self.band_k + bias)
        return [Part(must > 1e-9, BUY, must, price_cap, True),
                Part(rest > 1e-9, BUY, rest, np.clip(price, price_floor, price_cap))]

    def advance(self, outdoor_c: npt.ArrayLike, energy_kwh: npt.ArrayLike, *,
                check: bool = True) -> None:
        """The heat pumps drew ``energy_kwh`` over the interval: the houses'
        temperatures move; time outside the comfort band is counted (at the
        interval's end). ``check=False``: trusted (the fleet's own bids
        served or its rule), not checked again."""
        out = np.asarray(outdoor_c, np.float64)  # one for all houses or one each
        e = np.asarray(energy_kwh, dtype=np.float64)
        if check:
            if e.shape != self.indoor_c.shape or (e < -1e-12).any():
                raise InputError("energy_kwh", f"must be {self.indoor_c.size} values >= 0")
            if (e > self.p_max_kw * self.dt_h * (1 + 1e-9) + 1e-12).any():
                raise InputError("energy_kwh", "exceeds the heat pump's power")
        self.indoor_c = self._next_c(out, np.maximum(e, 0.0) / self.dt_h)
        outside = np.maximum(np.maximum(self._lowest_c - self.indoor_c,
                                        self.indoor_c - self.setpoint_c - self.band_k), 0.0)
        self.comfort_violation_kh += np.where(self.heats, outside, 0.0) * self.dt_h
