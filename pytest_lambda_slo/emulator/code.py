"""Deployment packages of functions created through the API: the zip, unpacked, and its metadata.

A zip is checked (a real zip, no member outside its directory, Lambda's 250 MB unzipped
limit) and unpacked into its own temporary directory, which goes when the code is replaced
or the function deleted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

MAX_ZIP_BYTES = 50 * 1024 * 1024  # Lambda's direct-upload limit (zipped)
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's unzipped limit
PYTHON_RUNTIMES = tuple(f"python3.{minor}" for minor in range(8, 15))


class CodeError(ValueError):
    """The package or a deployment field is unusable: str() says which and why."""


@dataclass(eq=False)
class CodePackage:
    """An unpacked zip: where it is, its base64 SHA-256 (Lambda's CodeSha256) and size."""

    directory: Path
    sha256: str
    size: int

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def unpack(zip_b64: object, name: str) -> CodePackage:
    """Decode ``Code.ZipFile`` (base64 text, as boto3 sends it) and unpack it."""
    if not isinstance(zip_b64, str):
        raise CodeError("Code.ZipFile must be the base64 text of a zip file")
    try:
        data = base64.b64decode(zip_b64, validate=True)
    except ValueError:
        raise CodeError("Code.ZipFile is not valid base64") from None
    if len(data) > MAX_ZIP_BYTES:
        raise CodeError(f"Code.ZipFile is {len(data)} bytes; Lambda takes at most {MAX_ZIP_BYTES}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CodeError(
            "Could not unzip uploaded file. Please check your file, then try again."
        ) from None
    with archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED_BYTES:
            raise CodeError(
                f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes (is {total})"
            )
        for member in members:
            path = PurePosixPath(member.filename)
            if path.is_absolute() or ".." in path.parts:
                raise CodeError(f"zip member {member.filename!r} points outside the package")
        directory = Path(tempfile.mkdtemp(prefix=f"lambda-slo-{name}-"))
        try:
            archive.extractall(directory)
        except Exception:
            shutil.rmtree(directory, ignore_errors=True)
            raise
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return CodePackage(directory, sha, len(data))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass
class Deployment:
    """What CreateFunction set beyond the execution model's keys: code, handler, tags..."""

    code: CodePackage
    handler: str
    runtime: str
    role: str
    description: str = ""
    architectures: tuple[str, ...] = ("x86_64",)
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "Pending"
    last_modified: str = field(default_factory=_now)

    def touch(self) -> None:
        self.last_modified = _now()


def check_handler(value: object) -> str:
    if not isinstance(value, str) or "." not in value.strip(".") or len(value) > 128:
        raise CodeError(f"Handler {value!r} is not valid; use module.function, e.g. app.handler")
    return value


def check_runtime(value: object) -> str:
    if value not in PYTHON_RUNTIMES:
        raise CodeError(
            f"Runtime {value!r} is not emulated; use one of: {', '.join(PYTHON_RUNTIMES)} "
            "(handlers run on the emulator's own Python)"
        )
    return str(value)


def check_architectures(value: object) -> tuple[str, ...]:
    if value is None:
        return ("x86_64",)
    if not isinstance(value, list) or len(value) != 1 or value[0] not in ("x86_64", "arm64"):
        raise CodeError(f'Architectures {value!r} is not valid; use ["x86_64"] or ["arm64"]')
    return (value[0],)


def check_tags(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CodeError("Tags must be an object of string keys and string values")
    return {str(k): v for k, v in value.items()}
