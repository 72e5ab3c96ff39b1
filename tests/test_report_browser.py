"""The report's own script in a real browser (headless Chromium, when installed):
no console errors, the household table sorts and pages, a chosen day redraws
the intraday charts."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from transactive.analysis.report import render_report
from transactive.sim import Scenario, simulate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run) and must run this; elsewhere it is skipped without one
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                 reason="needs headless Chromium")]

_PROBE = """<script>
window.addEventListener("load", () => {
  const out = {};
  const gainHead = () => [...document.querySelectorAll("div.table th")]
    .find((t) => t.textContent.startsWith("gain_"));
  const firstGain = () => {
    const th = gainHead();
    return th.closest("table").tBodies[0].rows[0].cells[th.cellIndex].textContent;
  };
  gainHead().click(); out.lowest = firstGain();
  gainHead().click(); out.highest = firstGain();
  out.rows = document.querySelector("div.table tbody").rows.length;
  out.pager = document.querySelector(".pager span").textContent;
  const sel = document.querySelector("select[data-days]");
  sel.value = "20"; sel.dispatchEvent(new Event("change"));
  const div = document.querySelector("[data-intraday]");
  out.first_x = div.data[0].x[0]; out.n_x = div.data[0].x.length;
  out.label = document.querySelector(".day-label").textContent;
  const pre = document.createElement("pre"); pre.id = "probe";
  pre.textContent = JSON.stringify(out); document.body.append(pre);
});
</script>"""


def test_table_sorts_and_pages_and_a_day_is_drilled_into(tmp_path):
    day = simulate(Scenario.from_dict({"community": {"households": 60}, "time": {"days": 1},
                                       "market": {"mechanism": "uniform"}, "seed": 2}))
    days = 30
    iv = pd.concat([day.intervals] * days, ignore_index=True)
    start = pd.DatetimeIndex(day.intervals["start"])
    iv["start"] = pd.DatetimeIndex(np.concatenate(
        [start + pd.Timedelta(days=d) for d in range(days)])).tz_convert(start.tz)
    month = dataclasses.replace(day, intervals=iv)
    page = tmp_path / "report.html"
    page.write_text(render_report(month).replace("</body>", _PROBE + "</body>"),
                    encoding="utf-8")
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout)
    assert found, proc.stdout[-500:]
    out = json.loads(found.group(1).replace("&quot;", '"'))
    gains = day.households["gain"].round(2)
    assert float(out["lowest"]) == gains.min()
    assert float(out["highest"]) == gains.max()
    assert out["rows"] == 50
    assert out["pager"].startswith(" rows 1–50 of 60")
    expected = f"{start[0] + pd.Timedelta(days=20):%Y-%m-%d}"
    assert out["label"] == expected
    assert out["first_x"] == f"{expected} 00:00"
    assert out["n_x"] == 96
