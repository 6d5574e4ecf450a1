"""Lambda functions named by name, partial or full ARN: parsed into what an Invoke request needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

INVOKE_FORMS = (
    "'lambda:NAME', 'lambda:NAME:QUALIFIER', or an ARN "
    "'arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]' (ACCOUNT: 12 digits)"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUALIFIER_RE = re.compile(r"^(\$LATEST|[A-Za-z0-9_-]{1,128})$")
_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):"
    r"(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
_PARTIAL_ARN_RE = re.compile(r"^(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<q>[^:]+))?$")


@dataclass(frozen=True)
class FunctionRef:
    """A function named by name or ARN, split into the parts a request needs."""

    name: str  # plain function name
    path_name: str  # what goes into the URL path: the name or the ARN without qualifier
    qualifier: str | None
    region: str | None  # from an ARN
    partition: str = "aws"


def parse_function(function: object, qualifier: object = None) -> FunctionRef:
    """Parse a function name, partial or full ARN; raise ConfigError naming the value and forms."""
    if isinstance(qualifier, int) and not isinstance(qualifier, bool) and qualifier >= 1:
        qualifier = str(qualifier)  # a version number given as a number
    if not isinstance(function, str) or not function.strip():
        raise ConfigError(f"Lambda function {function!r} is not valid; use {INVOKE_FORMS}")
    text = function.strip()
    region = None
    partition = "aws"
    found_qualifier: str | None = None
    if match := _ARN_RE.match(text):
        name, found_qualifier = match["name"], match["qualifier"]
        region, partition = match["region"], match["partition"]
        path_name = f"arn:{partition}:lambda:{region}:{match['account']}:function:{name}"
    elif partial := _PARTIAL_ARN_RE.match(text):
        name, found_qualifier = partial["name"], partial["q"]
        path_name = f"{partial['account']}:function:{name}"
    elif text.startswith("arn:"):
        raise ConfigError(f"Lambda function ARN {function!r} is not valid; use {INVOKE_FORMS}")
    else:
        name, colon, rest = text.partition(":")
        found_qualifier = rest if colon else None  # "fn:" gives "", refused below
        path_name = name
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"Lambda function name {name!r} in {function!r} is not valid (1-64 letters, digits, "
            f"'-' or '_'); use {INVOKE_FORMS}"
        )
    if qualifier is not None and found_qualifier is not None and qualifier != found_qualifier:
        raise ConfigError(
            f"qualifier={qualifier!r} conflicts with {found_qualifier!r} in {function!r}; "
            "give the qualifier once"
        )
    final = qualifier if qualifier is not None else found_qualifier
    if final is not None and (not isinstance(final, str) or not _QUALIFIER_RE.match(final)):
        raise ConfigError(
            f"Lambda qualifier {final!r} is not valid; use '$LATEST', a version number "
            "or an alias name (letters, digits, '-' or '_')"
        )
    return FunctionRef(name, path_name, final, region, partition)
