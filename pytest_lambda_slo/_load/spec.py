"""Targets and shapes as JSON, for a Lambda shard: what the dispatcher sends, the handler reads.

A local worker process gets its target pickled; a Lambda shard gets JSON instead, because
a handler that unpickled its event would run any code whoever may invoke it sends. So only
what JSON can say crosses: an HttpTarget's URL, method, headers and body, an
InvokeTarget's function, payload and options, and a shape's own constructor fields. What
cannot cross (a callable ``cold_start=``, a CA bundle path on this machine, a local AWS
profile) is refused in the caller with a one-line ConfigError naming it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .._targets.base import Target
from .._targets.http import HttpTarget
from .._targets.invoke import InvokeTarget
from ..errors import ConfigError
from .shapes import SHAPES, Shape

_SHAPES_BY_KIND = {cls.kind: cls for cls in SHAPES}


def _transport(target: HttpTarget | InvokeTarget) -> dict[str, Any]:
    if isinstance(target.verify, str):
        raise ConfigError(
            f"verify={target.verify!r} cannot be used by a Lambda shard (the CA bundle is a "
            "file on this machine); use verify=True or verify=False with fanout="
        )
    return {
        "verify": target.verify,
        "max_body_bytes": target.max_body_bytes,
        "throttle_statuses": list(target.throttle_statuses),
    }


def _bytes_spec(value: bytes | bytearray | memoryview | str | None) -> dict[str, str] | None:
    """A body or payload given as bytes or str, exactly (bytes base64-encoded)."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"text": value}
    return {"base64": base64.b64encode(bytes(value)).decode()}


def _bytes_from_spec(spec: Mapping[str, str] | None) -> bytes | str | None:
    if spec is None:
        return None
    if "text" in spec:
        return spec["text"]
    return base64.b64decode(spec["base64"])


def _payload_from_spec(spec: Mapping[str, Any] | None) -> Any:
    if spec is not None and "json" in spec:
        return spec["json"]
    return _bytes_from_spec(spec)


def _refuse_per_request(target: HttpTarget | InvokeTarget) -> None:
    """Per-request data, labels, checks and auth= run user code or hold credentials: none
    of them crosses to a Lambda shard."""
    varying = list(target.per_request)
    used = [name for name in ("label", "check", "auth") if getattr(target, name, None) is not None]
    if varying or used:
        names = ", ".join(f"{name}=" for name in [*varying, *used])
        raise ConfigError(
            f"{names} cannot be sent to a Lambda shard (per-request data, labels, checks and "
            "auth= stay on this machine); use fixed values with fanout=, or workers=N"
        )


def target_to_spec(target: Target) -> dict[str, Any]:
    """The JSON form of ``target`` for a shard; ConfigError for what a shard cannot use."""
    if isinstance(target, (HttpTarget, InvokeTarget)):
        _refuse_per_request(target)
    if isinstance(target, HttpTarget):
        cold = target.cold_start
        if cold is not None and not isinstance(cold, str):
            raise ConfigError(
                "cold_start= a callable cannot be sent to a Lambda shard; use a response "
                "header name such as 'x-cold-start' with fanout="
            )
        headers = target.headers
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        return {
            "kind": "http",
            "url": target.url,
            "method": target.method,
            "headers": [[str(name), str(value)] for name, value in items],
            "body": _bytes_spec(target.body),
            "json": target.json,
            "cold_start": cold,
            **_transport(target),
        }
    if isinstance(target, InvokeTarget):
        if target.profile is not None:
            raise ConfigError(
                f"profile={target.profile!r} cannot be used by a Lambda shard (shards sign "
                "with the generator's role); use profile=None on the target with fanout="
            )
        region, _endpoint = target.resolve()  # the shard must call the same region
        return {
            "kind": "invoke",
            "function": target.function,
            "qualifier": target.qualifier,
            "payload": _bytes_spec(target.payload)
            if isinstance(target.payload, (bytes, bytearray, memoryview, str))
            else {"json": target.payload},
            "region": region,
            "endpoint_url": target.endpoint_url,
            "invocation_type": target.invocation_type,
            "expect_json": target.expect_json,
            "sign_window_s": target.sign_window_s,
            "architecture": target.architecture,
            **_transport(target),
        }
    raise ConfigError(
        f"{target.describe()} cannot be sent to a Lambda shard; fanout= takes an URL, "
        "'lambda:NAME', HttpTarget or InvokeTarget"
    )


def target_from_spec(spec: Mapping[str, Any]) -> Target:
    """The target a shard runs (ConfigError for a spec no dispatcher would send)."""
    kind = spec.get("kind")
    common = {
        "verify": spec["verify"],
        "max_body_bytes": spec["max_body_bytes"],
        "throttle_statuses": tuple(spec["throttle_statuses"]),
    }
    if kind == "http":
        return HttpTarget(
            spec["url"],
            method=spec["method"],
            headers=[tuple(pair) for pair in spec["headers"]],  # type: ignore[arg-type]
            body=_bytes_from_spec(spec.get("body")),
            json=spec.get("json"),
            cold_start=spec.get("cold_start"),
            **common,
        )
    if kind == "invoke":
        return InvokeTarget(
            spec["function"],
            qualifier=spec.get("qualifier"),
            payload=_payload_from_spec(spec.get("payload")),
            region=spec.get("region"),
            endpoint_url=spec.get("endpoint_url"),
            invocation_type=spec["invocation_type"],
            expect_json=spec["expect_json"],
            sign_window_s=spec["sign_window_s"],
            architecture=spec["architecture"],
            **common,
        )
    raise ConfigError(f"target kind={kind!r} is not valid; use 'http' or 'invoke'")


def shape_to_spec(shape: Shape) -> dict[str, Any]:
    """A shape's kind and its constructor fields (its own values, re-checked by the shard)."""
    values = {f.name: getattr(shape, f.name) for f in fields(shape) if f.init}
    return {"kind": shape.kind, **values}


def shape_from_spec(spec: Mapping[str, Any]) -> Shape:
    values = dict(spec)
    kind = values.pop("kind", None)
    cls = _SHAPES_BY_KIND.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ConfigError(
            f"shape kind={kind!r} is not valid; use one of {', '.join(_SHAPES_BY_KIND)}"
        )
    return cls(**values)
