"""Opening a report in a real headless Chromium (Debian's, driven by Playwright), for the report
tests: what the console said, which requests the page made, what each plot drew, a screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import unavailable

#: Debian's chromium package; Playwright drives it, no browser of its own is downloaded
CHROMIUM = os.environ.get("AUTOML_TEST_CHROMIUM", "/usr/bin/chromium")

#: per plot: the drawn marks (scatter and box points, bars) and the drawn lines of its traces
COUNT_DRAWN = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => ({
  id: div.id,
  title: (div.querySelector('.gtitle') || {}).textContent || '',
  points: div.querySelectorAll('.scatterlayer .point, .boxlayer .point, .barlayer .point').length,
  lines: Array.from(div.querySelectorAll('.scatterlayer path.js-line'))
           .filter(p => (p.getAttribute('d') || '').length > 2).length,
  traces: div.querySelectorAll('.trace').length,
}))"""


@dataclass
class Opened:
    console: list[tuple[str, str]]  # (type, text) of every console message and page error
    requests: list[str]  # every URL the page asked for
    plots: list[dict]  # COUNT_DRAWN per plot
    screenshot: Path
    text: str  # the page's visible text
    acted: Any = None  # what ``act`` returned


def open_report(path: Path, screenshot: Path, *, width: int = 1400,
                act: Callable[[Any], Any] | None = None) -> Opened:
    """Load ``path`` from file://, wait until every plot has drawn, count what each drew and
    take a full-page screenshot; then ``act(page)`` (clicks, selections) if given."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    console: list[tuple[str, str]] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".every(d => d._fullLayout !== undefined)", timeout=30_000)
            page.wait_for_timeout(300)  # let the last plot finish its transition
            plots = page.evaluate(COUNT_DRAWN)
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
            acted = act(page) if act is not None else None
        finally:
            browser.close()
    return Opened(console, requests, plots, screenshot, text, acted)


def pixel_spread(path: Path) -> float:
    """The standard deviation of the screenshot's grey levels: near 0 for a blank page."""
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        return ImageStat.Stat(image.convert("L")).stddev[0]


def assert_sound(opened: Opened) -> None:
    """No console error, nothing fetched but the file itself, every plot drew data, the page is
    not blank."""
    errors = [m for m in opened.console if m[0] in ("error", "pageerror")]
    assert not errors, errors
    assert all(url.startswith("file://") for url in opened.requests), opened.requests
    assert opened.plots, "the page has no plot"
    for plot in opened.plots:
        assert plot["points"] + plot["lines"] > 0, f"plot drew nothing: {plot}"
    assert pixel_spread(opened.screenshot) > 20
