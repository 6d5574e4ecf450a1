"""What compiling the engine's hot path would buy: the same code interpreted and compiled.

Each variant is a snapshot of the package (``git archive`` of ``--rev``) in a temporary
directory, with its hot-path modules compiled in place:

- ``interpreted``: the package as it ships;
- ``cython``: the transport, the recorder and the closed model compiled by Cython as plain
  Python (``annotation_typing`` off, so every line means what it means interpreted: no C
  types, no struct attributes);
- ``mypyc``: the transport and the recorder compiled by mypyc from their type annotations
  (native classes: attributes in C structs, typed locals). The closed model stays
  interpreted: its base class lives in the engine module, which imports most of the
  package, and mypyc stops with an internal error on a class whose base it does not compile.

Two figures per variant:

1. instructions per request of the closed model's cycle (``engine_cycle.py
   --instructions``: cachegrind, no network; repeatable to a fraction of a percent);
2. with ``--in-situ``: the CPU per request of real bursts against the emulator
   (``bench_engine_child.py``, as in benchmarks/harness.py), the variants interleaved,
   ``--rounds`` rounds, their median. These scatter 10-20 % from run to run on a shared
   machine; the medians of interleaved runs are the comparison.

Needs a C compiler, Python's headers, Cython (``pip install cython``) and mypy (the test
extra), and valgrind for the first figure.

    python benchmarks/compiled_hot_path.py [--rev HEAD] [--variants interpreted,cython,mypyc]
        [--in-situ] [--requests 10000] [--concurrency 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import bench_tools  # noqa: E402

VARIANTS = ("interpreted", "cython", "mypyc")
CYTHON_MODULES = (
    "pytest_lambda_slo/_http/transport.py",
    "pytest_lambda_slo/_results/recorder.py",
    "pytest_lambda_slo/_load/closed.py",
)
MYPYC_MODULES = ("pytest_lambda_slo/_http/transport.py", "pytest_lambda_slo/_results/recorder.py")

# Cython compiles the listed modules in place (a .so beside each .py, which imports first).
_CYTHONIZE = """
import sys
from setuptools import setup
from Cython.Build import cythonize
setup(
    ext_modules=cythonize(
        sys.argv[1:],
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    ),
    script_args=["build_ext", "--inplace"],
)
"""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    model = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Cython {_version('Cython')}, "
        f"mypy {_version('mypy')}, load average {os.getloadavg()[0]:.1f} at the start"
    )


def snapshot(rev: str, into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "pytest_lambda_slo"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def build(variant: str, code: Path) -> None:
    """Compile ``variant``'s modules inside the snapshot ``code`` (nothing for interpreted)."""
    if variant == "interpreted":
        return
    if variant == "cython":
        cmd = [sys.executable, "-c", _CYTHONIZE, *CYTHON_MODULES]
    elif variant == "mypyc":
        mypyc = shutil.which("mypyc") or str(Path(sys.executable).with_name("mypyc"))
        cmd = [mypyc, *MYPYC_MODULES]
    else:
        raise SystemExit(f"--variants: unknown variant {variant!r}; use {', '.join(VARIANTS)}")
    print(f"building {variant} in {code}", file=sys.stderr)
    done = subprocess.run(cmd, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise SystemExit(f"{variant} build failed ({done.returncode}): " + " | ".join(tail))
    built = sorted(p.name for p in code.rglob("*.so"))
    if not built:
        raise SystemExit(f"{variant} build made no extension module in {code}")


def instructions(code: Path) -> int:
    cmd = [sys.executable, str(HERE / "engine_cycle.py"), "--instructions", "--code", str(code)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) instructions per request", out)
    if found is None:
        raise SystemExit(f"engine_cycle.py printed no instruction count: {out[-200:]}")
    return int(found.group(1))


def in_situ(codes: dict[str, Path], args: argparse.Namespace) -> dict[str, list[float]]:
    """CPU per request of real bursts, the variants interleaved round by round."""
    from pytest_lambda_slo.emulator import Emulator

    runs: dict[str, list[float]] = {name: [] for name in codes}
    spec = "fixed:duration=50ms,idle=1h"
    n, c = args.requests, args.concurrency
    with Emulator([spec], account_concurrency=10_000, seed=5) as emu:
        url = emu.function_url("fixed")
        bench_tools.run_engine(url, 2 * c, c)  # warm-up: c environments
        for round_no in range(args.rounds):
            for name, code in codes.items():
                result = bench_tools.run_engine(url, n, c, code_dir=str(code))
                if "failed" in result:
                    raise SystemExit(f"{name}: {result['failed']}")
                if not result.get("package", "").startswith(str(code)):
                    raise SystemExit(f"{name}: the child ran {result.get('package')}, not {code}")
                runs[name].append(result["run_cpu_s"] / n * 1e6)
                print(f"  round {round_no + 1} {name:11} {runs[name][-1]:.1f} us", file=sys.stderr)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--in-situ", action="store_true", help="also time real bursts")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in VARIANTS:
            parser.error(f"--variants: unknown variant {variant!r}; use {', '.join(VARIANTS)}")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.rev],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    result: dict[str, Any] = {"machine": machine(), "rev": commit, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        codes = {}
        for variant in variants:
            code = Path(tmp) / variant
            snapshot(args.rev, code)
            build(variant, code)
            codes[variant] = code
        for variant, code in codes.items():
            result["variants"][variant] = {"instructions_per_request": instructions(code)}
        if args.in_situ:
            for variant, runs in in_situ(codes, args).items():
                entry = result["variants"][variant]
                entry["cpu_us_per_request_runs"] = [round(r, 2) for r in runs]
                entry["cpu_us_per_request_median"] = round(statistics.median(runs), 2)
    base = result["variants"].get(variants[0], {})
    print(f"Machine: {result['machine']}. Code: git {commit}.")
    print("| variant | instructions per request | ratio | CPU us/request (median) | ratio |")
    print("|---|---|---|---|---|")
    for variant, entry in result["variants"].items():
        ins = entry["instructions_per_request"]
        cpu = entry.get("cpu_us_per_request_median")
        base_cpu = base.get("cpu_us_per_request_median")
        cpu_text = f"{cpu:.1f} | {cpu / base_cpu:.3f}" if cpu and base_cpu else "- | -"
        ratio = ins / base["instructions_per_request"]
        print(f"| {variant} | {ins:,} | {ratio:.3f} | {cpu_text} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
