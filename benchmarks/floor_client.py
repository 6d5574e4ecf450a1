"""The floor client in Python, for machines without a C compiler (benchmarks/harness.py).

Does what ``floor_client.c`` does, with the same arguments and the same JSON line: C
keep-alive connections, one epoll set (``selectors``), one ``send`` of the request and the
``recv`` calls of its response per request, the end of a response found by the blank line
and Content-Length, nothing else (no timing, no histogram, no reconnects). The interpreter
adds its own cost, so this is a higher floor than the C one; the harness records which ran.

    python benchmarks/floor_client.py HOST PORT PATH REQUESTS CONCURRENCY TIMEOUT_S
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import sys
import time

BUF_SIZE = 16384


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _response_length(buf: bytes) -> int:
    """Length of the whole response once its head is in ``buf``; 0 while incomplete, -1 bad."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return -1 if len(buf) >= BUF_SIZE else 0
    for line in buf[:end].split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            return end + 4 + int(line[15:])
    return -1


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        print(__doc__.splitlines()[-1].strip(), file=sys.stderr)
        return 2
    host, port, path = argv[0], int(argv[1]), argv[2]
    remaining, c, timeout_s = int(argv[3]), int(argv[4]), float(argv[5])
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: pytest-lambda-slo\r\n"
        "Accept: */*\r\n\r\n"
    ).encode("latin-1")
    cpu0, t0 = _cpu(), time.monotonic()
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytes] = {}
    for _ in range(c):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock] = b""
    t_release = time.monotonic()
    done = ok = errors = 0
    for sock in buffers:
        remaining -= 1
        sock.send(request)
    active = c
    t_last, deadline = t_release, t_release + timeout_s
    while active:
        ready = selector.select(1.0)
        if time.monotonic() > deadline:
            errors += active
            break
        for key, _ in ready:
            sock = key.fileobj  # type: ignore[assignment]
            try:
                data = sock.recv(BUF_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            buf = buffers[sock] + data
            need = _response_length(buf) if data else -1
            if need < 0:
                errors += 1
                active -= 1
                selector.unregister(sock)
                sock.close()
                continue
            if need == 0 or len(buf) < need:
                buffers[sock] = buf
                continue
            done += 1
            ok += len(buf) == need and buf[8:12] == b" 200"
            errors += len(buf) != need
            buffers[sock] = b""
            if remaining > 0:
                remaining -= 1
                sock.send(request)
                continue
            active -= 1
            selector.unregister(sock)
            sock.close()
        if ready:
            t_last = time.monotonic()
    result = {
        "requests": done,
        "ok": ok,
        "errors": errors,
        "unsent": remaining,
        "run_cpu_s": _cpu() - cpu0,
        "run_wall_s": t_last - t_release,
        "connect_wall_s": t_release - t0,
        "implementation": "python",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
