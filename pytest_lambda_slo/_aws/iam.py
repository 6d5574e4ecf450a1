"""IAM (SigV4) auth for HTTP front doors: Function URLs with AWS_IAM auth, IAM-authorised routes.

``AwsIam`` says how to sign (service, region, where the credentials come from); the
service and region of an AWS host are read from the host itself. ``IamSigning`` signs a
request through :class:`auth.RequestSigner` (botocore's SigV4) and says when a signed
request must be signed again: its window passed, or the credential chain (refreshable
credentials, a rotated key) now holds other keys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .auth import (
    DEFAULT_SIGN_WINDOW_S,
    RequestSigner,
    check_sign_window,
    make_session,
    protect_secrets,
)

# <url-id>.lambda-url.<region>.on.aws and <api-id>.execute-api.<region>.amazonaws.com[.cn]
_FUNCTION_URL = re.compile(r"^[a-z0-9-]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$")
_API_GATEWAY = re.compile(r"^[a-z0-9-]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
SERVICES = ("lambda", "execute-api")
IAM_FORMS = (
    "auth='aws_iam' on a Function URL (*.lambda-url.REGION.on.aws) or an API Gateway URL "
    "(*.execute-api.REGION.amazonaws.com), or auth=AwsIam(service='lambda' or "
    "'execute-api', region='us-east-1') for any other host"
)


def service_and_region(host: str) -> tuple[str, str] | None:
    """(service, region) an AWS front-door host implies, or None for any other host."""
    host = host.lower().rstrip(".")
    match = _FUNCTION_URL.match(host)
    if match:
        return "lambda", match.group(1)
    match = _API_GATEWAY.match(host)
    if match:
        return "execute-api", match.group(1)
    return None


class _GivenCredentials:
    """Credentials handed in (a botocore Credentials object): what a session would return."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def get_credentials(self) -> Any:
        return self._credentials


def _botocore_credentials(value: object) -> Any:
    """A botocore Credentials object from ``credentials=`` (one, or (key, secret[, token]))."""
    if hasattr(value, "get_frozen_credentials"):
        return value
    if (
        isinstance(value, (tuple, list))
        and len(value) in (2, 3)
        and all(isinstance(v, str) and v for v in value)
    ):
        from botocore.credentials import Credentials  # lazy: botocore is the optional [aws] extra

        protect_secrets(*value[1:])
        return Credentials(*value)
    raise ConfigError(
        "AwsIam(credentials=...) is not valid; use a botocore Credentials object (for "
        "example RefreshableCredentials) or a tuple (access_key_id, secret_access_key[, "
        "session_token])"
    )


@dataclass(frozen=True, repr=False)
class AwsIam:
    """SigV4 signing for an HTTP target: ``HttpTarget(url, auth=AwsIam(...))``.

    ``service`` and ``region`` default to what the URL's host says (a Function URL or an
    API Gateway URL); give both for a custom domain or a local emulator. Credentials come
    from the standard chain (``profile=`` or AWS_PROFILE, environment, SSO, roles), or
    ``credentials=`` (a botocore Credentials object, e.g. RefreshableCredentials, or a
    tuple). A signed request is reused for ``sign_window_s`` seconds at most.
    """

    service: str | None = None
    region: str | None = None
    profile: str | None = None
    credentials: Any = None
    sign_window_s: float = DEFAULT_SIGN_WINDOW_S

    def __post_init__(self) -> None:
        if self.service is not None and self.service not in SERVICES:
            raise ConfigError(
                f"AwsIam(service={self.service!r}) is not valid; use 'lambda' (Function URLs) "
                "or 'execute-api' (API Gateway)"
            )
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise ConfigError(f"AwsIam(region={self.region!r}) is not valid; use 'eu-west-1'")
        if self.profile is not None and self.credentials is not None:
            raise ConfigError("AwsIam takes profile= or credentials=, not both")
        if self.profile is not None and (not isinstance(self.profile, str) or not self.profile):
            raise ConfigError(f"AwsIam(profile={self.profile!r}) is not valid; use a profile name")
        check_sign_window(self.sign_window_s, "AwsIam")

    def __repr__(self) -> str:
        # Never the credentials: only where they come from.
        source = (
            "credentials=<given>" if self.credentials is not None else f"profile={self.profile!r}"
        )
        return f"AwsIam(service={self.service!r}, region={self.region!r}, {source})"

    def resolve(self, host: str, shown: str) -> tuple[str, str]:
        """(service, region) for ``host``: the arguments, else the host's; a ConfigError if
        neither (``shown``: the secret-free URL the message names)."""
        implied = service_and_region(host)
        service = self.service or (implied[0] if implied else None)
        region = self.region or (implied[1] if implied else None)
        if service is None or region is None:
            raise ConfigError(
                f"cannot tell the SigV4 service and region of {shown}; use {IAM_FORMS}"
            )
        return service, region

    def signing(self, host: str, shown: str) -> IamSigning:
        """Credentials looked up now (a ConfigError without them) and a signer for ``host``."""
        service, region = self.resolve(host, shown)
        if self.credentials is not None:
            source: Any = _GivenCredentials(_botocore_credentials(self.credentials))
        else:
            source = make_session(self.profile)
        signer = RequestSigner(source, region=region, service=service, window_s=self.sign_window_s)
        return IamSigning(signer, self.sign_window_s)


def check_auth_iam(value: object) -> AwsIam:
    """``auth='aws_iam'`` as an AwsIam (service and region from the host)."""
    if value == "aws_iam":
        return AwsIam()
    if isinstance(value, AwsIam):
        return value
    raise ConfigError(f"auth={value!r} is not valid; use {IAM_FORMS}")


class IamSigning:
    """Signs requests (SigV4) and says when one signed at ``built_at`` must be signed again."""

    per_body = True  # the signature covers the body: each body is signed

    def __init__(self, signer: RequestSigner, window_s: float) -> None:
        self.signer = signer
        self.window_s = window_s

    @property
    def access_key_id(self) -> str:
        return self.signer.access_key_id

    def apply(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """``headers`` plus X-Amz-Date, Authorization (and X-Amz-Security-Token)."""
        return self.signer.sign(method, url, headers, body)

    def stale(self, built_at: float) -> bool:
        """True when a request signed at ``built_at`` (time.monotonic) must be signed again.

        One clock read per call; once a second a look at the credential chain.
        """
        return time.monotonic() - built_at >= self.window_s or self.signer.expired()

    def saw_status(self, status: int) -> None:
        """A response's status (nothing to do: a refused signature is refused again)."""
