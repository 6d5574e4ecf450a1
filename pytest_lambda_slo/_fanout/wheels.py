"""Wheels of compiled dependencies for the generator function's runtime: tags, cache, pip.

A Lambda runtime is CPython on Amazon Linux: a wheel fits when its tags name that CPython
and a manylinux platform no newer than the runtime's glibc, for the function's CPU. Wheels
come from a cache directory, else ``pip download`` fetches them as a user's machine would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import LambdaSLOError

# The glibc of each Python runtime's OS: Amazon Linux 2 (2.26) up to python3.11,
# Amazon Linux 2023 (2.34) from python3.12. A manylinux wheel must not need a newer one.
RUNTIME_GLIBC = {"3.10": 26, "3.11": 26, "3.12": 34, "3.13": 34, "3.14": 34}
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
PIP_TIMEOUT_S = 300.0
# Words in pip's output that mean the package index could not be reached.
NETWORK_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Max retries exceeded",
    "Could not fetch URL",
    "SSLError",
)


class PackageError(LambdaSLOError):
    """The generator's deployment zip cannot be built (a wheel is missing, it is too big)."""


class RegistryUnreachable(PackageError):
    """pip could not reach the package index to fetch a wheel."""


def default_wheel_dir() -> Path:
    """``$LAMBDA_SLO_WHEEL_DIR``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, then the plugin's."""
    override = os.environ.get("LAMBDA_SLO_WHEEL_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-lambda-slo" / "wheels"


def manylinux_platforms(architecture: str, python_version: str) -> list[str]:
    """Platform tags a wheel may carry to run on the runtime, newest first."""
    machine = MACHINES[architecture]
    platforms = []
    for minor in range(RUNTIME_GLIBC[python_version], 4, -1):
        platforms.append(f"manylinux_2_{minor}_{machine}")
        legacy = LEGACY_MANYLINUX.get(minor)
        if legacy and (machine == "x86_64" or minor == 17):
            platforms.append(f"{legacy}_{machine}")
    return platforms


def supported_tags(architecture: str, python_version: str) -> frozenset[Tag]:
    """Every wheel tag the function's runtime accepts (CPython, manylinux, its glibc)."""
    version = tuple(int(p) for p in python_version.split("."))
    platforms = manylinux_platforms(architecture, python_version)
    abi = f"cp{version[0]}{version[1]}"
    tags = set(cpython_tags(version, abis=[abi], platforms=platforms))
    tags.update(compatible_tags(version, interpreter=abi, platforms=platforms))
    return frozenset(tags)


def elf_machine(data: bytes) -> str | None:
    """The CPU an ELF shared object is built for, or None if ``data`` is not ELF."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")
    return ELF_MACHINES.get(code, f"elf-machine-{code}")


def find_or_fetch_wheel(
    name: str,
    version: str | None,
    architecture: str,
    python_version: str,
    wheel_dir: Path,
) -> Path:
    """A wheel of ``name`` (==``version``) the runtime accepts: from the cache, else pip."""
    tags = supported_tags(architecture, python_version)
    found = cached_wheel(name, version, tags, wheel_dir)
    if found is not None:
        return found
    pip_download(name, version, architecture, python_version, wheel_dir)
    found = cached_wheel(name, version, tags, wheel_dir)
    if found is None:  # pip succeeded but saved something else (cannot normally happen)
        raise PackageError(f"pip saved no usable wheel of {name} into {wheel_dir}")
    return found


def pip_download(
    name: str, version: str | None, architecture: str, python_version: str, wheel_dir: Path
) -> None:
    """``pip download --only-binary=:all:`` of one distribution for the runtime's platform."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    platforms = manylinux_platforms(architecture, python_version)
    digits = python_version.replace(".", "")
    spec = f"{name}=={version}" if version else name
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps"]
    command += ["--python-version", python_version, "--implementation", "cp"]
    command += ["--abi", f"cp{digits}", "--abi", "abi3", "--abi", "none"]
    for plat in platforms:
        command += ["--platform", plat]
    command += ["--dest", str(wheel_dir), "--disable-pip-version-check", spec]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegistryUnreachable(
            f"pip download {spec} did not finish within {PIP_TIMEOUT_S:g}s; check the "
            f"package index, or put the wheel into {wheel_dir}"
        ) from None
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    if "No module named pip" in output:
        raise PackageError(
            f"pip is not installed in {sys.executable}'s environment; install it, or put a "
            f"wheel of {spec} for {platforms[0]} into {wheel_dir}"
        )
    if any(marker in output for marker in NETWORK_MARKERS):
        raise RegistryUnreachable(
            f"pip could not reach the package index to fetch {spec} for {platforms[0]}; "
            f"check the network or pip's index settings, or put the wheel into {wheel_dir}"
        )
    raise PackageError(
        f"no wheel of {spec} for {MACHINES[architecture]} CPython {python_version} "
        f"(manylinux, glibc <= 2.{RUNTIME_GLIBC[python_version]}) on the package index; "
        f"build one on a matching Linux machine ('pip wheel {spec}') and put it into "
        f"{wheel_dir}, or use another architecture"
    )


def cached_wheel(
    name: str, version: str | None, tags: frozenset[Tag], wheel_dir: Path
) -> Path | None:
    if not wheel_dir.is_dir():
        return None
    wanted = canonicalize_name(name)
    for candidate in sorted(wheel_dir.glob("*.whl")):
        try:
            wheel_name, wheel_version, _, wheel_tags = parse_wheel_filename(candidate.name)
        except ValueError:
            continue
        if wheel_name != wanted or (version is not None and str(wheel_version) != version):
            continue
        if wheel_tags & tags:
            return candidate
    return None
