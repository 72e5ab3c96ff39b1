"""Time-series charts of a run, readable whatever its length.

A run of up to :data:`BY_DAY_AFTER_DAYS` days is drawn interval by interval.
A longer one is drawn by day (daily minimum, mean and maximum of a price,
daily sums of energy: figures that existed, never intervals averaged into
prices that did not) and, below each daily chart, the intervals of one chosen
day, redrawn in the page from a per-interval payload when another day is
picked or a daily point clicked.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from transactive.analysis._plotly import chart, figure, json_script, values

__all__ = ["BY_DAY_AFTER_DAYS", "Daily", "Line", "Series"]

BY_DAY_AFTER_DAYS = 14
"""Runs longer than this many days are drawn by day, with drill-down."""


@dataclass(frozen=True)
class Line:
    """One trace of an interval chart: a column of the intervals frame."""

    column: str
    label: str
    color: str
    digits: int = 3
    shape: str = "linear"  # "hv": a price that holds over the interval
    dash: str = "solid"


@dataclass(frozen=True)
class Daily:
    """One trace of a daily chart: ``how`` (min, mean, max, sum) of a column
    per day (a day without a value, e.g. without trade, is a gap)."""

    column: str
    how: str
    label: str
    color: str
    digits: int = 3
    dash: str = "solid"
    width: float = 2.0


@dataclass
class Series:
    """The intervals of one run, prepared for charts (local wall time of the
    run's UTC offset; days by local date)."""

    frame: pd.DataFrame
    prefix: str = "ts"
    payload_columns: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = pd.DatetimeIndex(self.frame["start"])
        # local wall time as text, "YYYY-MM-DD HH:MM" (numpy's formatting: a
        # tenth of strftime's time for a year of intervals)
        wall = start.tz_localize(None) if start.tz is not None else start
        text = np.datetime_as_string(wall.to_numpy().astype("datetime64[m]"), unit="m")
        self.x = np.char.replace(text, "T", " ").tolist()
        offset = start[0].strftime("%z") if len(start) else "+0000"
        self.time_title = f"local time (UTC{offset[:3]}:{offset[3:]})"
        dates = text.astype("U10")
        self.day_code, uniques = pd.factorize(dates)
        self.days = [str(d) for d in uniques]
        first = np.flatnonzero(np.r_[True, self.day_code[1:] != self.day_code[:-1]])
        self.day_start = [*first.tolist(), len(start)]
        self.first_minute = (start.hour * 60 + start.minute)[first].tolist()
        step = (start[1] - start[0]).total_seconds() / 60 if len(start) > 1 else 0
        self.step_minutes = int(step)
        self.by_day = len(self.days) > BY_DAY_AFTER_DAYS

    def interval_chart(self, div_id: str, lines: list[Line], y_title: str,
                       **layout: Any) -> str:
        """The intervals of the run, or (long runs) of its first day, redrawn
        for the chosen day in the page."""
        end = self.day_start[1] if self.by_day else len(self.x)
        x = self.x[:end]
        traces = [go.Scatter(x=x, y=values(self.frame[ln.column].to_numpy()[:end], ln.digits),
                             name=ln.label, meta=ln.column, mode="lines",
                             line={"color": ln.color, "shape": ln.shape, "dash": ln.dash})
                  for ln in lines]
        fig = figure(traces, y_title=y_title, x_title=self.time_title, **layout)
        if not self.by_day:
            return chart(fig, self.prefix + div_id)
        for ln in lines:
            self.payload_columns[ln.column] = ln.digits
        return (f"<h3>Intervals of <span class='day-label'>{self.days[0]}</span></h3>"
                + chart(fig, self.prefix + div_id, intraday="1"))

    def daily_chart(self, div_id: str, traces: list[Daily], y_title: str,
                    **layout: Any) -> str:
        """Figures per day; clicking a day shows its intervals below."""
        grouped = self.frame.groupby(self.day_code)
        data = []
        for tr in traces:
            y = grouped[tr.column].agg(tr.how).to_numpy(dtype=np.float64)
            data.append(go.Scatter(
                x=self.days, y=values(y, tr.digits), name=tr.label, mode="lines+markers",
                marker={"size": 2 + tr.width}, line={"color": tr.color, "dash": tr.dash,
                                                     "width": tr.width}))
        fig = figure(data, y_title=y_title, x_title="day (click one for its intervals)",
                     **layout)
        return chart(fig, self.prefix + div_id, daily="1")

    def chart(self, div_id: str, lines: list[Line], daily: list[Daily], y_title: str,
              daily_y_title: str | None = None, **layout: Any) -> str:
        """The interval chart of a short run; daily chart and drill-down of a long one."""
        if not self.by_day:
            return self.interval_chart(div_id, lines, y_title, **layout)
        return (self.daily_chart(div_id + "-daily", daily, daily_y_title or y_title, **layout)
                + self.interval_chart(div_id, lines, y_title, **layout))

    def day_picker(self) -> str:
        """A day selector for the drill-down (empty for a short run)."""
        if not self.by_day:
            return ""
        options = "".join(f"<option value='{i}'>{html.escape(d)}</option>"
                          for i, d in enumerate(self.days))
        return (f"<p>The run is {len(self.days)} days long: charts show days; below each, "
                f"the intervals of <label>the day <select data-days='{self.prefix}-payload'>"
                f"{options}</select></label> (or click a day in a daily chart).</p>")

    def payload(self) -> str:
        """The per-interval columns the intraday charts draw (empty for a short run)."""
        if not self.by_day:
            return ""
        columns = {name: values(self.frame[name].to_numpy(), digits)
                   for name, digits in sorted(self.payload_columns.items())}
        return json_script(self.prefix + "-payload", {
            "days": self.days, "start": self.day_start, "first_minute": self.first_minute,
            "step_minutes": self.step_minutes, "columns": columns})
