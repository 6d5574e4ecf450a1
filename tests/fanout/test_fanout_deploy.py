"""The generator's control plane against moto's server (a third-party implementation) and
the plugin's emulator (which runs the deployed zip's handler).

Create once, reuse (no second CreateFunction), update when the build differs, refuse a
function the plugin did not create, list and clean up only what it tagged.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from collections import Counter
from typing import Any

import pytest
from fanout_helpers import Backend

from pytest_lambda_slo._fanout.config import LambdaFanout
from pytest_lambda_slo._fanout.deploy import (
    CODE_TAG,
    MANAGED_TAG,
    DeployError,
    cleanup,
    control_client,
    ensure_generator,
    invoke_client,
    status,
    stop_all,
)
from pytest_lambda_slo._fanout.package import Package
from pytest_lambda_slo.emulator import Emulator
from pytest_lambda_slo.errors import ConfigError


def _counted(fanout: LambdaFanout) -> tuple[Any, Counter[str]]:
    """The plugin's control client, with every API call it makes counted by name."""
    client = control_client(fanout)
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.lambda.*", count)
    return client, calls


def _plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _user_function(lam: Any, role: str, name: str, tags: dict[str, str] | None = None) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _plain_zip()},
        Tags=tags or {},
    )


def test_create_then_reuse(backend: Backend, local_package: Package) -> None:
    fanout = LambdaFanout(4, endpoint_url=backend.endpoint, role=backend.role)
    client, calls = _counted(fanout)
    lines: list[str] = []
    first = ensure_generator(fanout, package=local_package, client=client, log=lines.append)
    assert first.action == "created" and first.name == local_package.function_name
    assert calls["CreateFunction"] == 1
    assert any("creating" in line for line in lines)
    config = backend.lam.get_function(FunctionName=first.name)
    assert config["Configuration"]["Runtime"] == local_package.runtime
    assert config["Configuration"]["Handler"] == "pytest_lambda_slo._load.shard.handler"
    assert config["Configuration"]["MemorySize"] == 2048
    assert config["Configuration"]["Timeout"] == 900
    assert config["Configuration"]["Architectures"] == ["x86_64"]
    assert config["Tags"][MANAGED_TAG] == "true"
    assert config["Tags"][CODE_TAG] == local_package.code_hash
    assert first.arn == config["Configuration"]["FunctionArn"]

    calls.clear()
    second = ensure_generator(fanout, package=local_package, client=client)
    assert second.action == "reused" and second.name == first.name
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 0
    assert calls["UpdateFunctionConfiguration"] == 0
    names = [f["FunctionName"] for f in backend.lam.list_functions()["Functions"]]
    assert names == [first.name]


def test_update_when_the_build_differs(
    backend: Backend, local_package: Package, small_package: Package
) -> None:
    fanout = LambdaFanout(
        2, endpoint_url=backend.endpoint, role=backend.role, function_name="lambda-slo-mine"
    )
    client, calls = _counted(fanout)
    assert ensure_generator(fanout, package=local_package, client=client).action == "created"
    calls.clear()
    updated = ensure_generator(fanout, package=small_package, client=client)
    assert updated.action == "updated"
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 1
    tags = backend.lam.get_function(FunctionName="lambda-slo-mine")["Tags"]
    assert tags[CODE_TAG] == small_package.code_hash
    calls.clear()
    assert ensure_generator(fanout, package=small_package, client=client).action == "reused"
    assert calls["UpdateFunctionCode"] == 0


def test_a_function_the_plugin_did_not_create_is_refused(
    backend: Backend, local_package: Package
) -> None:
    _user_function(backend.lam, backend.role, "someone-elses")
    fanout = LambdaFanout(
        2, endpoint_url=backend.endpoint, role=backend.role, function_name="someone-elses"
    )
    client, calls = _counted(fanout)
    with pytest.raises(ConfigError, match=r"'someone-elses' exists but is not tagged"):
        ensure_generator(fanout, package=local_package, client=client)
    assert calls["UpdateFunctionCode"] == 0 and calls["CreateFunction"] == 0
    assert backend.lam.get_function(FunctionName="someone-elses")["Configuration"]["Runtime"] == (
        "python3.12"
    )


def test_status_and_cleanup_touch_only_tagged_functions(
    backend: Backend, small_package: Package
) -> None:
    fanout = LambdaFanout(
        2, endpoint_url=backend.endpoint, role=backend.role, bundle_botocore=False
    )
    made = ensure_generator(fanout, package=small_package)
    # Same prefix, no tag: not ours. Tagged, other name: not a generator name.
    _user_function(backend.lam, backend.role, "lambda-slo-gen-untagged")
    _user_function(backend.lam, backend.role, "tagged-elsewhere", {MANAGED_TAG: "true"})
    _user_function(backend.lam, backend.role, "unrelated")

    found = status(fanout)
    assert [f.name for f in found] == [made.name]
    assert found[0].version == small_package.plugin_version
    assert found[0].build == small_package.build_hash
    assert (found[0].memory, found[0].architecture) == (2048, "x86_64")

    assert cleanup(fanout, dry_run=True) == [made.name]
    assert len(backend.lam.list_functions()["Functions"]) == 4
    lines: list[str] = []
    assert cleanup(fanout, log=lines.append) == [made.name]
    assert lines == [f"lambda-slo fanout: deleting {made.name}"]
    left = sorted(f["FunctionName"] for f in backend.lam.list_functions()["Functions"])
    assert left == ["lambda-slo-gen-untagged", "tagged-elsewhere", "unrelated"]
    assert status(fanout) == []


def test_stop_all_then_the_next_ensure_re_enables(backend: Backend, small_package: Package) -> None:
    fanout = LambdaFanout(
        2, endpoint_url=backend.endpoint, role=backend.role, bundle_botocore=False
    )
    made = ensure_generator(fanout, package=small_package)
    stop_all(control_client(fanout), made.name)
    assert (
        backend.lam.get_function_concurrency(FunctionName=made.name)["ReservedConcurrentExecutions"]
        == 0
    )
    assert status(fanout)[0].reserved_concurrency == 0
    again = ensure_generator(fanout, package=small_package)
    assert again.action == "reused"
    assert "ReservedConcurrentExecutions" not in backend.lam.get_function_concurrency(
        FunctionName=made.name
    )


def test_a_failing_call_names_the_operation(
    moto: str, aws_env: None, small_package: Package
) -> None:
    # moto refuses a role that does not exist in its IAM: the error says what failed.
    fanout = LambdaFanout(2, endpoint_url=moto, role="arn:aws:iam::123456789012:role/missing")
    with pytest.raises(DeployError, match=r"^CreateFunction on lambda-slo-gen-\w+ failed: "):
        ensure_generator(fanout, package=small_package)


def test_a_package_for_another_configuration_is_refused(
    moto: str, aws_env: None, local_package: Package
) -> None:
    fanout = LambdaFanout(2, endpoint_url=moto, memory=4096)
    with pytest.raises(ConfigError, match=r"built for x86_64 python3\.\d+ 2048 MB, not"):
        ensure_generator(fanout, package=local_package)


def test_aws_needs_a_role(aws_env: None, local_package: Package) -> None:
    from botocore.stub import Stubber

    fanout = LambdaFanout(2, region="us-east-1")  # no endpoint: AWS itself
    client = control_client(fanout)
    assert client.meta.endpoint_url == "https://lambda.us-east-1.amazonaws.com"
    with Stubber(client) as stub:  # nothing leaves the machine
        stub.add_client_error("get_function", "ResourceNotFoundException", http_status_code=404)
        with pytest.raises(ConfigError, match=r"role=None cannot create .* never creates IAM"):
            ensure_generator(fanout, package=local_package, client=client)
        stub.assert_no_pending_responses()


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Answers every request with Lambda's throttle, and counts them."""

    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"Type": "User", "message": "Rate Exceeded."}).encode()
        self.send_response(429)
        self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST

    def log_message(self, *args: Any) -> None:
        pass


def test_shard_invokes_are_never_retried_control_calls_are(aws_env: None) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        fanout = LambdaFanout(300, endpoint_url=endpoint, timeout="10m")
        shards = invoke_client(fanout)
        with pytest.raises(shards.exceptions.TooManyRequestsException):
            shards.invoke(FunctionName="gen", Payload=b"{}")
        assert _Throttling.hits == 1  # a retried shard would double its share of the load
        assert shards.meta.config.read_timeout > 600  # longer than the function's timeout
        assert shards.meta.config.max_pool_connections >= 300
        assert shards.meta.config.tcp_keepalive is True
        _Throttling.hits = 0
        control = control_client(fanout)
        with pytest.raises(control.exceptions.TooManyRequestsException):
            control.put_function_concurrency(FunctionName="gen", ReservedConcurrentExecutions=0)
        assert _Throttling.hits == 3  # a small standard retry: it changes nothing measured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_deployed_handler_runs_on_the_emulator(
    fanout_emulator: Emulator, aws_env: None, local_package: Package
) -> None:
    # The emulator runs the zip's handler in a process of its own: a probe proves the
    # deployed code (not this process's) answers, with its compiled modules from the zip.
    import boto3

    endpoint = fanout_emulator.url
    lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint)
    for function in lam.list_functions()["Functions"]:
        lam.delete_function(FunctionName=function["FunctionName"])
    fanout = LambdaFanout(2, endpoint_url=endpoint)  # no role: the placeholder ARN
    made = ensure_generator(fanout, package=local_package)
    fanout_emulator.reset()
    answer = lam.invoke(FunctionName=made.name, Payload=json.dumps({"op": "probe"}).encode())
    assert "FunctionError" not in answer
    probe = json.loads(answer["Payload"].read())
    assert probe["op"] == "probe" and probe["memory_mb"] == 2048
    assert probe["build"]["build"] == local_package.build_hash
    assert set(probe["compiled_modules"]) == {"hdrhistogram", "httptools", "uvloop"}
    for path in probe["compiled_modules"].values():
        assert "site-packages" not in path, path
    unknown = lam.invoke(FunctionName=made.name, Payload=b'{"op": "explode"}')
    assert unknown["FunctionError"] == "Unhandled"
    assert "unknown operation 'explode'" in unknown["Payload"].read().decode()
    stats = fanout_emulator.stats()
    lam.close()
    assert stats["functions"][made.name]["invocations"] == 2, stats
