"""The generator zip: what it holds, that it runs on its own, its name, its size limit."""

from __future__ import annotations

import io
import json
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fanout_helpers import from_registry

from pytest_lambda_slo._fanout import package as packaging_module
from pytest_lambda_slo._fanout import wheels as wheels_module
from pytest_lambda_slo._fanout.config import LambdaFanout, local_python_version
from pytest_lambda_slo._fanout.contents import HANDLER, MANIFEST
from pytest_lambda_slo._fanout.package import (
    MAX_ZIP_BYTES,
    Package,
    PackageError,
    build_package,
    generator_name,
)
from pytest_lambda_slo._fanout.wheels import elf_machine, manylinux_platforms, supported_tags

# Distributions that only the host side uses: the zip leaves them out on purpose.
HOST_ONLY = {"pytest", "_pytest", "scipy", "numpy", "packaging"}
SAME_PLATFORM = (
    sys.platform == "linux"
    and platform.machine() == "x86_64"
    and local_python_version() in ("3.10", "3.11", "3.12", "3.13", "3.14")
)
needs_linux_x86_64 = pytest.mark.skipif(
    not SAME_PLATFORM, reason="the generator's default platform (linux x86_64) is not this one"
)

# Run inside a fresh interpreter with no site-packages: only the zip and the standard library.
_ISOLATED = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import pytest_lambda_slo
from pytest_lambda_slo._load.shard import handler

class Context:
    memory_limit_in_mb = "2048"

probe = handler({"op": "probe"}, Context())
failed = {}
for module in pkgutil.walk_packages(pytest_lambda_slo.__path__, "pytest_lambda_slo."):
    if module.name.endswith("__main__"):
        continue  # running it would start a program
    try:
        importlib.import_module(module.name)
    except ModuleNotFoundError as exc:
        failed[module.name] = exc.name
try:
    handler({"op": "nonsense"}, Context())
    unknown = None
except ValueError as exc:
    unknown = str(exc)
print(json.dumps({"probe": probe, "failed": failed, "unknown": unknown, "path": sys.path}))
"""


def _names(package: Package) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(package.zip_bytes)).namelist()


def _run_isolated(package: Package, where: Path) -> dict:
    zipfile.ZipFile(io.BytesIO(package.zip_bytes)).extractall(where)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _ISOLATED, str(where)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert not any("site-packages" in p for p in result["path"]), result["path"]
    return result


def _check_runs_alone(package: Package, where: Path) -> None:
    result = _run_isolated(package, where)
    probe = result["probe"]
    assert probe["op"] == "probe" and probe["memory_mb"] == 2048
    assert probe["machine"] == "x86_64"
    assert probe["build"]["build"] == package.build_hash
    # The compiled modules were loaded from the zip, not from this machine's installation.
    for distribution, path in probe["compiled_modules"].items():
        assert path.startswith(str(where)), (distribution, path)
    assert set(probe["compiled_modules"]) == {"hdrhistogram", "httptools", "uvloop"}
    # Every module of the plugin imports from the zip alone, except the host-only ones.
    assert set(result["failed"].values()) <= HOST_ONLY, result["failed"]
    assert "pytest_lambda_slo._load.engine" not in result["failed"]
    assert "pytest_lambda_slo._load.workers" not in result["failed"]
    assert "pytest_lambda_slo._targets.invoke" not in result["failed"]
    assert "unknown operation 'nonsense'" in result["unknown"]


@needs_linux_x86_64
def test_zip_from_this_machines_installed_files(local_package: Package, tmp_path: Path) -> None:
    package = local_package
    names = _names(package)
    assert "pytest_lambda_slo/_load/shard.py" in names
    assert HANDLER == "pytest_lambda_slo._load.shard.handler"
    assert MANIFEST in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("tests/", "scipy/", "numpy/", "_pytest/")) for n in names)
    compiled = dict(package.compiled_files)
    assert compiled and set(compiled.values()) == {"x86_64"}
    assert any(n.startswith("pyhdrh.") for n in compiled)
    assert any(n.startswith("httptools/") for n in compiled)
    assert any(n.startswith("uvloop/") for n in compiled)
    sources = {d.name.lower(): d for d in package.distributions}
    assert {"hdrhistogram", "httptools", "uvloop", "botocore"} <= set(sources)
    # Same platform: the installed builds are used, and the notes say so.
    for name in ("hdrhistogram", "httptools", "uvloop"):
        assert sources[name].compiled and sources[name].source == "installed"
    assert any("this machine's installed build (same platform" in n for n in package.notes)
    assert package.size < MAX_ZIP_BYTES
    assert re.fullmatch(r"lambda-slo-gen-[0-9a-f]{12}", package.function_name)
    assert package.tags()["lambda-slo:managed"] == "true"
    assert package.tags()["lambda-slo:code"] == package.code_hash
    _check_runs_alone(package, tmp_path)


@needs_linux_x86_64
def test_the_zip_is_deterministic(local_package: Package, small_package: Package) -> None:
    again = build_package(LambdaFanout(2))
    assert again.zip_bytes == local_package.zip_bytes
    assert again.code_hash == local_package.code_hash
    assert again.function_name == local_package.function_name
    # Without botocore: other dependencies, so another name and code hash, and smaller.
    assert small_package.function_name != local_package.function_name
    assert small_package.code_hash != local_package.code_hash
    assert small_package.size < local_package.size
    assert not any(n.startswith("botocore/") for n in _names(small_package))


def test_the_name_is_a_hash_of_its_inputs() -> None:
    deps = {"httptools": "0.9.0", "uvloop": "0.23.0", "hdrhistogram": "0.10.8"}
    base = generator_name("0.1.0", deps, "x86_64", 2048, "3.11")
    assert base == generator_name("0.1.0", dict(reversed(deps.items())), "x86_64", 2048, "3.11")
    assert re.fullmatch(r"lambda-slo-gen-[0-9a-f]{12}", base)
    others = {
        generator_name("0.1.1", deps, "x86_64", 2048, "3.11"),
        generator_name("0.1.0", {**deps, "uvloop": "0.22.0"}, "x86_64", 2048, "3.11"),
        generator_name("0.1.0", deps, "arm64", 2048, "3.11"),
        generator_name("0.1.0", deps, "x86_64", 4096, "3.11"),
        generator_name("0.1.0", deps, "x86_64", 2048, "3.12"),
    }
    assert base not in others and len(others) == 5


def test_platform_tags_follow_the_runtimes_glibc() -> None:
    al2 = manylinux_platforms("x86_64", "3.11")
    assert al2[0] == "manylinux_2_26_x86_64" and "manylinux2014_x86_64" in al2
    assert "manylinux_2_28_x86_64" not in al2  # newer than Amazon Linux 2's glibc
    al2023 = manylinux_platforms("arm64", "3.12")
    assert al2023[0] == "manylinux_2_34_aarch64" and "manylinux2014_aarch64" in al2023
    tags = {str(t) for t in supported_tags("arm64", "3.12")}
    assert "cp312-cp312-manylinux_2_28_aarch64" in tags and "py3-none-any" in tags
    assert not any("x86_64" in t for t in tags)


def test_elf_machine() -> None:
    header = bytearray(b"\x7fELF\x02\x01\x01" + b"\0" * 13)
    header[18:20] = (183).to_bytes(2, "little")
    assert elf_machine(bytes(header)) == "aarch64"
    header[18:20] = (62).to_bytes(2, "little")
    assert elf_machine(bytes(header)) == "x86_64"
    assert elf_machine(b"#!/bin/sh\n" + b"\0" * 20) is None


@needs_linux_x86_64
def test_a_zip_above_the_limit_is_refused_with_its_size(
    monkeypatch: pytest.MonkeyPatch, local_package: Package
) -> None:
    monkeypatch.setattr(packaging_module, "MAX_ZIP_BYTES", local_package.size - 1)
    with pytest.raises(PackageError) as info:
        build_package(LambdaFanout(2))
    message = str(info.value)
    assert f"{local_package.size / 1e6:.1f} MB" in message
    assert "50 MB" in message and "bundle_botocore=False" in message


@needs_linux_x86_64
def test_a_shared_object_for_another_cpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend this machine were an arm64 Linux box: its installed x86_64 builds would be
    # taken as "same platform", and the ELF check must still catch them.
    monkeypatch.setattr(packaging_module, "_same_platform", lambda arch, py: True)
    monkeypatch.setattr(
        packaging_module, "supported_tags", lambda arch, py: supported_tags("x86_64", py)
    )
    with pytest.raises(PackageError, match=r"is built for x86_64, not aarch64"):
        build_package(LambdaFanout(2, architecture="arm64", bundle_botocore=False))


@pytest.mark.registry
@needs_linux_x86_64
def test_wheels_from_the_index_for_x86_64(wheel_cache: Path, tmp_path: Path) -> None:
    fanout = LambdaFanout(2, bundle_botocore=False, wheel_dir=wheel_cache)
    package = from_registry(lambda: build_package(fanout, prefer_installed=False))
    sources = {d.name.lower(): d.source for d in package.distributions}
    for name in ("hdrhistogram", "httptools", "uvloop"):
        assert sources[name].endswith(".whl") and "x86_64" in sources[name], sources
        assert (wheel_cache / sources[name]).is_file()
    assert set(dict(package.compiled_files).values()) == {"x86_64"}
    _check_runs_alone(package, tmp_path / "unpacked")

    # The cached wheels are used without the index: pip is never asked again.
    offline = tmp_path / "offline-cache"
    offline.mkdir()
    for wheel in sources.values():
        if wheel.endswith(".whl"):  # pure-Python distributions come from this machine
            shutil.copy(wheel_cache / wheel, offline / wheel)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            wheels_module,
            "pip_download",
            lambda *a, **k: pytest.fail("pip was called although the wheels were cached"),
        )
        cached = build_package(
            LambdaFanout(2, bundle_botocore=False, wheel_dir=offline), prefer_installed=False
        )
    assert cached.code_hash == package.code_hash


@pytest.mark.registry
def test_wheels_from_the_index_for_arm64(wheel_cache: Path) -> None:
    fanout = LambdaFanout(2, architecture="arm64", bundle_botocore=False, wheel_dir=wheel_cache)
    try:
        package = from_registry(lambda: build_package(fanout))
    except PackageError as exc:
        # hdrhistogram publishes no Linux aarch64 wheel: the refusal says which and what to do.
        message = str(exc)
        assert "no wheel of hdrhistogram==" in message and "aarch64" in message, message
        assert str(wheel_cache) in message and "pip wheel" in message
        # The others were fetched for aarch64 and are in the cache.
        for name in ("httptools", "uvloop"):
            wheels = list(wheel_cache.glob(f"{name}-*aarch64*.whl"))
            assert wheels, name
            with zipfile.ZipFile(wheels[0]) as archive:
                objects = [n for n in archive.namelist() if n.endswith(".so")]
                assert objects
                assert {elf_machine(archive.read(n)) for n in objects} == {"aarch64"}
        return
    assert set(dict(package.compiled_files).values()) == {"aarch64"}
    names = {d.name.lower() for d in package.distributions}
    assert {"hdrhistogram", "httptools", "uvloop"} <= names
