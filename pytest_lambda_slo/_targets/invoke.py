"""InvokeTarget: a Lambda function called through the Invoke API, SigV4-signed, log tail parsed.

Every request is the same signed POST, so the signature is computed once and reused for
a bounded window (see aws_auth.DEFAULT_SIGN_WINDOW_S). The response's tail log gives the
server-side figures: Init/Restore Duration marks a cold start; Duration, Billed Duration
and memory feed the server histograms and the cost estimate. Region and endpoint are
resolved the way botocore resolves them (so AWS_ENDPOINT_URL_LAMBDA points a
``"lambda:NAME"`` string at a local emulator), once per target, and named in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .._aws import auth as aws_auth
from .._aws.control import ForceCold, force_cold
from .._aws.cost import ARCHITECTURES, estimate_cost
from .._aws.iam import IamSigning
from .._aws.reportline import parse_log_result
from .._http.request import RequestTemplate
from .._http.response import Response
from .._http.urls import ParsedURL, parse_url, redact_url
from .._results.recorder import Outcome
from ..errors import ConfigError, LambdaSLOError
from .base import DEFAULT_MAX_BODY_BYTES, check_throttle_statuses, check_transport_options
from .checks import CHECK_FAILED, ResponseCheck, check_check, check_label, label_of
from .feed import RequestFeed
from .functions import INVOKE_FORMS, FunctionRef, parse_function
from .lambdawire import encode_payload, error_field, is_json, lambda_headers
from .values import ValuesAt, Varying, check_seed, varying

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_SUCCESS_STATUS = {"RequestResponse": 200, "Event": 202, "DryRun": 204}


@dataclass(frozen=True, repr=False)
class InvokeTarget:
    """A Lambda function invoked directly through the Invoke API (SigV4, LogType=Tail)."""

    function: str
    qualifier: str | None = None
    payload: Any = None
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    invocation_type: str = "RequestResponse"
    verify: bool | str = True
    throttle_statuses: tuple[int, ...] = (429,)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # A successful RequestResponse body must be JSON (what Lambda's runtimes return);
    # set False for a function that answers raw bytes.
    expect_json: bool = True
    sign_window_s: float = aws_auth.DEFAULT_SIGN_WINDOW_S
    # For the cost estimate: the function's architecture and, optionally, your own prices
    # (see cost.estimate_cost).
    architecture: str = "x86_64"
    prices: Mapping[str, Any] | None = field(default=None, hash=False)
    # Per-request payloads (a callable f(i) / f(i, rng), Cycle(rows) or a generator; see
    # values.py), a label per request, and a check of each response (see checks.py).
    label: Any = None
    check: Any = None
    seed: int | None = None
    _ref: FunctionRef = field(init=False, repr=False, compare=False)
    _body: bytes = field(init=False, repr=False, compare=False)
    _payloads: Varying | None = field(init=False, repr=False, compare=False)
    # (region, endpoint) once resolved; kept so every report line and lock names the same.
    _resolved: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ref = parse_function(self.function, self.qualifier)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "qualifier", ref.qualifier)
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise ConfigError(f"region={self.region!r} is not valid; use a region like 'eu-west-1'")
        if ref.region and self.region and ref.region != self.region:
            raise ConfigError(
                f"region={self.region!r} conflicts with region {ref.region!r} of the function ARN"
            )
        if self.invocation_type not in INVOCATION_TYPES:
            raise ConfigError(
                f"invocation_type={self.invocation_type!r} is not valid; use one of "
                + ", ".join(INVOCATION_TYPES)
            )
        if self.endpoint_url is not None:
            parse_url(self.endpoint_url)  # ConfigError on a bad URL
        object.__setattr__(
            self, "throttle_statuses", check_throttle_statuses(self.throttle_statuses)
        )
        check_transport_options(self.verify, self.max_body_bytes)
        aws_auth.check_sign_window(self.sign_window_s)
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture={self.architecture!r} is not valid; use one of "
                + ", ".join(ARCHITECTURES)
            )
        payloads = varying("payload", self.payload, sequences_are_values=True)
        if payloads is not None and payloads.rows is not None:
            payloads.rows = tuple(encode_payload(row) for row in payloads.rows)
        object.__setattr__(self, "_payloads", payloads)
        object.__setattr__(self, "_body", b"" if payloads else encode_payload(self.payload))
        check_label(self.label, "InvokeTarget")
        check_check(self.check, "InvokeTarget")
        object.__setattr__(self, "seed", check_seed(self.seed))

    @classmethod
    def from_string(cls, text: str, **kwargs: Any) -> InvokeTarget:
        """Build from 'lambda:NAME[:QUALIFIER]', 'lambda:ARN' or a bare Lambda function ARN."""
        if not isinstance(text, str):
            raise ConfigError(f"Lambda target {text!r} is not valid; use {INVOKE_FORMS}")
        stripped = text.strip()
        if stripped.startswith("lambda:"):
            function = stripped[len("lambda:") :]
        elif stripped.startswith("arn:"):
            function = stripped
        else:
            raise ConfigError(f"Lambda target {text!r} is not valid; use {INVOKE_FORMS}")
        if not function:
            raise ConfigError(f"Lambda target {text!r} names no function; use {INVOKE_FORMS}")
        return cls(function, **kwargs)

    # -- what reports show (no credentials: they are never held here) ---------------------

    @property
    def per_request(self) -> tuple[str, ...]:
        """The options that change from request to request (empty: one fixed request)."""
        return ("payload",) if self._payloads is not None else ()

    @property
    def function_name(self) -> str:
        return self._ref.name

    def _label(self) -> str:
        ref = self._ref
        return ref.path_name + (f":{ref.qualifier}" if ref.qualifier else "")

    def _known(self) -> tuple[str | None, str | None]:
        """(region, endpoint) as far as they can be resolved; None where they cannot yet."""
        try:
            return self.resolve()
        except LambdaSLOError:  # no botocore, region or profile: prepare() says so
            return self.region or self._ref.region, self.endpoint_url

    def __repr__(self) -> str:
        # Not the dataclass repr: an endpoint URL may carry user info, a payload may be big.
        return f"InvokeTarget({self.describe()!r})"

    def describe(self) -> str:
        region, endpoint = self._known()
        text = f"lambda:{self._label()} ({self.invocation_type}, {region or 'no region set'})"
        if endpoint:
            text += f" via {redact_url(endpoint)}"
        return text

    def shape_info(self) -> dict[str, Any]:
        region, endpoint = self._known()
        where = redact_url(endpoint) if endpoint else str(region)
        return {
            "kind": "lambda_invoke",
            "function": self._ref.path_name,
            "qualifier": self._ref.qualifier,
            "region": region,
            "endpoint_url": redact_url(endpoint) if endpoint else None,
            "profile": self.profile,
            "invocation_type": self.invocation_type,
            "payload_bytes": len(self._body) if self._payloads is None else "per request",
            "throttle_statuses": list(self.throttle_statuses),
            "sign_window_s": self.sign_window_s,
            "architecture": self.architecture,
            # One lock per function and endpoint: a forced cold start hits every qualifier.
            "lock_key": f"lambda:{self._ref.path_name}@{where}",
        }

    def estimate_cost(self, measurements: Any) -> dict[str, Any]:
        """Estimated USD cost of a run: billed invocations and their GB-seconds."""
        region: str | None
        try:
            region = self.resolved_region()
        except Exception:  # cost is best effort: an unknown region uses default prices
            region = None
        return estimate_cost(
            measurements.hist("billed").count,
            measurements.billed_mb_ms,
            region=region,
            architecture=self.architecture,
            prices=self.prices,
        )

    # -- AWS plumbing ---------------------------------------------------------------------

    def session(self) -> Any:
        """A botocore session for this target's profile (raises MissingExtraError without it)."""
        return aws_auth.make_session(self.profile)

    def resolve(self, session: Any | None = None) -> tuple[str, str]:
        """(region, endpoint URL): the arguments, else botocore's configuration chain.

        The region: ``region=``, the ARN's, else AWS_REGION / AWS_DEFAULT_REGION / the
        profile. The endpoint: ``endpoint_url=``, else what botocore resolves (see
        aws_auth.resolve_endpoint). Resolved once per target.
        """
        if self._resolved is None:
            session = session or self.session()
            region = self.region or self._ref.region or aws_auth.resolve_region(None, session)
            if self.endpoint_url:
                endpoint = self.endpoint_url.rstrip("/")
            else:
                endpoint = aws_auth.resolve_endpoint(session, "lambda", region)
                parse_url(endpoint)  # a configured endpoint must be a URL we can load
            object.__setattr__(self, "_resolved", (region, endpoint))
        assert self._resolved is not None
        return self._resolved

    def resolved_region(self, session: Any | None = None) -> str:
        return self.resolve(session)[0]

    def resolved_endpoint(self, session: Any | None = None) -> str:
        return self.resolve(session)[1]

    def invoke_url(self, session: Any | None = None) -> str:
        ref = self._ref
        url = (
            f"{self.resolved_endpoint(session)}/2015-03-31/functions/"
            f"{quote(ref.path_name, safe='')}/invocations"
        )
        if ref.qualifier:
            url += "?Qualifier=" + quote(ref.qualifier, safe="")
        return url

    def client(self, *, read_timeout: float = 60.0) -> Any:
        """A botocore Lambda client for the control plane (SDK retries off)."""
        session = self.session()
        region, endpoint = self.resolve(session)
        return aws_auth.create_client(
            "lambda",
            session=session,
            region=region,
            endpoint_url=endpoint,
            verify=self.verify,
            read_timeout=read_timeout,
        )

    def prepare(self) -> PreparedInvoke:
        session = self.session()
        region, _ = self.resolve(session)
        signer = aws_auth.RequestSigner(
            session, region=region, service="lambda", window_s=self.sign_window_s
        )
        return PreparedInvoke(self, region, signer)

    def force_cold(self, **kwargs: Any) -> ForceCold:
        """A context manager that retires every warm environment first (see control.py)."""
        return force_cold(self, **kwargs)


class PreparedInvoke:
    """Wire form of an InvokeTarget: the signed template (re-signed per window) and classify."""

    def __init__(self, target: InvokeTarget, region: str, signer: aws_auth.RequestSigner) -> None:
        self.target = target
        self.region = region
        self.signer = signer
        self.url_text = target.invoke_url()
        self.url: ParsedURL = parse_url(self.url_text)
        self.verify = target.verify
        self.max_body_bytes = target.max_body_bytes
        self._body = target._body
        # Signed: Host, Content-Type and the two X-Amz headers; User-Agent and Content-Length
        # are sent unsigned so the signature does not depend on them.
        self._unsigned: tuple[tuple[str, str], ...] = (
            ("Host", self.url.host_header),
            ("Content-Type", "application/json"),
            ("X-Amz-Invocation-Type", target.invocation_type),
            ("X-Amz-Log-Type", "Tail" if target.invocation_type == "RequestResponse" else "None"),
        )
        self._throttle = frozenset(target.throttle_statuses)
        self._success = _SUCCESS_STATUS[target.invocation_type]
        self._expect_json = target.expect_json and target.invocation_type == "RequestResponse"
        self._template: RequestTemplate | None = None
        self.check_messages: list[str] = []  # the first distinct check failures (the report)
        self._check = ResponseCheck(target.check, self.check_messages) if target.check else None
        self._label = target.label
        self._feed: RequestFeed | None = None
        if target._payloads is not None or callable(target.label):
            per = {"payload": target._payloads} if target._payloads is not None else {}
            self._values_at = ValuesAt(per, target.seed or 0)
            self._feed = RequestFeed(self._build, IamSigning(signer, target.sign_window_s))

    @property
    def access_key_id(self) -> str | None:
        return self.signer.access_key_id

    def begin(self, index: int, count: int, requests: int | None) -> None:
        """Bind per-request payloads to the engine's slice (built before the release)."""
        if self._feed is not None:
            self._feed.begin(index, count, requests)

    def current_request(self) -> RequestTemplate:
        if self._feed is not None:
            return self._feed.next()
        template = self._template
        if template is None or self.signer.expired():
            template = self._template = self._sign(self._body, self._label)
        return template

    def _sign(self, body: bytes, label: str | None) -> RequestTemplate:
        headers = self.signer.sign("POST", self.url_text, self._unsigned, body)
        headers.append(("User-Agent", "pytest-lambda-slo"))
        headers.append(("Content-Length", str(len(body))))
        return RequestTemplate("POST", self.url, tuple(headers), body, label)

    def _build(self, i: int) -> RequestTemplate:
        """Request ``i``: its payload (encoded, then signed) and its label."""
        values = self._values_at(i)
        payloads = self.target._payloads
        if payloads is None:
            body, data = self._body, i
        else:
            data = values["payload"]
            body = data if payloads.rows is not None else encode_payload(data)
        return self._sign(body, label_of(self._label, data))

    def classify(
        self, response: Response | None, error_kind: str | None, latency_ns: int | None
    ) -> Outcome:
        if response is None:
            return Outcome("error", latency_ns, error_kind=error_kind or "unknown")
        status = response.status_code
        size = response.body_bytes
        # One pass over the raw headers gives all three Lambda headers (no case-insensitive map).
        log_result, function_error, error_type = lambda_headers(response.headers.raw)
        if status in self._throttle:
            reason = error_field(response, "Reason") or error_type or "unknown"
            return Outcome(
                "throttle", latency_ns, status=status, bytes_received=size, throttle_reason=reason
            )
        server = parse_log_result(log_result)
        cold: bool | None = None
        proactive = False
        if server is not None:
            init = server.get("init", server.get("restore"))
            cold = init is not None
            # An Init Duration longer than the whole round trip: the caller cannot have
            # waited for it, so Lambda initialised this environment ahead of the request.
            if cold and latency_ns is not None and latency_ns < init * 1e6:  # type: ignore[operator]
                cold, proactive = False, True
        if error_kind is None:
            if status >= 400:
                error_kind = error_type or ("http_5xx" if status >= 500 else "http_4xx")
            elif function_error:
                error_kind = f"function_error:{function_error}"
                body_type = error_field(response, "errorType")
                if body_type:
                    error_kind += f":{body_type}"
            elif status != self._success:
                error_kind = f"unexpected_status_{status}"
            elif self._expect_json and not response.truncated and not is_json(response.content):
                error_kind = "invalid_response"
        if error_kind is None and self._check is not None:
            if self._check.failure(response) is not None:  # after the clock stopped
                error_kind = CHECK_FAILED
        return Outcome(
            "ok" if error_kind is None else "error",
            latency_ns,
            status=status,
            error_kind=error_kind,
            cold=cold,
            bytes_received=size,
            server=server,
            proactive_init=proactive,
        )
