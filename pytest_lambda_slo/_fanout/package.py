"""The generator function's deployment zip, built in memory from the installed plugin.

What the zip holds: the ``pytest_lambda_slo`` package as installed (its ``__init__``
imports the emulator package too, so that ships; tests are not part of the package), the
distributions the load engine imports in a shard (``hdrhistogram``, ``httptools``,
``uvloop``) and, unless ``bundle_botocore=False``, botocore and its requirements (Invoke
targets sign with it). Pure-Python distributions are copied from this machine's
installation. Compiled ones must match the function's architecture and Python version:
when this machine is Linux on the same CPU with the same Python and its installed wheel
is a manylinux build old enough for the runtime's glibc, its installed files are used;
otherwise pip downloads the manylinux wheel (``--only-binary=:all: --platform ...``) into
a cache directory, as a user's machine would, and the wheel is unpacked into the zip.

The zip is deterministic (sorted entries, fixed timestamps and modes): the same inputs
give the same files, so the code hash tells whether a deployed function runs this build.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import io
import json
import platform
import re
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from .config import LambdaFanout
from .contents import (
    ENGINE_DISTRIBUTIONS,
    HANDLER,
    MANIFEST,
    NAME_PREFIX,
    PURE_DISTRIBUTIONS,
    SDK_DISTRIBUTIONS,
)
from .wheels import (
    MACHINES,
    PackageError,
    RegistryUnreachable,
    default_wheel_dir,
    elf_machine,
    find_or_fetch_wheel,
    supported_tags,
)

PLUGIN_DISTRIBUTION = "pytest-lambda-slo"
PLUGIN_PACKAGE = "pytest_lambda_slo"
# Declared as run-time requirements by hdrhistogram, but only used to build it.
BUILD_ONLY = frozenset({"pbr", "setuptools"})
# Lambda's limits for a deployment package uploaded directly (CreateFunction ZipFile):
# 50 MB zipped (the API refuses a request body above 50 MiB of zip) and 250 MB unzipped.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_SKIPPED_METADATA = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


@dataclass(frozen=True)
class Bundled:
    """One distribution in the zip and where its files came from."""

    name: str
    version: str
    compiled: bool
    source: str  # "installed" (this machine's files) or the wheel's file name


@dataclass(frozen=True)
class Package:
    """A built deployment zip and what identifies it."""

    zip_bytes: bytes
    build_hash: str  # 12 hex digits of (plugin version, dependencies, arch, memory, Python)
    code_hash: str  # sha256 (hex) of every file name and content in the zip
    plugin_version: str
    architecture: str
    python_version: str
    memory: int
    distributions: tuple[Bundled, ...]
    unzipped_bytes: int
    compiled_files: tuple[tuple[str, str], ...]  # (path in the zip, ELF machine)
    notes: tuple[str, ...]

    @property
    def function_name(self) -> str:
        return NAME_PREFIX + self.build_hash

    @property
    def runtime(self) -> str:
        return f"python{self.python_version}"

    @property
    def handler(self) -> str:
        return HANDLER

    @property
    def size(self) -> int:
        return len(self.zip_bytes)

    def tags(self) -> dict[str, str]:
        return {
            "lambda-slo:managed": "true",
            "lambda-slo:version": self.plugin_version,
            "lambda-slo:build": self.build_hash,
            "lambda-slo:code": self.code_hash,
        }

    def summary(self) -> str:
        parts = ", ".join(
            f"{d.name} {d.version} ({d.source if d.compiled else 'pure'})"
            for d in self.distributions
        )
        return (
            f"generator zip {self.function_name}: {self.size / 1e6:.1f} MB zipped, "
            f"{self.unzipped_bytes / 1e6:.1f} MB unzipped, {self.runtime} "
            f"{self.architecture}; {parts}"
        )


def generator_name(
    plugin_version: str,
    dependencies: Mapping[str, str],
    architecture: str,
    memory: int,
    python_version: str,
) -> str:
    """``lambda-slo-gen-<12 hex>``: the same inputs always give the same name."""
    return NAME_PREFIX + build_hash(
        plugin_version, dependencies, architecture, memory, python_version
    )


def build_hash(
    plugin_version: str,
    dependencies: Mapping[str, str],
    architecture: str,
    memory: int,
    python_version: str,
) -> str:
    inputs = {
        "plugin": plugin_version,
        "dependencies": {canonicalize_name(k): v for k, v in sorted(dependencies.items())},
        "architecture": architecture,
        "memory": memory,
        "python": python_version,
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def build_package(fanout: LambdaFanout, *, prefer_installed: bool = True) -> Package:
    """Build the zip for ``fanout``'s architecture, Python version and memory.

    ``prefer_installed=False`` takes compiled distributions from wheels even when this
    machine's installed files would do.
    """
    architecture = fanout.architecture
    python_version = str(fanout.python_version)
    wheel_dir = Path(fanout.wheel_dir) if fanout.wheel_dir is not None else default_wheel_dir()
    roots = (
        ENGINE_DISTRIBUTIONS
        + PURE_DISTRIBUTIONS
        + (SDK_DISTRIBUTIONS if fanout.bundle_botocore else ())
    )
    wanted = _requirement_closure(roots, architecture, python_version)
    tags = supported_tags(architecture, python_version)
    same_platform = _same_platform(architecture, python_version)

    files: dict[str, bytes] = {}
    bundled: list[Bundled] = []
    notes: list[str] = []
    missing: list[str] = []
    for name, requirement in wanted.items():
        installed = _installed(name)
        if (
            installed is not None
            and requirement
            and not requirement.specifier.contains(installed.version, prereleases=True)
        ):
            raise PackageError(
                f"{installed.metadata['Name']} {installed.version} is installed but "
                f"{requirement} is required; reinstall pytest-lambda-slo's dependencies"
            )
        compiled = installed is None or not _is_pure(installed)
        if installed is not None and not compiled:
            dist_name = installed.metadata["Name"]
            _add(files, _installed_files(installed), dist_name)
            bundled.append(Bundled(dist_name, installed.version, False, "installed"))
            continue
        if (
            installed is not None
            and prefer_installed
            and same_platform
            and _installed_tags(installed) & tags
        ):
            dist_name = installed.metadata["Name"]
            _add(files, _installed_files(installed), dist_name)
            bundled.append(Bundled(dist_name, installed.version, True, "installed"))
            notes.append(
                f"{dist_name}: this machine's installed build (same "
                f"platform: linux {MACHINES[architecture]}, CPython {python_version})"
            )
            continue
        version = installed.version if installed is not None else None
        try:
            wheel = find_or_fetch_wheel(name, version, architecture, python_version, wheel_dir)
        except RegistryUnreachable:
            raise
        except PackageError as exc:
            missing.append(str(exc))  # fetch the others first: one message names them all
            continue
        wheel_name, wheel_version, _, _ = parse_wheel_filename(wheel.name)
        _add(files, _wheel_files(wheel), str(wheel_name))
        pure = all(tag.platform == "any" for tag in parse_wheel_filename(wheel.name)[3])
        bundled.append(Bundled(str(wheel_name), str(wheel_version), not pure, wheel.name))
        notes.append(f"{wheel_name}: wheel {wheel.name} from {wheel_dir}")
    if missing:
        raise PackageError("; ".join(missing))

    plugin_version = metadata.version(PLUGIN_DISTRIBUTION)
    _add(files, _plugin_files(plugin_version), PLUGIN_DISTRIBUTION)
    dependencies = {b.name: b.version for b in bundled}
    memory = int(fanout.memory)
    build = build_hash(plugin_version, dependencies, architecture, memory, python_version)
    manifest = {
        "build": build,
        "plugin_version": plugin_version,
        "architecture": architecture,
        "python_version": python_version,
        "memory": memory,
        "distributions": {canonicalize_name(k): v for k, v in sorted(dependencies.items())},
    }
    files[MANIFEST] = json.dumps(manifest, sort_keys=True, indent=1).encode()

    compiled_files = _check_compiled(files, architecture)
    unzipped = sum(len(data) for data in files.values())
    if unzipped > MAX_UNZIPPED_BYTES:
        raise PackageError(
            f"the generator would be {unzipped / 1e6:.1f} MB unzipped, above Lambda's "
            f"{MAX_UNZIPPED_BYTES / 1e6:.0f} MB limit"
        )
    zip_bytes = _zip(files)
    if len(zip_bytes) > MAX_ZIP_BYTES:
        hint = (
            "; bundle_botocore=False leaves botocore to the runtime"
            if (fanout.bundle_botocore)
            else ""
        )
        raise PackageError(
            f"the generator zip is {len(zip_bytes) / 1e6:.1f} MB, above Lambda's 50 MB "
            f"({MAX_ZIP_BYTES:,} bytes) limit for a direct upload{hint}"
        )
    return Package(
        zip_bytes=zip_bytes,
        build_hash=build,
        code_hash=code_hash(files),
        plugin_version=plugin_version,
        architecture=architecture,
        python_version=python_version,
        memory=memory,
        distributions=tuple(bundled),
        unzipped_bytes=unzipped,
        compiled_files=compiled_files,
        notes=tuple(notes),
    )


def code_hash(files: Mapping[str, bytes]) -> str:
    """sha256 over names and contents: independent of zlib's version, unlike the zip's."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _requirement_closure(
    roots: Iterable[str], architecture: str, python_version: str
) -> dict[str, Requirement | None]:
    """Distributions (canonical name -> requirement) needed on the runtime, roots first."""
    environment = {
        **default_environment(),
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": MACHINES[architecture],
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "extra": "",
    }
    wanted: dict[str, Requirement | None] = {}
    queue: list[tuple[str, Requirement | None]] = [(r, None) for r in roots]
    while queue:
        name, requirement = queue.pop(0)
        key = str(canonicalize_name(name))
        if key in wanted or key in BUILD_ONLY:
            continue
        wanted[key] = requirement
        installed = _installed(key)
        for text in (installed.requires or []) if installed is not None else []:
            try:
                child = Requirement(text)
            except InvalidRequirement:
                continue
            if child.marker is None or child.marker.evaluate(environment):  # type: ignore[arg-type]
                queue.append((child.name, child))
    return wanted


def _installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _is_pure(dist: metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    if re.search(r"^Root-Is-Purelib:\s*false", wheel, re.MULTILINE | re.IGNORECASE):
        return False
    return not any(str(f).endswith((".so", ".pyd")) for f in dist.files or [])


def _installed_tags(dist: metadata.Distribution) -> frozenset[Tag]:
    tags: set[Tag] = set()
    for line in (dist.read_text("WHEEL") or "").splitlines():
        if line.startswith("Tag:"):
            tags.update(parse_tag(line.split(":", 1)[1].strip()))
    return frozenset(tags)


def _same_platform(architecture: str, python_version: str) -> bool:
    return (
        sys.platform == "linux"
        and platform.machine() == MACHINES[architecture]
        and sys.implementation.name == "cpython"
        and f"{sys.version_info[0]}.{sys.version_info[1]}" == python_version
    )


def _installed_files(dist: metadata.Distribution) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in dist.files or []:
        path = entry.as_posix()
        parts = path.split("/")
        if ".." in parts or "__pycache__" in parts or path.endswith((".pyc", ".pth")):
            continue
        if parts[0].endswith(".dist-info") and parts[-1] in _SKIPPED_METADATA:
            continue
        located = Path(str(entry.locate()))
        if located.is_file():
            files[path] = located.read_bytes()
    return files


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            path = info.filename
            parts = path.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: nothing a handler imports
                path = "/".join(parts[2:])
            elif parts[0].endswith(".dist-info") and parts[-1] in _SKIPPED_METADATA:
                continue
            files[path] = archive.read(info)
    return files


def _plugin_files(version: str) -> dict[str, bytes]:
    """The plugin package from where it is imported (works for editable installs too)."""
    root = Path(__file__).resolve().parents[1]
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root.parent).as_posix()
        parts = relative.split("/")
        if path.is_dir() or path.suffix == ".pyc" or "__pycache__" in parts:
            continue
        if any(part.startswith(".") for part in parts):
            continue  # editor and tool leftovers (.mypy_cache, .swp), never the plugin's code
        files[relative] = path.read_bytes()
    meta = metadata.distribution(PLUGIN_DISTRIBUTION).read_text("METADATA") or (
        f"Metadata-Version: 2.1\nName: {PLUGIN_DISTRIBUTION}\nVersion: {version}\n"
    )
    files[f"{PLUGIN_PACKAGE}-{version}.dist-info/METADATA"] = meta.encode()
    return files


def _add(files: dict[str, bytes], new: Mapping[str, bytes], owner: str) -> None:
    clash = sorted(set(files) & set(new))
    if clash:
        raise PackageError(f"{owner} would overwrite {clash[0]} from another distribution")
    files.update(new)


def _check_compiled(files: Mapping[str, bytes], architecture: str) -> tuple[tuple[str, str], ...]:
    """Every shared object must be built for the function's CPU; refuse the zip otherwise."""
    wanted = MACHINES[architecture]
    found = []
    for name in sorted(files):
        if not (name.endswith(".so") or ".so." in name.rsplit("/", 1)[-1]):
            continue
        machine = elf_machine(files[name])
        if machine != wanted:
            raise PackageError(
                f"{name} is built for {machine or 'no known CPU'}, not {wanted}; the "
                f"generator for {architecture} cannot load it"
            )
        found.append((name, machine))
    return tuple(found)


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()
