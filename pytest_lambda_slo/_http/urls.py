"""URLs: parsing what a connection needs, and redacting secrets before anything shows a URL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError

URL_FORMS = "an 'http://' or 'https://' URL, 'lambda:NAME[:QUALIFIER]', or a Lambda function ARN"
# Query parameters and headers whose values are secrets: never shown anywhere.
SECRET_QUERY_KEYS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "sig",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
    }
)
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-amz-security-token",
        "x-amz-signature",
        "x-api-key",
        "cookie",
    }
)
REDACTED = "<redacted>"


@dataclass(frozen=True)
class ParsedURL:
    """A URL split into what a connection needs."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as written on the request line
    original: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: object) -> ParsedURL:
    """Parse an http(s) URL; raise ConfigError naming the value and the accepted forms."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"target URL {url!r} is not valid; use {URL_FORMS}")
    shown = redact_url(url.strip())  # error messages never carry user info or signed params
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"target URL {shown!r} is not valid ({exc}); use {URL_FORMS}") from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise ConfigError(
            f"target URL {shown!r} has no scheme; did you mean 'https://{shown.strip()}'? "
            f"(use {URL_FORMS})"
        )
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"target URL {shown!r} has unsupported scheme {scheme!r}; use {URL_FORMS}"
        )
    if not parts.hostname:
        raise ConfigError(f"target URL {shown!r} has no host; use {URL_FORMS}")
    if any(ch.isspace() or ord(ch) < 33 or ord(ch) == 127 for ch in url.strip()):
        raise ConfigError(
            f"target URL {shown!r} contains white space or control characters; "
            f"percent-encode them ({URL_FORMS})"
        )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return ParsedURL(
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        target=target,
        original=url.strip(),
    )


def redact_url(url: str) -> str:
    """The URL without user info and with secret query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="<>"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers]
