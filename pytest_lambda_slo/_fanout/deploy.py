"""The generator function's life: create it once, reuse it while its build matches, remove it.

Everything goes through botocore's Lambda client. Control-plane calls (GetFunction,
CreateFunction, ...) get a small standard retry: retrying them changes nothing measured.
The client for shard invocations has retries off (a retried shard doubles its share of
the load), a read timeout longer than the function's own timeout, and a connection pool
as large as the shard count.

Only functions tagged ``lambda-slo:managed=true`` are ever updated or deleted: a function
of the same name without the tag is refused, never overwritten. IAM roles are never
created or deleted: on AWS the caller passes ``role=``; against another endpoint (the
emulator, moto) a placeholder ARN is used when none is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._aws import auth as aws_auth
from ..errors import ConfigError, LambdaSLOError
from .config import LambdaFanout
from .contents import NAME_PREFIX
from .package import Package, build_package

MANAGED_TAG = "lambda-slo:managed"
VERSION_TAG = "lambda-slo:version"
BUILD_TAG = "lambda-slo:build"
CODE_TAG = "lambda-slo:code"
PLACEHOLDER_ROLE = "arn:aws:iam::123456789012:role/lambda-slo-generator"
CONTROL_RETRIES = {"total_max_attempts": 3, "mode": "standard"}
# A shard's answer can take the function's whole timeout; wait that long and then some.
INVOKE_READ_MARGIN_S = 60.0
CONNECT_TIMEOUT_S = 10.0
CONTROL_READ_TIMEOUT_S = 120.0  # a 50 MB CreateFunction upload on a slow link
WAITER_CONFIG = {"Delay": 1, "MaxAttempts": 300}
# Hosts of AWS's own Lambda endpoints, in every partition.
_AWS_HOST_SUFFIXES = (
    ".amazonaws.com",
    ".amazonaws.com.cn",
    ".api.aws",
    ".c2s.ic.gov",
    ".sc2s.sgov.gov",
)
DESCRIPTION = "pytest-lambda-slo load generator (created by lambda-slo; safe to delete)"


class DeployError(LambdaSLOError):
    """A control-plane call on the generator function failed; the message says which."""


@dataclass(frozen=True)
class GeneratorFunction:
    """The generator function ready to be invoked, and what ``ensure_generator`` did."""

    name: str
    arn: str
    region: str
    endpoint_url: str | None
    action: str  # "created", "reused" or "updated"
    build_hash: str
    code_hash: str
    runtime: str
    architecture: str
    memory: int
    timeout: int


@dataclass(frozen=True)
class ManagedFunction:
    """A generator function found in the account (``status``)."""

    name: str
    arn: str
    version: str
    build: str
    code: str
    runtime: str
    architecture: str
    memory: int
    last_modified: str
    reserved_concurrency: int | None


def session_and_region(fanout: LambdaFanout) -> tuple[Any, str]:
    session = aws_auth.make_session(fanout.profile)
    return session, aws_auth.resolve_region(fanout.region, session)


def control_client(fanout: LambdaFanout, session: Any = None) -> Any:
    """A Lambda client for control-plane calls (a small standard retry)."""
    from botocore.config import Config

    if session is None:
        session, region = session_and_region(fanout)
    else:
        region = aws_auth.resolve_region(fanout.region, session)
    aws_auth.frozen_credentials(session)  # a clear error without credentials
    config = Config(
        retries=dict(CONTROL_RETRIES),
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=CONTROL_READ_TIMEOUT_S,
    )
    return session.create_client(
        "lambda", region_name=region, endpoint_url=fanout.endpoint_url, config=config
    )


def invoke_client(fanout: LambdaFanout, session: Any = None) -> Any:
    """A Lambda client for shard invocations: no retries, a long read, a pool of ``shards``."""
    from botocore.config import Config

    if session is None:
        session, region = session_and_region(fanout)
    else:
        region = aws_auth.resolve_region(fanout.region, session)
    aws_auth.frozen_credentials(session)
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=fanout.timeout_s + INVOKE_READ_MARGIN_S,
        max_pool_connections=max(10, fanout.shards),
        # A synchronous invoke is a quiet connection for up to 15 minutes: keepalives
        # stop middleboxes from dropping it as idle.
        tcp_keepalive=True,
    )
    return session.create_client(
        "lambda", region_name=region, endpoint_url=fanout.endpoint_url, config=config
    )


def is_aws_endpoint(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host.endswith(suffix) for suffix in _AWS_HOST_SUFFIXES)


def ensure_generator(
    fanout: LambdaFanout,
    *,
    package: Package | None = None,
    client: Any = None,
    log: Callable[[str], None] | None = None,
) -> GeneratorFunction:
    """The generator function for ``fanout``: created if missing, updated if its build differs.

    GetFunction first; missing: CreateFunction (tagged) and wait until Active. Present and
    tagged with this build's code hash and configuration: reused as is. Tagged but
    different: UpdateFunctionCode / UpdateFunctionConfiguration and wait. Present without
    the managed tag: refused. A reserved concurrency of 0 left by an interrupted run is
    removed, so the function can run again.
    """
    say = log or (lambda _line: None)
    client = client if client is not None else control_client(fanout)
    package = package if package is not None else build_package(fanout)
    _check_matches(fanout, package)
    name = fanout.function_name or package.function_name
    region = client.meta.region_name
    current = _get_function(client, name)
    if current is None:
        role = _role(fanout, client)
        say(f"lambda-slo fanout: creating {name} ({package.size / 1e6:.1f} MB zip)")
        _call(
            client.create_function,
            "CreateFunction",
            name,
            FunctionName=name,
            Runtime=package.runtime,
            Role=role,
            Handler=package.handler,
            Code={"ZipFile": package.zip_bytes},
            Description=DESCRIPTION,
            Timeout=int(fanout.timeout_s),
            MemorySize=package.memory,
            Architectures=[package.architecture],
            Tags=package.tags(),
        )
        _wait(client, "function_active_v2", name)
        action = "created"
    else:
        tags = current.get("Tags") or {}
        if tags.get(MANAGED_TAG) != "true":
            raise ConfigError(
                f"function {name!r} exists but is not tagged {MANAGED_TAG}=true, so lambda-slo "
                "did not create it and will not change it; pass another function_name="
            )
        config = current.get("Configuration") or {}
        action = "reused"
        if config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress":
            _wait(client, "function_updated_v2", name)
        if tags.get(CODE_TAG) != package.code_hash or config.get("Architectures", ["x86_64"]) != [
            package.architecture
        ]:
            say(f"lambda-slo fanout: updating the code of {name} (its build differs)")
            _call(
                client.update_function_code,
                "UpdateFunctionCode",
                name,
                FunctionName=name,
                ZipFile=package.zip_bytes,
                Architectures=[package.architecture],
            )
            _wait(client, "function_updated_v2", name)
            action = "updated"
        wanted = {
            "Runtime": package.runtime,
            "Handler": package.handler,
            "MemorySize": package.memory,
            "Timeout": int(fanout.timeout_s),
        }
        changed = {k: v for k, v in wanted.items() if config.get(k) != v}
        if changed:
            say(f"lambda-slo fanout: updating the configuration of {name}: {sorted(changed)}")
            _call(
                client.update_function_configuration,
                "UpdateFunctionConfiguration",
                name,
                FunctionName=name,
                **changed,
            )
            _wait(client, "function_updated_v2", name)
            action = "updated"
        if action == "updated" or tags.get(BUILD_TAG) != package.build_hash:
            arn = str(config.get("FunctionArn") or name)
            _call(client.tag_resource, "TagResource", name, Resource=arn, Tags=package.tags())
        # GetFunctionConcurrency, not GetFunction's "Concurrency": moto omits a 0 there.
        reserved = _call(
            client.get_function_concurrency,
            "GetFunctionConcurrency",
            name,
            FunctionName=name,
        ).get("ReservedConcurrentExecutions")
        if reserved == 0:
            say(f"lambda-slo fanout: {name} was stopped (reserved concurrency 0); re-enabling")
            _call(
                client.delete_function_concurrency,
                "DeleteFunctionConcurrency",
                name,
                FunctionName=name,
            )
    final = _get_function(client, name) or {}
    config = final.get("Configuration") or {}
    say(f"lambda-slo fanout: {name} {action} ({package.runtime} {package.architecture})")
    return GeneratorFunction(
        name=name,
        arn=str(config.get("FunctionArn", "")),
        region=region,
        endpoint_url=fanout.endpoint_url,
        action=action,
        build_hash=package.build_hash,
        code_hash=package.code_hash,
        runtime=package.runtime,
        architecture=package.architecture,
        memory=package.memory,
        timeout=int(fanout.timeout_s),
    )


def status(fanout: LambdaFanout, *, client: Any = None) -> list[ManagedFunction]:
    """The plugin's generator functions in ``fanout``'s region (managed tag, name prefix)."""
    client = client if client is not None else control_client(fanout)
    found = []
    for config in _candidates(client, fanout):
        arn = str(config["FunctionArn"])
        tags = _call(client.list_tags, "ListTags", config["FunctionName"], Resource=arn).get(
            "Tags", {}
        )
        if tags.get(MANAGED_TAG) != "true":
            continue
        reserved = _call(
            client.get_function_concurrency,
            "GetFunctionConcurrency",
            config["FunctionName"],
            FunctionName=config["FunctionName"],
        ).get("ReservedConcurrentExecutions")
        found.append(
            ManagedFunction(
                name=str(config["FunctionName"]),
                arn=arn,
                version=str(tags.get(VERSION_TAG, "")),
                build=str(tags.get(BUILD_TAG, "")),
                code=str(tags.get(CODE_TAG, "")),
                runtime=str(config.get("Runtime", "")),
                architecture=str((config.get("Architectures") or ["x86_64"])[0]),
                memory=int(config.get("MemorySize", 0)),
                last_modified=str(config.get("LastModified", "")),
                reserved_concurrency=reserved,
            )
        )
    return found


def cleanup(
    fanout: LambdaFanout,
    *,
    client: Any = None,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Delete the plugin's generator functions (tagged managed, prefixed or ``function_name``).

    Returns the names deleted (or, with ``dry_run``, that would be). Nothing else is touched.
    """
    say = log or (lambda _line: None)
    client = client if client is not None else control_client(fanout)
    deleted = []
    for function in status(fanout, client=client):
        say(f"lambda-slo fanout: {'would delete' if dry_run else 'deleting'} {function.name}")
        if not dry_run:
            _call(
                client.delete_function,
                "DeleteFunction",
                function.name,
                FunctionName=function.name,
            )
        deleted.append(function.name)
    return deleted


def stop_all(client: Any, name: str) -> None:
    """Reserved concurrency 0: Lambda refuses every new invocation of the generator at once.

    For Ctrl-C: running shards are told to stop by the caller; this makes sure nothing
    (a retry, a late dispatch) starts another. ``ensure_generator`` lifts it on the next run.
    """
    _call(
        client.put_function_concurrency,
        "PutFunctionConcurrency",
        name,
        FunctionName=name,
        ReservedConcurrentExecutions=0,
    )


def disable_async_retries(client: Any, name: str) -> None:
    """No retry of a failed asynchronous invocation (Lambda's default is two)."""
    _call(
        client.put_function_event_invoke_config,
        "PutFunctionEventInvokeConfig",
        name,
        FunctionName=name,
        MaximumRetryAttempts=0,
    )


def _check_matches(fanout: LambdaFanout, package: Package) -> None:
    if (package.architecture, package.python_version, package.memory) != (
        fanout.architecture,
        fanout.python_version,
        fanout.memory,
    ):
        raise ConfigError(
            f"the package was built for {package.architecture} python{package.python_version} "
            f"{package.memory} MB, not {fanout.architecture} {fanout.runtime} "
            f"{fanout.memory} MB; build it from the same LambdaFanout"
        )


def _role(fanout: LambdaFanout, client: Any) -> str:
    if fanout.role:
        return fanout.role
    if is_aws_endpoint(str(client.meta.endpoint_url)):
        raise ConfigError(
            "role=None cannot create the generator function on AWS; pass role= the ARN of an "
            "existing IAM role Lambda can assume (e.g. one with AWSLambdaBasicExecutionRole): "
            "lambda-slo never creates IAM roles"
        )
    return PLACEHOLDER_ROLE


def _candidates(client: Any, fanout: LambdaFanout) -> list[dict[str, Any]]:
    wanted = []
    paginator = client.get_paginator("list_functions")
    for page in paginator.paginate():
        for config in page.get("Functions", []):
            name = str(config.get("FunctionName", ""))
            if name.startswith(NAME_PREFIX) or name == fanout.function_name:
                wanted.append(config)
    return wanted


def _get_function(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.get_function(FunctionName=name))
    except client.exceptions.ResourceNotFoundException:
        return None
    except Exception as exc:
        raise DeployError(_describe("GetFunction", name, exc)) from None


def _call(method: Any, operation: str, name: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return dict(method(**kwargs))
    except LambdaSLOError:
        raise
    except Exception as exc:
        raise DeployError(_describe(operation, name, exc)) from None


def _wait(client: Any, waiter: str, name: str) -> None:
    try:
        client.get_waiter(waiter).wait(FunctionName=name, WaiterConfig=dict(WAITER_CONFIG))
    except Exception as exc:
        raise DeployError(_describe(f"waiting ({waiter})", name, exc)) from None


def _describe(operation: str, name: str, exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{operation} on {name} failed: {error.get('Code')}: {error.get('Message')}"
    return f"{operation} on {name} failed: {type(exc).__name__}: {exc}"
