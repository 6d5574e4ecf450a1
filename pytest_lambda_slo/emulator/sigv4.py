"""AWS Signature Version 4 verification of incoming requests (header-signed, as botocore signs)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import quote, unquote

MAX_SKEW_S = 300.0  # a signature older (or newer) than 5 minutes is refused


class SigV4Error(Exception):
    """Verification failed: ``error_type`` is the AWS error code, str() the message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise SigV4Error("IncompleteSignatureException", f"Unsupported algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    try:
        return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError as exc:
        raise SigV4Error(
            "IncompleteSignatureException",
            f"Authorization header requires '{exc.args[0]}' parameter",
        ) from None


def verify(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    credentials: tuple[str, str] | tuple[tuple[str, str], ...],
    now: datetime | None = None,
    service: str | None = None,
) -> None:
    """Raise SigV4Error unless the request carries a valid signature by ``credentials``.

    ``credentials`` is one (access key id, secret) pair or several (rotated keys, all valid).

    ``raw_path`` is the path exactly as sent (percent-encoded); ``headers`` have lowercase
    names. Any region is accepted; the scope's service must be ``service`` when given.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    credential, signed_headers, signature = _parse_authorization(authorization)
    scope_parts = credential.split("/")
    if len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
        raise SigV4Error("IncompleteSignatureException", f"Bad credential scope {credential!r}")
    access_key, date, region, scope_service, _ = scope_parts
    if service is not None and scope_service != service:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'. ",
        )
    pairs = (credentials,) if isinstance(credentials[0], str) else credentials
    secret = next((str(pair[1]) for pair in pairs if pair[0] == access_key), None)
    if secret is None:
        raise SigV4Error(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SigV4Error(
            "IncompleteSignatureException", "Authorization requires a valid X-Amz-Date header"
        ) from None
    current = now or datetime.now(timezone.utc)
    if abs((current - signed_at).total_seconds()) > MAX_SKEW_S:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than the allowed window "
            f"(current time {current.strftime('%Y%m%dT%H%M%SZ')}, 5 min.)",
        )
    if not amz_date.startswith(date):
        raise SigV4Error("InvalidSignatureException", "Credential date does not match X-Amz-Date")
    if "host" not in signed_headers:
        raise SigV4Error("InvalidSignatureException", "The host header must be signed")
    canonical_headers = ""
    for name in signed_headers:
        value = headers.get(name)
        if value is None:
            raise SigV4Error("InvalidSignatureException", f"Signed header {name!r} is missing")
        canonical_headers += f"{name}:{' '.join(value.split())}\n"
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    # botocore encodes the already percent-encoded path once more (all but S3 do this).
    canonical_uri = quote(raw_path or "/", safe="/~")
    canonical_request = "\n".join(
        [
            method,
            canonical_uri,
            _canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{scope_service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(_hmac(_hmac(key, region), scope_service), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SigV4Error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
