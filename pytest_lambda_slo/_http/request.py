"""One request to send (RequestTemplate) and its bytes on the wire."""

from __future__ import annotations

from dataclasses import dataclass

from .urls import ParsedURL


@dataclass(frozen=True)
class RequestTemplate:
    """One request to send. The engine caches its wire bytes per template object.

    ``label`` names the kind of request (``label=`` of the target) for per-label results.
    """

    method: str
    url: ParsedURL
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    label: str | None = None


def encode_request(
    template: RequestTemplate, *, absolute: bool = False, proxy_authorization: str | None = None
) -> bytes:
    """The wire bytes of ``template`` (absolute-form request line when sent to an HTTP proxy)."""
    url = template.url
    target = url.target
    if absolute:
        target = f"{url.scheme}://{url.host_header}{url.target}"
    lines = [f"{template.method} {target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in template.headers)
    if proxy_authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy_authorization}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + template.body
