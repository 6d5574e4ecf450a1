"""AWS credentials, region and SigV4 signing through botocore (the optional ``[aws]`` extra).

Credentials come from botocore's standard chain: environment, shared config and
credentials files with profiles, SSO, container and instance roles. Endpoints come from
botocore's resolution too: AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL, a profile's
``endpoint_url`` and the config file's ``services`` section. Nothing here ever
puts a key, secret or token into a message: errors name the profile and the remedy only.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigError, MissingExtraError

INSTALL_HINT = 'pip install "pytest-lambda-slo[aws]"'
# A signed request is reused this long. SigV4 accepts 5 minutes of clock skew, and
# refreshable credentials are renewed well before they expire (botocore refreshes 15
# minutes ahead), so a request signed within the last minute is always still valid.
DEFAULT_SIGN_WINDOW_S = 60.0
# How often, at most, the credential chain is re-read between signatures: rotated or
# refreshed credentials are picked up within this time (cost: ~2 us per check).
CREDENTIALS_CHECK_S = 1.0
# Headers that carry credentials or the signature; redact them wherever headers are shown.
SIGNING_HEADERS = frozenset({"authorization", "x-amz-security-token", "x-amz-date"})


# botocore logs, at DEBUG, canonical requests and request headers (with the session token)
# and request/response bodies (with environment variable values of a forced cold start).
# A filter on its loggers replaces every value registered here, and signatures, before a
# record reaches any handler. It only runs for records that are logged at all.
_REDACTED = "<redacted>"
_MIN_SECRET_LEN = 6  # shorter values ("1", "true") are not secrets and would mangle logs
_SIGNATURE_RE = re.compile(r"(Signature[=:]\s*|x-amz-signature=)[0-9a-fA-F]{64}", re.IGNORECASE)
# Environment variables in Lambda request/response bodies, JSON or Python repr.
_VARIABLES_RE = re.compile(r"""(["']Variables["']\s*:\s*)\{[^}]*\}""")
_FILTERED_LOGGERS = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.awsrequest",
    "botocore.httpsession",
    "botocore.hooks",
    "botocore.retryhandler",
    "botocore.credentials",
)
_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()
_filter_installed = False
# One botocore data loader for every session: it caches the service models, so resolving
# an endpoint costs a model load (~0.2 s) once per process, not once per target.
_loader: Any = None


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's business, not ours
            return True
        redacted = message
        for secret in _secrets:
            if secret in redacted:
                redacted = redacted.replace(secret, _REDACTED)
        redacted = _SIGNATURE_RE.sub(r"\1" + _REDACTED, redacted)
        if "Variables" in redacted:
            redacted = _VARIABLES_RE.sub(r"\1{" + _REDACTED + "}", redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def check_sign_window(window: object, owner: str = "") -> None:
    """A re-signing interval: seconds in (0, 240], inside SigV4's 5 minutes of clock skew."""
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 240:
        value = f"sign_window_s={window!r}"
        raise ConfigError(
            f"{f'{owner}({value})' if owner else value} is not valid; use seconds in (0, 240] "
            "(SigV4 allows 5 minutes of clock skew)"
        )


def protect_secrets(*values: object) -> None:
    """Keep these values (credentials, variable values) out of botocore's log records."""
    global _secrets, _filter_installed
    fresh = [v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN]
    with _secrets_lock:
        if not _filter_installed:
            redactor = _RedactSecrets()
            for name in _FILTERED_LOGGERS:
                logging.getLogger(name).addFilter(redactor)
            _filter_installed = True
        new = [v for v in fresh if v not in _secrets]
        if new:
            # Longest first, so a secret containing another is replaced whole.
            _secrets = tuple(sorted({*_secrets, *new}, key=len, reverse=True))


def require_botocore(feature: str = "Lambda Invoke targets") -> Any:
    """Import botocore, or raise MissingExtraError saying what to install."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.session
    except ImportError:
        raise MissingExtraError(
            f"{feature} need botocore, which is not installed; run: {INSTALL_HINT}"
        ) from None
    return botocore


def make_session(profile: str | None = None) -> Any:
    """A botocore session for ``profile`` (None: AWS_PROFILE or the default chain)."""
    botocore = require_botocore()
    from botocore.exceptions import ProfileNotFound

    global _loader
    session = botocore.session.Session(profile=profile)
    if _loader is None:
        _loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _loader)
    try:
        session.get_scoped_config()  # fails early on an unknown profile
    except ProfileNotFound:
        raise ConfigError(
            f"AWS profile {profile!r} was not found; use a profile from your AWS config "
            "file, or profile=None for the default credential chain"
        ) from None
    return session


def resolve_region(region: str | None, session: Any) -> str:
    """The region: the argument, else the AWS config chain (AWS_REGION, profile), else an error."""
    if region:
        return region
    found = session.get_config_variable("region")
    if found:
        return str(found)
    raise ConfigError(
        "no AWS region for the Lambda target; pass region='us-east-1' (or another region), "
        "use a function ARN, or set AWS_REGION / AWS_DEFAULT_REGION or a profile region"
    )


def resolve_endpoint(session: Any, service: str, region: str) -> str:
    """The endpoint botocore would call for ``service`` in ``region``.

    botocore's own resolution: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's
    ``endpoint_url`` and ``services`` section (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS),
    else the partition's public endpoint. The client is unsigned, so resolving an endpoint
    never looks up credentials (no instance-metadata call).
    """
    require_botocore()
    from botocore import UNSIGNED
    from botocore.config import Config

    client = session.create_client(
        service, region_name=region, config=Config(signature_version=UNSIGNED)
    )
    return str(client.meta.endpoint_url).rstrip("/")


def frozen_credentials(session: Any) -> Any:
    """Current credentials (access_key, secret_key, token) from the chain, or a ConfigError."""
    from botocore.exceptions import BotoCoreError

    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError as exc:
        # botocore's messages name files and providers, never secret values.
        raise ConfigError(f"AWS credentials could not be loaded: {type(exc).__name__}") from None
    if frozen is not None:
        protect_secrets(frozen.secret_key, frozen.token)
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise ConfigError(
            "no AWS credentials found for the Lambda target; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, use a profile (AWS_PROFILE or profile=...), SSO, or a role"
        )
    return frozen


class RequestSigner:
    """Signs requests with SigV4 and says when a signature is old enough to be redone.

    ``sign()`` costs a full SigV4 computation (tens of microseconds); the caller keeps the
    signed headers and asks :meth:`expired` per request, which costs one clock read (and,
    once a second, a look at the credential chain: renewed credentials mean a new signature).
    """

    def __init__(
        self,
        session: Any,
        *,
        region: str,
        service: str = "lambda",
        window_s: float = DEFAULT_SIGN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_botocore()
        self._session = session
        self.region = region
        self.service = service
        self.window_s = float(window_s)
        self._clock = clock
        self._signed_at: float | None = None
        self._next_check = 0.0
        self._credentials = frozen_credentials(session)
        self.signatures = 0  # how many times sign() ran: the amortisation is observable

    @property
    def access_key_id(self) -> str:
        """The access key id requests are signed with: an identifier for messages, no secret."""
        return str(self._credentials.access_key)

    def expired(self) -> bool:
        """True when the last signature is older than the window (or nothing was signed)."""
        signed_at = self._signed_at
        if signed_at is None:
            return True
        now = self._clock()
        if now - signed_at >= self.window_s:
            return True
        if now >= self._next_check:
            self._next_check = now + CREDENTIALS_CHECK_S
            return frozen_credentials(self._session) != self._credentials
        return False

    def sign(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """Return ``headers`` plus X-Amz-Date, Authorization (and X-Amz-Security-Token)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._signed_at is not None:
            # Re-read the chain: refreshable credentials may have been renewed or rotated.
            self._credentials = frozen_credentials(self._session)
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        SigV4Auth(self._credentials, self.service, self.region).add_auth(request)
        self._signed_at = self._clock()
        self._next_check = self._signed_at + CREDENTIALS_CHECK_S
        self.signatures += 1
        return [(str(k), str(v)) for k, v in request.headers.items()]


def create_client(
    service: str,
    *,
    session: Any,
    region: str,
    endpoint_url: str | None,
    verify: bool | str = True,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> Any:
    """A botocore client with SDK retries off (a retried call would hide what happened)."""
    require_botocore()
    from botocore.config import Config

    frozen_credentials(session)  # a clear error without credentials; keeps them out of logs
    config = Config(
        retries={"max_attempts": 0, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return session.create_client(
        service, region_name=region, endpoint_url=endpoint_url, verify=verify, config=config
    )
