"""moto's server for the tests: on a free loopback port, Lambda without Docker."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from servers import free_port

STARTUP_TIMEOUT_S = 30.0


def moto_request(url: str, data: bytes | None = None) -> bytes:
    """GET (or POST ``data``) on loopback, never through a proxy from the environment."""
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return bytes(response.read())


@contextlib.contextmanager
def moto_server(access_key: str, secret: str) -> Iterator[str]:
    """moto's server in a subprocess on a free loopback port; yields its endpoint URL."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                moto_request(endpoint + "/moto-api/data.json")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on {endpoint}")
                time.sleep(0.1)
        config = json.dumps({"lambda": {"use_docker": False}}).encode()
        moto_request(endpoint + "/moto-api/config", config)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
