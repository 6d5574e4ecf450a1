"""The HTML report: built from a real four-test session, opened in headless Chromium.

The browser tests skip only where Chromium is missing and CI is not set; under CI a missing
browser fails them. The time plots are tested with per-interval data built from the runs'
own histograms, as the recorder's JSON form describes it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reportdata as rd

from pytest_lambda_slo._report import hdr, svg
from pytest_lambda_slo._report.charts import charts_for
from pytest_lambda_slo._report.document import as_records, load_document, new_document, records_of
from pytest_lambda_slo._report.html import render_html, write_html
from pytest_lambda_slo._report.merge import merge_documents
from pytest_lambda_slo.emulator import Emulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
_EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?"
    r"\s*(?:https?:)?//",
    re.I,
)


@pytest.fixture(scope="module")
def session_records(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> list[tuple[str, dict[str, Any]]]:
    """Four load tests run through pytest against the emulator, read back from their JSON."""
    directory = tmp_path_factory.mktemp("session")
    (directory / "test_session.py").write_text(rd.SESSION_TESTS)
    out = directory / "session.json"
    env = {
        "FAST_URL": emulator.function_url("fast"),
        "SLOW_URL": emulator.function_url("slow"),
        "TIGHT_URL": emulator.function_url("tight"),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    emulator.reset(environments=True)
    try:
        result = pytest.main(
            [
                str(directory / "test_session.py"),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:benchmark",
                f"--lambda-slo-json={out}",
                "--rootdir",
                str(directory),
            ]
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result == pytest.ExitCode.TESTS_FAILED  # the throttling test breaks its budget
    records = records_of(load_document(str(out)))
    assert len(records) == 4
    return records


def with_timeseries(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict]]:
    return [
        (test_id, {**run, "timeseries": run.get("timeseries") or rd.timeseries_like(run, i)})
        for i, (test_id, run) in enumerate(records)
    ]


# Building the page: no browser needed ---------------------------------------------------
def test_page_is_self_contained(session_records: list[tuple[str, dict[str, Any]]]) -> None:
    page = render_html(with_timeseries(session_records), baseline=session_records)
    assert not _EXTERNAL.search(page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert re.findall(r'href="([^"]*)"', page) and all(
        h.startswith("#") for h in re.findall(r'href="([^"]*)"', page)
    )
    assert page.count("<section") == 4
    assert page.count("<tr>") >= 5  # the summary table: a header and four rows
    assert 'class="fail">FAIL</span> throttle_rate' in page


def test_runs_without_per_interval_data_render_without_time_plots(
    session_records: list[tuple[str, dict[str, Any]]],
) -> None:
    plain = [(t, {k: v for k, v in r.items() if k != "timeseries"}) for t, r in session_records]
    page = render_html(plain)
    assert page.count("No per-interval data in these results") == 4
    assert "Latency over time" not in page
    assert page.count('aria-label="Latency by percentile"') == 4


def test_charts_of_a_run_with_timeseries_and_budgets() -> None:
    m = rd.measurements(rd.latencies(3, 2000), cold_every=40)
    result = rd.result(m)
    result.judge({"p99": "200ms", "p50": "60ms", "cold_start_p99": "1s"})
    [(_, run)] = as_records([("t::x", result)])
    run["timeseries"] = rd.timeseries_like(run)
    titles = [c.title for c in charts_for(run, baseline=run)]
    assert titles == [
        "Latency over time (per interval)",
        "Latency by percentile",
        "Warm vs cold-start latency",
        "Requests per interval, and in flight",
    ]
    spectrum = charts_for(run)[1]
    assert [line.label for line in spectrum.lines] == ["p99 budget 200ms", "p50 budget 60ms"]
    xs = [x for x, _ in spectrum.series[0].points]
    # The axis stops at the run's resolution, 1 - 1/n: 2,000 samples reach 99.95%.
    assert max(xs) == pytest.approx(100 * (1 - 1 / m.hist("all").count))
    assert xs == sorted(xs)
    assert len(charts_for(run, baseline=run)[1].series) == 2  # the baseline overlay


def test_svg_axis_helpers() -> None:
    assert svg.percentile_x(90) == pytest.approx(1.0)
    assert svg.percentile_x(99.9) == pytest.approx(3.0)
    assert svg.nice_ticks(87) == [0, 20, 40, 60, 80, 100]
    assert svg.nice_ticks(0) == [0.0, 1.0]


# In the browser ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "CI is set but chromium/chromedriver are missing: install the Debian "
                "packages chromium and chromium-driver"
            )
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, path: Path) -> dict[str, Any]:
    driver.get("about:blank")
    driver.get_log("browser")  # drop anything logged before this page
    driver.get(path.as_uri())
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.readyState") != "complete":
        assert time.monotonic() < deadline, "the page never finished loading"
        time.sleep(0.05)
    state: dict[str, Any] = driver.execute_script(
        "return {resources: performance.getEntriesByType('resource').map(e => e.name),"
        " page: performance.getEntriesByType('navigation').map(e => e.name),"
        " svgs: document.querySelectorAll('svg.chart').length,"
        " drawn: Array.from(document.querySelectorAll('svg.chart')).filter("
        "   s => s.querySelectorAll('path[stroke], circle').length > 0"
        "   && s.getBoundingClientRect().width > 100).length,"
        " titles: Array.from(document.querySelectorAll('svg.chart')).map("
        "   s => s.getAttribute('aria-label')),"
        " server: Array.from(document.querySelectorAll('svg.chart text.lg')).filter("
        "   t => t.textContent.startsWith('server: ')).length}"
    )
    state["console"] = driver.get_log("browser")
    return state


def _check_loaded_offline(state: dict[str, Any], path: Path) -> None:
    assert state["console"] == []
    assert state["page"] == [path.as_uri()]
    assert all(name.startswith("data:") for name in state["resources"]), state["resources"]


def test_report_opens_offline_and_draws_its_plots(
    browser: Any, session_records: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    path = Path(write_html(str(tmp_path / "report.html"), session_records))
    state = _open(browser, path)
    _check_loaded_offline(state, path)
    assert state["svgs"] >= 4 and state["drawn"] == state["svgs"]
    assert state["titles"].count("Latency by percentile") == 4
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_report_with_time_plots_and_baseline_in_the_browser(
    browser: Any, session_records: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    records = with_timeseries(session_records)
    path = Path(write_html(str(tmp_path / "report.html"), records, baseline=records))
    state = _open(browser, path)
    _check_loaded_offline(state, path)
    assert state["titles"].count("Latency over time (per interval)") == 4
    assert state["titles"].count("Requests per interval, and in flight") == 4
    assert state["drawn"] == state["svgs"] >= 12
    # The runs' target was the emulator: its invocations, throttles and concurrency too.
    assert state["server"] == 3 * 4
    text = browser.find_element("tag name", "body").text
    assert "vs baseline" in text and "baseline p99" in text
    shot = tmp_path / "report-timeseries.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_a_real_session_merged_with_itself_doubles_every_count(
    session_records: list[tuple[str, dict[str, Any]]],
) -> None:
    document = new_document(session_records)
    merged = merge_documents([("a.json", document), ("b.json", document)])
    assert [r["test_id"] for r in merged["bursts"]] == [t for t, _ in session_records]
    for (_, run), twice in zip(session_records, merged["bursts"], strict=True):
        assert twice["count"] == 2 * run["count"] and twice["throttles"] == 2 * run["throttles"]
        # Recomputed from the doubled histogram (percentile ranks round, so not always equal).
        encoded = run["measurements"]["histograms"]["all"]["hdr"]
        doubled = hdr.add_all([encoded, encoded])
        assert twice["latency_ms"]["all"]["p99"] == hdr.percentile_ms(doubled, 99)
        # Judged again on twice the data: a decided verdict never turns into its opposite.
        states = [(v["state"], w["state"]) for v, w in zip(run["verdicts"], twice["verdicts"],
                                                              strict=True)]  # fmt: skip
        assert ("pass", "fail") not in states and ("fail", "pass") not in states
        assert twice["run"]["event_loop"] == run["run"]["event_loop"]
