"""boto3's own Lambda client against the emulator: every field it parses must be right."""

from __future__ import annotations

import base64
import json

import pytest
from emulator_helpers import lambda_client

from pytest_lambda_slo.emulator import Emulator

botocore_exceptions = pytest.importorskip("botocore.exceptions")


@pytest.fixture(scope="module")
def emu():
    with Emulator(
        [
            "hello:duration=1ms,init=5ms,memory=256",
            "capped:reserved=1,duration=30s",
            "broken:error_rate=1,unhandled=0",
            "crashing:error_rate=1,unhandled=1",
            "sleepy:duration=3s,timeout=50ms",
            "updated:duration=1ms,init=2ms",
            "conc",
        ],
        update_delay=0.05,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(emu):
    client = lambda_client(emu)
    yield client
    client.close()


def tail(response) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_tail_log_has_init_duration_only_on_the_first_call_of_an_environment(emu, client):
    emu.reset(environments=True)
    first = client.invoke(FunctionName="hello", LogType="Tail", Payload=b"{}")
    second = client.invoke(FunctionName="hello", LogType="Tail", Payload=b"{}")
    assert first["StatusCode"] == 200 and second["StatusCode"] == 200
    assert first["ExecutedVersion"] == "$LATEST"
    assert json.loads(first["Payload"].read()) == "hello"
    rid = first["ResponseMetadata"]["RequestId"]
    log1, log2 = tail(first), tail(second)
    assert f"START RequestId: {rid} Version: $LATEST" in log1
    assert f"END RequestId: {rid}" in log1
    assert f"REPORT RequestId: {rid}\tDuration: " in log1
    assert "Memory Size: 256 MB" in log1 and "Billed Duration: " in log1
    assert "Init Duration: " in log1
    assert "Init Duration" not in log2
    stats = emu.function_stats("hello")
    assert stats["cold_starts"] == 1 and stats["invocations"] == 2


def test_no_log_result_without_tail(client):
    response = client.invoke(FunctionName="hello")
    assert "LogResult" not in response


def test_function_given_as_full_and_partial_arn_and_qualifier(client):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:hello"
    assert client.invoke(FunctionName=arn)["StatusCode"] == 200
    assert client.invoke(FunctionName="123456789012:function:hello")["StatusCode"] == 200
    assert client.invoke(FunctionName=arn + ":7")["ExecutedVersion"] == "7"
    assert client.invoke(FunctionName="hello", Qualifier="3")["ExecutedVersion"] == "3"


def test_event_and_dry_run(client):
    assert client.invoke(FunctionName="hello", InvocationType="Event")["StatusCode"] == 202
    assert client.invoke(FunctionName="hello", InvocationType="DryRun")["StatusCode"] == 204


def test_throttle_has_reserved_reason_and_retry_after(emu, client):
    # An Event invocation holds the only environment of "capped" for 30 s.
    client.invoke(FunctionName="capped", InvocationType="Event")
    with pytest.raises(client.exceptions.TooManyRequestsException) as info:
        client.invoke(FunctionName="capped")
    error = info.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert error["Type"] == "User"
    assert error["retryAfterSeconds"] == "1"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    reasons = emu.function_stats("capped")["throttles"]["by_reason"]
    assert reasons == {"ReservedFunctionConcurrentInvocationLimitExceeded": 1}


def test_throttle_has_account_reason_when_the_unreserved_pool_is_full():
    with Emulator(["hog:reserved=9", "slow:duration=30s", "free"], account_concurrency=10) as emu:
        client = lambda_client(emu)
        try:
            client.invoke(FunctionName="slow", InvocationType="Event")
            with pytest.raises(client.exceptions.TooManyRequestsException) as info:
                client.invoke(FunctionName="free")
            assert info.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
            assert client.invoke(FunctionName="hog")["StatusCode"] == 200
        finally:
            client.close()


def test_unknown_function_is_404(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="nobody")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nobody" in info.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_configuration(FunctionName="nobody")


def test_handled_and_unhandled_errors(emu, client):
    handled = client.invoke(FunctionName="broken")
    assert handled["StatusCode"] == 200 and handled["FunctionError"] == "Handled"
    body = json.loads(handled["Payload"].read())
    assert set(body) == {"errorMessage", "errorType", "stackTrace"}
    crashed = client.invoke(FunctionName="crashing", LogType="Tail")
    assert crashed["FunctionError"] == "Unhandled"
    assert json.loads(crashed["Payload"].read())["errorType"] == "Runtime.ExitError"
    # An unhandled error destroys the environment: the next call is cold again.
    again = client.invoke(FunctionName="crashing", LogType="Tail")
    assert "Init Duration" in tail(again)
    assert emu.function_stats("crashing")["errors"] == {"Handled": 0, "Unhandled": 2}


def test_timeout_is_unhandled(client):
    response = client.invoke(FunctionName="sleepy", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert (
        "Task timed out after 0.05 seconds"
        in json.loads(response["Payload"].read())["errorMessage"]
    )
    assert "Status: timeout" in tail(response)


def test_update_configuration_waiter_and_next_invoke_is_cold(emu, client):
    client.invoke(FunctionName="updated")
    warm = client.invoke(FunctionName="updated", LogType="Tail")
    assert "Init Duration" not in tail(warm)
    before = client.get_function_configuration(FunctionName="updated")
    assert before["State"] == "Active" and before["LastUpdateStatus"] == "Successful"
    updated = client.update_function_configuration(
        FunctionName="updated", Environment={"Variables": {"FORCE_COLD": "1"}}, MemorySize=512
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != before["RevisionId"]
    client.get_waiter("function_updated_v2").wait(
        FunctionName="updated", WaiterConfig={"Delay": 0.05, "MaxAttempts": 100}
    )
    after = client.get_function_configuration(FunctionName="updated")
    assert after["LastUpdateStatus"] == "Successful"
    assert after["Environment"]["Variables"] == {"FORCE_COLD": "1"}
    assert after["MemorySize"] == 512
    cold = client.invoke(FunctionName="updated", LogType="Tail")
    assert "Init Duration" in tail(cold) and "Memory Size: 512 MB" in tail(cold)


def test_second_update_while_in_progress_conflicts():
    with Emulator(["f"], update_delay=30) as emu:
        client = lambda_client(emu)
        try:
            client.update_function_configuration(FunctionName="f", Timeout=10)
            with pytest.raises(client.exceptions.ResourceConflictException):
                client.update_function_configuration(FunctionName="f", Timeout=11)
        finally:
            client.close()


def test_put_get_delete_function_concurrency(emu, client):
    put = client.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=5)
    assert put["ReservedConcurrentExecutions"] == 5
    got = client.get_function_concurrency(FunctionName="conc")
    assert got["ReservedConcurrentExecutions"] == 5
    assert emu.function_stats("conc")["reserved"] == 5
    assert emu.stats()["emulator"]["unreserved_concurrency"] == 1000 - 1 - 5
    client.delete_function_concurrency(FunctionName="conc")
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="conc"
    )
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=950)


def test_reserved_zero_throttles_everything(client):
    client.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=0)
    try:
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke(FunctionName="conc")
    finally:
        client.delete_function_concurrency(FunctionName="conc")


def test_list_functions(client):
    names = {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert names == {"hello", "capped", "broken", "crashing", "sleepy", "updated", "conc"}


def test_proactive_init_reports_init_duration_without_waiting_for_it():
    with Emulator(["pro:init=30s,proactive_init=1"]) as emu:
        client = lambda_client(emu)
        try:
            # A 30 s init that the request had to wait for would hit the read timeout.
            response = client.invoke(FunctionName="pro", LogType="Tail")
        finally:
            client.close()
        assert "Init Duration: " in tail(response)
        stats = emu.function_stats("pro")
        assert stats["cold_starts"] == 1 and stats["proactive_inits"] == 1
        assert stats["histograms"]["latency"]["max"] < 30_000_000
