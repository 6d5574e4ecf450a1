"""Opening connections to one target: DNS, TCP, an HTTP proxy's CONNECT, TLS with SNI.

The transport (transport.py) speaks HTTP/1.1 on a connection once it is open; this module
decides where to connect (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) and how (TLS verification).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from .request import RequestTemplate, encode_request
from .transport import Deadlines, HttpConnection, TransportError
from .urls import ParsedURL

_P = TypeVar("_P", bound=asyncio.Protocol)
# Longest proxy CONNECT response head we accept.
_READ_LIMIT = 64 * 1024


# -- TLS and proxies -----------------------------------------------------------------------


def make_ssl_context(verify: bool | str) -> ssl.SSLContext:
    """TLS client context: verification on by default (SSL_CERT_FILE honoured), or a CA path."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = ssl.create_default_context()
    elif isinstance(verify, str):
        if not os.path.isfile(verify):
            raise ConfigError(
                f"verify={verify!r} is not a readable file; use True, False or a CA bundle path"
            )
        try:
            context = ssl.create_default_context(cafile=verify)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"verify={verify!r} could not be loaded ({exc}); use a PEM CA bundle path"
            ) from None
    else:
        raise ConfigError(f"verify={verify!r} is not valid; use True, False or a CA bundle path")
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy taken from the environment."""

    host: str
    port: int
    authorization: str | None  # value of Proxy-Authorization, from user:password in the URL


def proxy_for(url: ParsedURL, environ: dict[str, str] | None = None) -> Proxy | None:
    """The proxy HTTP_PROXY/HTTPS_PROXY/NO_PROXY (either case) select for ``url``, if any."""
    env = os.environ if environ is None else environ
    proxies: dict[str, str] = {}
    # Lower case wins over upper case, as in curl and urllib.
    for name in ("http", "https", "no"):
        value = env.get(f"{name}_proxy") or env.get(f"{name.upper()}_PROXY")
        if value:
            proxies[name] = value
    chosen = proxies.get(url.scheme)
    if not chosen:
        return None
    if "no" in proxies and _bypass(url.host, url.port, proxies["no"]):
        return None
    if "://" not in chosen:
        chosen = "http://" + chosen
    parts = urlsplit(chosen)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ConfigError(
            f"{url.scheme}_proxy={chosen!r} is not supported; use an 'http://host:port' proxy URL"
        )
    authorization = None
    if parts.username is not None:
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(raw).decode("ascii")
    return Proxy(parts.hostname, parts.port or 80, authorization)


def _bypass(host: str, port: int, no_proxy: str) -> bool:
    """NO_PROXY rules: '*', host names and domain suffixes, 'host:port', IPs and CIDR blocks."""
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.count(":") == 1 and not entry.endswith("]"):
            entry, _, port_text = entry.partition(":")
            entry_port = int(port_text) if port_text.isdigit() else None
            if entry_port is not None and entry_port != port:
                continue
        entry = entry.strip("[]")
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.removeprefix("*").lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


# -- dialing ---------------------------------------------------------------------------------


def ip_literal(host: str, port: int) -> tuple[int, tuple] | None:
    """``(family, sockaddr)`` as getaddrinfo gives it for an IP address ``host``, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return (family, (host, port)) if family == socket.AF_INET else (family, (host, port, 0, 0))
    return None


async def resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[tuple[int, tuple]]:
    """Addresses for ``host:port`` (a module function so tests can replace it).

    An IP address is its own answer: asking getaddrinfo for it cost about a third of a
    connection's CPU on loopback. A scoped IPv6 address (``fe80::1%eth0``) still asks.
    """
    literal = ip_literal(host, port)
    if literal is not None:
        return [literal]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


class Dialer:
    """Opens connections to one target: DNS, TCP, proxy CONNECT, TLS with SNI."""

    def __init__(
        self, url: ParsedURL, verify: bool | str, max_body_bytes: int, *, lean: bool = False
    ) -> None:
        self.url = url
        self.lean = lean  # connections keep no headers or body (HttpConnection's lean)
        self.max_body_bytes = max_body_bytes
        self.ssl = make_ssl_context(verify) if url.scheme == "https" else None
        self.proxy = proxy_for(url)
        # Plain HTTP through a proxy sends absolute-form request lines on the proxy connection.
        self.absolute_form = self.proxy is not None and url.scheme == "http"
        self._wire_template: RequestTemplate | None = None
        self._wire = b""
        self.deadlines = Deadlines()  # one timeout sweep for every connection it opens

    def wire(self, template: RequestTemplate) -> bytes:
        """Wire bytes for ``template``, cached while the target hands out the same object."""
        if template is not self._wire_template:
            auth = self.proxy.authorization if self.absolute_form and self.proxy else None
            self._wire = encode_request(
                template, absolute=self.absolute_form, proxy_authorization=auth
            )
            self._wire_template = template
        return self._wire

    async def connect(self, loop: asyncio.AbstractEventLoop, timeout: float) -> HttpConnection:
        """A ready connection, or TransportError with the error kind.

        The timeout cancels this task itself (as ``asyncio.timeout`` does): ``wait_for``
        would run the dial in a task of its own, a third of a connection's CPU on loopback.
        """
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = loop.call_later(timeout, expire)
        try:
            return await self._connect(loop)
        except asyncio.CancelledError:
            # Ours only when no other cancellation is pending (uncancel: Python 3.11+).
            uncancel = getattr(task, "uncancel", None)
            if expired and (uncancel is None or uncancel() == 0):
                detail = f"no connection within {timeout}s"
                raise TransportError("connect_timeout", detail) from None
            raise
        finally:
            handle.cancel()

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> HttpConnection:
        url, proxy = self.url, self.proxy
        factory = lambda: HttpConnection(  # noqa: E731
            loop, self.max_body_bytes, self.deadlines, lean=self.lean
        )
        if proxy is None:
            return await self._open(loop, url.host, url.port, factory, self.ssl, url.host, "")
        if url.scheme == "http":
            via = "proxy_error"
            return await self._open(loop, proxy.host, proxy.port, factory, None, None, via)
        tunnel = await self._open(
            loop, proxy.host, proxy.port, lambda: _ConnectProtocol(loop), None, None, "proxy_error"
        )
        conn = factory()
        try:
            await tunnel.establish(url, proxy)
            assert tunnel.transport is not None and self.ssl is not None
            tls = await loop.start_tls(tunnel.transport, conn, self.ssl, server_hostname=url.host)
        except BaseException as exc:
            if tunnel.transport is not None:
                tunnel.transport.abort()
            if isinstance(exc, ssl.SSLError):
                raise TransportError("tls_error", str(exc)) from None
            if isinstance(exc, (OSError, EOFError)):
                raise TransportError("proxy_error", str(exc)) from None
            raise
        if tls is None:
            raise TransportError("proxy_error", "tunnel closed during the TLS handshake")
        conn.connection_made(tls)
        return conn

    async def _open(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        factory: Callable[[], _P],
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        via: str,
    ) -> _P:
        """TCP (and TLS) to host:port, trying each resolved address; map errors to kinds."""
        try:
            addresses = await resolve(loop, host, port)
        except socket.gaierror as exc:
            raise TransportError(via or "dns_failure", f"{host}: {exc}") from None
        last: TransportError | None = None
        for family, sockaddr in addresses:
            try:
                _, protocol = await loop.create_connection(
                    factory,
                    host=sockaddr[0],
                    port=sockaddr[1],
                    family=family,
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context is not None else None,
                )
                return protocol
            except ssl.SSLError as exc:
                raise TransportError("tls_error", str(exc)) from None
            except ConnectionRefusedError as exc:
                last = TransportError(via or "connect_refused", str(exc))
            except ConnectionResetError as exc:
                kind = "tls_error" if ssl_context is not None else "connection_reset"
                last = TransportError(via or kind, str(exc))
            except OSError as exc:
                last = TransportError(via or "connect_refused", str(exc))
        raise last or TransportError(via or "dns_failure", f"{host}: no address")


class _ConnectProtocol(asyncio.Protocol):
    """Speaks the proxy CONNECT handshake, then hands the transport over to TLS."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.done: asyncio.Future[bytes] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and not self.done.done():
            self.transport.pause_reading()  # type: ignore[union-attr]
            self.done.set_result(self.buffer)
        elif len(self.buffer) > _READ_LIMIT and not self.done.done():
            self.done.set_exception(OSError("proxy CONNECT response too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(EOFError("proxy closed the connection during CONNECT"))

    async def establish(self, url: ParsedURL, proxy: Proxy) -> None:
        authority = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        assert self.transport is not None
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await self.done
        status_line = head.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[1].startswith(b"2"):
            raise OSError(f"proxy refused CONNECT: {status_line[1:2]!r}")
        if head.index(b"\r\n\r\n") + 4 != len(head):
            raise OSError("proxy sent bytes after the CONNECT response")
        self.transport.resume_reading()
