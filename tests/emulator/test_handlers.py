"""Real Python handlers: boto3 creates a zip function, the emulator runs it in its own processes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pytest
from emulator_helpers import call, lambda_client

from pytest_lambda_slo.emulator import Emulator

psutil = pytest.importorskip("psutil")
botocore_exceptions = pytest.importorskip("botocore.exceptions")
ROLE = "arn:aws:iam::123456789012:role/lambda-slo-test"

HANDLER = """
import json, os, time, urllib.request
from pathlib import Path
print("init ran")

def handler(event, context):
    print("handling", event.get("n"))
    if "raise" in event:
        raise ValueError("boom " + str(event["raise"]))
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "exit" in event:
        os._exit(event["exit"])
    if "marker" in event:  # a barrier: say "running", wait until the test releases us
        Path(event["marker"], str(os.getpid())).touch()
        deadline = time.monotonic() + 20
        while not Path(event["marker"], "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    if "fetch" in event:  # a handler may open sockets to loopback
        with urllib.request.urlopen(event["fetch"], timeout=10) as answer:
            return {"fetched": json.loads(answer.read())}
    if "unjsonable" in event:
        return {1, 2}
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "MY_VAR")},
        "cwd": os.getcwd(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }
"""


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


ZIP = make_zip({"app.py": HANDLER})


def children(emu: Emulator) -> list:
    return [p for p in psutil.Process(emu.pid).children(recursive=True) if p.is_running()]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def emu():
    with Emulator(["plain"], update_delay=0.05) as running:
        yield running


@pytest.fixture
def client(emu):
    c = lambda_client(emu)
    yield c
    c.close()


def create(client, name: str, zip_bytes: bytes = ZIP, **kwargs):
    args = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_bytes},
    }
    args.update(kwargs)
    created = client.create_function(**args)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )
    return created


def invoke(client, name: str, event: dict, **kwargs) -> tuple[dict, object]:
    answer = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    return answer, json.loads(answer["Payload"].read())


def report(answer: dict) -> str:
    return base64.b64decode(answer["LogResult"]).decode()


def test_create_invoke_gives_the_event_and_the_context(client, emu):
    created = create(
        client,
        "ctx",
        MemorySize=256,
        Timeout=5,
        Environment={"Variables": {"MY_VAR": "v"}},
        Tags={"owner": "lambda-slo"},
        Architectures=["x86_64"],
        Description="real code",
    )
    assert created["State"] == "Pending" and created["Handler"] == "app.handler"
    expected_sha = base64.b64encode(hashlib.sha256(ZIP).digest()).decode()
    got = client.get_function(FunctionName="ctx")
    config = got["Configuration"]
    assert config["State"] == "Active" and config["CodeSha256"] == expected_sha
    assert config["CodeSize"] == len(ZIP) and config["Runtime"] == "python3.12"
    assert config["Environment"]["Variables"] == {"MY_VAR": "v"}
    assert got["Tags"] == {"owner": "lambda-slo"}

    answer, body = invoke(client, "ctx", {"n": 1, "nested": {"a": [1, 2]}}, LogType="Tail")
    assert "FunctionError" not in answer
    assert body["event"] == {"n": 1, "nested": {"a": [1, 2]}}
    assert body["request_id"] == answer["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == "ctx" and body["function_version"] == "$LATEST"
    assert body["memory"] == "256"  # a string, as in Lambda's Python runtime
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx"
    assert 0 < body["remaining"] <= 5000
    assert body["log_group"] == "/aws/lambda/ctx" and "[$LATEST]" in body["log_stream"]
    assert body["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "ctx",
        "AWS_REGION": "us-east-1",
        "MY_VAR": "v",
    }
    assert Path(body["cwd"]).name.startswith("lambda-slo-ctx-")
    assert body["trace"].startswith("Root=1-")
    log = report(answer)
    assert "init ran" in log and "handling 1" in log
    assert f"REPORT RequestId: {body['request_id']}\t" in log
    assert "Init Duration: " in log and "Memory Size: 256 MB" in log


def test_cold_then_warm_reuses_the_process(client, emu):
    create(client, "warm")
    first, one = invoke(client, "warm", {"n": 1}, LogType="Tail")
    second, two = invoke(client, "warm", {"n": 2}, LogType="Tail")
    assert "Init Duration" in report(first) and "Init Duration" not in report(second)
    assert "init ran" not in report(second) and "handling 2" in report(second)
    assert one["pid"] == two["pid"]
    stats = emu.function_stats("warm")
    assert stats["invocations"] == 2 and stats["cold_starts"] == 1
    assert stats["histograms"]["init"]["count"] == 1


def test_an_exception_is_unhandled_and_the_environment_stays(client):
    create(client, "raises")
    _, before = invoke(client, "raises", {})
    answer, error = invoke(client, "raises", {"raise": 7}, LogType="Tail")
    assert answer["FunctionError"] == "Unhandled" and answer["StatusCode"] == 200
    assert error["errorMessage"] == "boom 7" and error["errorType"] == "ValueError"
    assert any("app.py" in line and "in handler" in line for line in error["stackTrace"])
    assert "[ERROR] ValueError: boom 7" in report(answer)
    _, after = invoke(client, "raises", {})
    assert after["pid"] == before["pid"]  # Python's runtime keeps the environment


def test_a_handler_past_its_timeout_is_killed(client, emu):
    create(client, "slow", Timeout=1)
    _, warm = invoke(client, "slow", {})
    answer, error = invoke(client, "slow", {"sleep": 30}, LogType="Tail")
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Status: timeout" in report(answer)
    assert wait_for(lambda: not psutil.pid_exists(warm["pid"]))
    _, again = invoke(client, "slow", {})
    assert again["pid"] != warm["pid"]  # a new environment, cold
    assert emu.function_stats("slow")["cold_starts"] == 2


def test_a_crash_and_an_import_error_are_runtime_errors(client):
    create(client, "crash")
    answer, error = invoke(client, "crash", {"exit": 3})
    assert answer["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]
    create(client, "noimport", Handler="missing.handler")
    answer, error = invoke(client, "noimport", {})
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'missing'" in error["errorMessage"]
    answer, error = invoke(client, "crash", {"unjsonable": 1})
    assert error["errorType"] == "Runtime.MarshalError"


def _hold(client_factory, name, marker, results, errors):
    client = client_factory()
    try:
        results.append(invoke(client, name, {"marker": str(marker)})[1])
    except Exception as exc:  # collected, asserted by the test
        errors.append(exc)
    finally:
        client.close()


def _run_held(emu, name, marker: Path, n: int):
    results: list = []
    errors: list = []
    threads = [
        threading.Thread(
            target=_hold, args=(lambda: lambda_client(emu), name, marker, results, errors)
        )
        for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    return threads, results, errors


def test_parallel_invokes_run_in_parallel_processes(client, emu, tmp_path):
    create(client, "wide")
    threads, results, errors = _run_held(emu, "wide", tmp_path, 4)
    try:
        assert wait_for(lambda: len(list(tmp_path.iterdir())) == 4, timeout=30)
        running = {p.pid for p in children(emu)}
        assert {int(p.name) for p in tmp_path.iterdir()} <= running
    finally:
        (tmp_path / "release").touch()
        for thread in threads:
            thread.join(30)
    assert not errors and len({r["pid"] for r in results}) == 4
    assert emu.function_stats("wide")["peak_concurrency"] == 4


def test_reserved_concurrency_throttles_real_code(client, emu, tmp_path):
    create(client, "narrow")
    client.put_function_concurrency(FunctionName="narrow", ReservedConcurrentExecutions=2)
    threads, results, errors = _run_held(emu, "narrow", tmp_path, 2)
    try:
        assert wait_for(lambda: len(list(tmp_path.iterdir())) == 2, timeout=30)
        with pytest.raises(botocore_exceptions.ClientError) as info:
            client.invoke(FunctionName="narrow", Payload=b"{}")
        error = info.value.response
        assert error["Error"]["Code"] == "TooManyRequestsException"
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        (tmp_path / "release").touch()
        for thread in threads:
            thread.join(30)
    assert not errors and len(results) == 2


def test_update_code_retires_the_environments(client, emu):
    create(client, "versions")
    _, old = invoke(client, "versions", {})
    v2 = make_zip({"app.py": "def handler(event, context):\n    return 'v2'\n"})
    updated = client.update_function_code(FunctionName="versions", ZipFile=v2)
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(v2).digest()).decode()
    client.get_waiter("function_updated_v2").wait(
        FunctionName="versions", WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )
    answer, body = invoke(client, "versions", {}, LogType="Tail")
    assert body == "v2" and "Init Duration" in report(answer)
    assert wait_for(lambda: not psutil.pid_exists(old["pid"]))


def test_tags(client):
    create(client, "tagged", Tags={"a": "1"})
    arn = client.get_function(FunctionName="tagged")["Configuration"]["FunctionArn"]
    client.tag_resource(Resource=arn, Tags={"b": "2"})
    assert client.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2"}
    client.untag_resource(Resource=arn, TagKeys=["a"])
    assert client.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    with pytest.raises(botocore_exceptions.ClientError) as info:
        client.list_tags(Resource=arn.replace("tagged", "nosuch"))
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_delete_reaps_the_processes(client, emu, tmp_path):
    create(client, "doomed")
    threads, results, _ = _run_held(emu, "doomed", tmp_path, 2)
    assert wait_for(lambda: len(list(tmp_path.iterdir())) == 2, timeout=30)
    (tmp_path / "release").touch()
    for thread in threads:
        thread.join(30)
    pids = {r["pid"] for r in results}
    assert len(pids) == 2 and pids <= {p.pid for p in children(emu)}
    client.delete_function(FunctionName="doomed")
    assert wait_for(lambda: not any(psutil.pid_exists(pid) for pid in pids))
    with pytest.raises(botocore_exceptions.ClientError) as info:
        client.get_function(FunctionName="doomed")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "doomed" not in emu.stats()["functions"]


def test_a_handler_can_call_loopback(client, emu):
    create(client, "caller", Timeout=10)
    _, body = invoke(client, "caller", {"fetch": emu.url + "/_emulator/health"})
    assert body == {"fetched": {"ok": True}}


def test_bad_create_requests_are_400(client):
    cases = [
        ({"Code": {"ZipFile": b"not a zip"}}, "Could not unzip"),
        ({"Runtime": "nodejs20.x"}, "is not emulated"),
        ({"Handler": "nodot"}, "module.function"),
        ({"Timeout": 901}, "Timeout"),
        ({"Code": {"ZipFile": make_zip({"../evil.py": "x"})}}, "outside the package"),
    ]
    for overrides, fragment in cases:
        args = {
            "FunctionName": "bad",
            "Runtime": "python3.12",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": ZIP},
            **overrides,
        }
        with pytest.raises(botocore_exceptions.ClientError) as info:
            client.create_function(**args)
        assert info.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert fragment in info.value.response["Error"]["Message"]
    create(client, "twice")
    with pytest.raises(botocore_exceptions.ClientError) as info:
        client.create_function(
            FunctionName="twice",
            Runtime="python3.12",
            Role=ROLE,
            Handler="a.b",
            Code={"ZipFile": ZIP},
        )
    assert info.value.response["Error"]["Code"] == "ResourceConflictException"


def test_invoking_a_pending_function_is_409():
    with Emulator(["plain"], update_delay=5.0) as emu:
        client = lambda_client(emu)
        try:
            client.create_function(
                FunctionName="pending",
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": ZIP},
            )
            with pytest.raises(botocore_exceptions.ClientError) as info:
                client.invoke(FunctionName="pending", Payload=b"{}")
            assert info.value.response["Error"]["Code"] == "ResourceConflictException"
            assert "Pending" in info.value.response["Error"]["Message"]
        finally:
            client.close()


def test_the_process_cap_throttles_and_stop_leaves_no_process(tmp_path):
    emu = Emulator(["plain"], update_delay=0.05, max_handler_processes=2).start()
    try:
        client = lambda_client(emu)
        create(client, "capped")
        threads, results, errors = _run_held(emu, "capped", tmp_path, 2)
        assert wait_for(lambda: len(list(tmp_path.iterdir())) == 2, timeout=30)
        with pytest.raises(botocore_exceptions.ClientError) as info:
            client.invoke(FunctionName="capped", Payload=b"{}")
        assert info.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert emu.function_stats("capped")["throttles"]["by_reason"] == {"HandlerProcessLimit": 1}
        pids = {p.pid for p in children(emu)}
        assert len(pids) == 2
        code_dirs = {Path(psutil.Process(pid).cwd()) for pid in pids}
        assert len(code_dirs) == 1 and next(iter(code_dirs)).is_dir()
        client.close()
        status, _, _ = call(emu, "GET", "/_emulator/health")
        assert status == 200
    finally:
        emu.stop()  # handlers still held in the barrier: stop must kill them
    (tmp_path / "release").touch()
    for thread in threads:
        thread.join(30)
    assert not any(psutil.pid_exists(pid) for pid in pids)
    assert not any(d.exists() for d in code_dirs)  # the unpacked code is removed too
    # Killed at shutdown: answered as a runtime exit while the server drains (or cut off).
    assert len(results) + len(errors) == 2
    assert all(r["errorType"] == "Runtime.ExitError" for r in results)


WEB = """
import json

def handler(event, context):
    if event.get("rawPath") == "/raw":
        return {"plain": event["rawPath"]}
    if "rawPath" in event:  # a Function URL event (payload 2.0)
        http = event["requestContext"]["http"]
        return {
            "statusCode": 201,
            "headers": {
                "x-got": event["rawPath"],
                "bad\\r\\nx": "y",  # not a header name: dropped
                "ok": "v\\r\\nx-evil: 1",  # a value that would inject a header: dropped
                "content-length": "1",  # the server frames the body itself
            },
            "cookies": ["a=1"],
            "body": json.dumps({
                "query": event.get("queryStringParameters"),
                "body": event.get("body"),
                "method": http["method"],
                "rid": event["requestContext"]["requestId"],
            }),
        }
    if event["path"] == "/malformed":
        return "not a proxy response"
    return {  # an API Gateway REST proxy event (payload 1.0)
        "statusCode": 202,
        "headers": {"content-type": "text/plain"},
        "body": json.dumps({
            "path": event["path"],
            "proxy": event["pathParameters"]["proxy"],
            "query": event["multiValueQueryStringParameters"],
            "body": event["body"],
            "method": event["httpMethod"],
        }),
    }
"""


def test_real_code_behind_the_http_doors_gets_proxy_events(client, emu):
    create(client, "web", make_zip({"app.py": WEB}))
    status, headers, data = call(emu, "POST", "/url/web/hello?x=1&x=2", b"data")
    assert status == 201 and headers["x-got"] == "/hello" and headers["set-cookie"] == "a=1"
    assert headers["content-type"] == "application/json" and headers["content-length"] == str(
        len(data)
    )
    assert "bad" not in " ".join(headers) and "ok" not in headers and "x-evil" not in headers
    answer = json.loads(data)
    assert answer == {
        "query": {"x": "1,2"},
        "body": "data",
        "method": "POST",
        "rid": headers["x-amzn-requestid"],
    }
    status, headers, data = call(emu, "GET", "/url/web/raw")
    assert status == 200 and json.loads(data) == {"plain": "/raw"}
    status, headers, data = call(emu, "PUT", "/apigw/web/a/b?q=1&q=2", b"x")
    assert status == 202 and headers["content-type"] == "text/plain" and headers["x-amz-apigw-id"]
    assert json.loads(data) == {
        "path": "/a/b",
        "proxy": "a/b",
        "query": {"q": ["1", "2"]},
        "body": "x",
        "method": "PUT",
    }
    status, _, data = call(emu, "GET", "/apigw/web/malformed")
    assert (status, json.loads(data)) == (502, {"message": "Internal server error"})


def test_code_uploads_may_exceed_the_invoke_payload_limit():
    big = make_zip({"app.py": HANDLER, "pad.txt": "x" * 5000})
    with Emulator(["plain"], update_delay=0.05, max_payload=2000) as emu:
        client = lambda_client(emu)
        try:
            create(client, "big", big)  # a 5 KB zip through a 2 KB payload limit
            with pytest.raises(botocore_exceptions.ClientError) as info:
                client.invoke(FunctionName="big", Payload=json.dumps({"p": "y" * 3000}).encode())
            assert info.value.response["Error"]["Code"] == "RequestTooLargeException"
            assert invoke(client, "big", {"n": 1})[1]["event"] == {"n": 1}
        finally:
            client.close()
