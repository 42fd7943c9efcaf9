"""The HTML tear sheet: self-contained, and rendered by a real headless Chromium.

The browser test drives Debian's chromium (/usr/bin/chromium) with Playwright for Python
(no browser download). Outside CI it is skipped when either is missing; in CI (CI=true)
a missing browser is a failure.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest

from engine.analysis import Analysis
from engine.charts import CHART_KINDS
from engine.report import render_report, write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

PIXEL_STATS_JS = """async (src) => {
  const img = new Image();
  img.src = src;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
    s += g; s2 += g * g; n++;
  }
  const mean = s / n;
  return {mean: mean, variance: s2 / n - mean * mean, width: c.width, height: c.height};
}"""


@pytest.fixture(scope="module")
def report_path(big_analysis: Analysis, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(path, big_analysis, title="EMA crossover <test>",
                        run_info={"Run": "0000-run", "Strategy": "ema_crossover"})


def test_report_is_self_contained(report_path: Path, big_analysis: Analysis) -> None:
    text = report_path.read_text(encoding="utf-8")
    assert "* plotly.js v" in text  # the bundle itself is inline
    assert not re.search(r"<script[^>]+src=", text) and "<link" not in text
    assert "default-src 'none'" in text  # nothing may be fetched, even by accident
    assert "EMA crossover &lt;test&gt;" in text
    for kind in CHART_KINDS:
        assert f"id='chart-{kind}'" in text
    assert len(text) < 12_000_000
    # Tables made it in: every worst drawdown period's start, and each breakdown.
    for d in big_analysis.drawdowns:
        assert d["start"] in text
    for title in ("By side", "By exit reason", "By weekday", "By hour of day",
                  "Monthly and yearly returns", "Benchmark: buy and hold"):
        assert title in text


def test_render_report_with_given_charts(big_analysis: Analysis) -> None:
    html = render_report(big_analysis, charts={})
    assert "id='chart-" not in html and "Worst drawdown periods" in html


def _browser() -> object:
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright; no `playwright install`)"
        sync_playwright = None
    if reason is None and not os.path.exists(CHROMIUM):
        reason = f"Debian chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test cannot run: {reason}")
        pytest.skip(reason)
    return sync_playwright


def test_report_renders_in_headless_chromium(report_path: Path) -> None:
    sync_playwright = _browser()
    with sync_playwright() as p:  # type: ignore[operator]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report_path.as_uri(), wait_until="load")
            page.wait_for_function(
                f"document.querySelectorAll('.chart .main-svg').length >= {len(CHART_KINDS)}",
                timeout=60_000)
            # Per chart container: its plot SVGs, the drawn marks (lines, markers, bars,
            # heatmap image), and traces plotted vs traces in the embedded figure.
            rendered = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).map(e => "
                "[e.id, e.querySelectorAll('.js-plotly-plot .main-svg').length, "
                "e.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.point, "
                ".barlayer path, .heatmaplayer image').length, "
                "(e._fullData || []).length, FIGURES[e.dataset.kind].data.length])")
            assert [r[0] for r in rendered] == [f"chart-{k}" for k in CHART_KINDS]
            for chart_id, svgs, marks, plotted, traces in rendered:
                assert svgs >= 1 and marks >= 1 and plotted == traces >= 1, chart_id
            assert problems == []
            assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests)
            shot = page.screenshot(full_page=False)
            charts = [page.locator(f"#chart-{k}").screenshot() for k in CHART_KINDS]
            probe = browser.new_page()
            for png in [shot, *charts]:
                stats = probe.evaluate(
                    PIXEL_STATS_JS, "data:image/png;base64," + base64.b64encode(png).decode())
                assert stats["width"] > 300 and stats["height"] > 200
                assert stats["variance"] > 50, stats  # a blank page has variance 0
        finally:
            browser.close()
