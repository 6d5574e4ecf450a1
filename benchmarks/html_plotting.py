"""Which way to draw the HTML report's charts: file size and load+draw time, measured.

Renders one real four-test session (run against the emulator; per-interval data added
from the runs' own histograms where the results carry none) three ways, with the same
charts, and opens each page N times in headless Chromium:

  svg         inline SVG drawn by pytest_lambda_slo._report.svg (what the report uses)
  uplot       uPlot's IIFE build and CSS inlined, charts drawn on canvas by a small script
  matplotlib  one matplotlib SVG per chart, inlined (text kept as text, not glyph paths)

The time is from navigation start to the second animation frame after the load event
(layout and first paint done), read with ``performance.now()`` in the page.

  python benchmarks/html_plotting.py --uplot-dir /tmp/uplot/package -n 10
      [--screenshot docs/img/report.png]

``--uplot-dir`` is an unpacked ``npm pack uplot``; matplotlib must be installed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from pytest_lambda_slo._report import html, svg
from pytest_lambda_slo._report.charts import Chart, charts_for
from pytest_lambda_slo._report.document import load_document, records_of
from pytest_lambda_slo.emulator import Emulator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import reportdata
from conftest import PLUGIN_FUNCTIONS

_PROBE = (
    "<script>addEventListener('load',()=>requestAnimationFrame(()=>requestAnimationFrame("
    "()=>{window.__drawn=performance.now()})))</script>"
)


def run_session(directory: str) -> list[tuple[str, dict[str, Any]]]:
    """Run the four load tests against a fresh emulator; return their records."""
    test_file = os.path.join(directory, "test_session.py")
    with open(test_file, "w", encoding="utf-8") as handle:
        handle.write(reportdata.SESSION_TESTS)
    out = os.path.join(directory, "session.json")
    with Emulator(functions=list(PLUGIN_FUNCTIONS)) as emu:
        env = dict(
            os.environ,
            FAST_URL=emu.function_url("fast"),
            SLOW_URL=emu.function_url("slow"),
            TIGHT_URL=emu.function_url("tight"),
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                test_file,
                "-q",
                "-p",
                "no:cacheprovider",
                f"--lambda-slo-json={out}",
                "-o",
                "addopts=",
            ],
            env=env,
            cwd=directory,
            check=False,
            timeout=300,
        )
    records = records_of(load_document(out))
    for seed, (_, run) in enumerate(records):
        run.setdefault("timeseries", reportdata.timeseries_like(run, seed))
    return records


def _uplot_page(records: list[tuple[str, dict[str, Any]]], uplot_dir: str) -> str:
    with open(os.path.join(uplot_dir, "dist", "uPlot.iife.min.js"), encoding="utf-8") as f:
        script = f.read()
    with open(os.path.join(uplot_dir, "dist", "uPlot.min.css"), encoding="utf-8") as f:
        style = f.read()
    page = html.render_html(records)
    specs = []
    for _, run in records:
        for chart in charts_for(run):
            specs.append(_uplot_spec(chart))
    # Same page, each <svg> replaced by a div the script fills.
    parts = page.split("<svg ")
    rebuilt = [parts[0]]
    for i, part in enumerate(parts[1:]):
        rebuilt.append(f'<div class="u" id="c{i}"></div>' + part.split("</svg>", 1)[1])
    page = "".join(rebuilt)
    code = (
        f"<script>{script}</script><script>const S={json.dumps(specs, separators=(',', ':'))};"
        "const P=['0%','90%','99%','99.9%','99.99%','99.999%'];"
        "S.forEach((s,i)=>{const t=s.series.map(r=>[r.x,r.y]);const d=uPlot.join(t);"
        "const ser=[{}].concat(s.series.map(r=>({label:r.label,stroke:r.color,"
        "dash:r.dash?[5,3]:undefined,spanGaps:false})));"
        "const o={title:s.title,width:540,height:230,scales:{x:{time:false}},series:ser,"
        "axes:[{label:s.xl,values:s.pct?(u,v)=>v.map(x=>Number.isInteger(x)?P[x]:''):"
        "undefined,splits:s.pct?(u)=>[0,1,2,3,4,5].filter(x=>x<=u.scales.x.max):undefined},"
        "{label:s.yl}],hooks:{draw:[u=>{const c=u.ctx;s.lines.forEach(l=>{const y=u.valToPos("
        "l.y,'y',true);c.save();c.strokeStyle=l.color;c.setLineDash([2,2]);c.beginPath();"
        "c.moveTo(u.bbox.left,y);c.lineTo(u.bbox.left+u.bbox.width,y);c.stroke();c.restore()"
        "})}]}};new uPlot(o,d,document.getElementById('c'+i))});</script>"
    )
    return page.replace("</style>", style + "</style>", 1).replace("</body>", code + "</body>")


def _uplot_spec(chart: Chart) -> dict[str, Any]:
    series = []
    for s in chart.series:
        xs, ys = [], []
        last = None
        for x, y in s.points:
            px = round(svg.chart_x(chart, x), 5)
            if last is not None and px <= last:
                px = last + 1e-6  # uPlot needs ascending x
            xs.append(px)
            ys.append(y)
            last = px
        series.append({"label": s.label, "color": s.color, "dash": s.dashed, "x": xs, "y": ys})
    return {
        "title": chart.title,
        "xl": chart.x_label,
        "yl": chart.y_label,
        "pct": chart.percentile_x,
        "series": series,
        "lines": [{"y": line.y, "color": line.color} for line in chart.lines],
    }


def _matplotlib_page(records: list[tuple[str, dict[str, Any]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    page = html.render_html(records)
    images = []
    for _, run in records:
        for chart in charts_for(run):
            fig, ax = plt.subplots(figsize=(5.6, 2.5), dpi=100)
            for s in chart.series:
                xs = [svg.chart_x(chart, x) for x, _ in s.points]
                ys = [float("nan") if y is None else y for _, y in s.points]
                ax.plot(
                    xs,
                    ys,
                    color=s.color,
                    linestyle="--" if s.dashed else "-",
                    label=s.label,
                    linewidth=1.2,
                )
            for line in chart.lines:
                ax.axhline(line.y, color=line.color, linestyle=":", linewidth=1)
            if chart.percentile_x:
                ticks = [t for t in svg.PERCENTILE_TICKS if t[0] <= ax.get_xlim()[1] + 0.01]
                ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
            ax.set_title(chart.title, fontsize=9)
            ax.set_xlabel(chart.x_label, fontsize=8)
            ax.set_ylabel(chart.y_label, fontsize=8)
            ax.legend(fontsize=7)
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", bbox_inches="tight")
            plt.close(fig)
            text = buffer.getvalue()
            images.append(text[text.index("<svg") :])
    parts = page.split("<svg ")
    rebuilt = [parts[0]]
    for image, part in zip(images, parts[1:], strict=True):
        rebuilt.append(image + part.split("</svg>", 1)[1])
    return "".join(rebuilt)


def _driver() -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def measure(path: str, n: int) -> tuple[list[float], list[str]]:
    driver = _driver()
    times, errors = [], []
    try:
        for _ in range(n):
            driver.get("about:blank")
            driver.get("file://" + path)
            deadline = time.monotonic() + 20
            drawn = None
            while drawn is None and time.monotonic() < deadline:
                drawn = driver.execute_script("return window.__drawn || null")
                if drawn is None:
                    time.sleep(0.01)
            if drawn is None:
                raise RuntimeError(f"{path}: never drawn")
            times.append(float(drawn))
            errors += [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    return times, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplot-dir", required=True)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        records = run_session(directory)
        builders = {
            "svg": lambda: html.render_html(records),
            "uplot": lambda: _uplot_page(records, args.uplot_dir),
            "matplotlib": lambda: _matplotlib_page(records),
        }
        pages, build_s = {}, {}
        for name, build in builders.items():
            started = time.perf_counter()
            pages[name] = build()
            build_s[name] = time.perf_counter() - started
        print(
            f"{'candidate':<11}{'bytes':>10}{'build s':>9}{'median ms':>11}{'min':>8}{'max':>8}"
            "  errors"
        )
        for name, page in pages.items():
            path = os.path.join(directory, f"{name}.html")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(page.replace("</head>", _PROBE + "</head>", 1))
            times, errors = measure(path, args.n)
            size = len(page.encode("utf-8"))
            print(
                f"{name:<11}{size:>10}{build_s[name]:>9.2f}{statistics.median(times):>11.1f}"
                f"{min(times):>8.1f}"
                f"{max(times):>8.1f}  {len(errors)}"
            )
        if args.screenshot:
            path = os.path.join(directory, "report.html")
            html.write_html(path, records)
            driver = _driver()
            try:
                driver.set_window_size(1200, 1400)
                driver.get("file://" + path)
                driver.save_screenshot(args.screenshot)
            finally:
                driver.quit()
            print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
