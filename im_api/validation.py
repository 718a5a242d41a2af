"""Request body validators that answer bad bodies in our envelope instead of a 500.

Connexion's own JSON validator lets a body that is not UTF-8 (or names an unknown charset)
escape as an exception, and words every failure as problem+json; these say MALFORMED_BODY
or INVALID_REQUEST. It also checks `format: email` only for an "@"; ours reads it as
RFC 5321 does, as other validators of the contract (schemathesis among them) do.

A JSON body is read one way only, and strictly: UTF-8 (RFC 8259 §8.1; any other declared
charset is 415), under exactly one Content-Type header, each key of an object once, numbers
that fit a double (no NaN or Infinity, which are not JSON). The object validated is the one
the handler gets (`im_api.json_body`).
"""

from __future__ import annotations

import json
import re
import typing as t

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import FormDataValidator, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from im_api import field_errors, json_body
from im_api.uploads import MultipartUploadValidator
from im_core.errors import ApiError, Error

# Where the JSON validator leaves the body it parsed and validated, in the ASGI scope: the
# object a JSON handler receives (`im_api.json_body`; `im_api.speed` reads it directly).
PARSED_JSON = json_body.VALIDATED

# Messages that name only the schema's words; for any other rule, jsonschema's message would
# quote the value sent, which may be a password, so the rule is named instead.
_SAFE_MESSAGES = {"required", "additionalProperties", "enum"}


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MAILBOX = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def is_mailbox(instance: object) -> bool:
    """`format: email`: a dot-atom local part of at most 64 characters, `@`, a host name."""
    if not isinstance(instance, str):
        return True
    local, _, domain = instance.rpartition("@")
    return bool(_MAILBOX.fullmatch(instance)) and len(local) <= 64 and len(domain) <= 253


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
FORMAT_CHECKER.checks("email")(is_mailbox)


def describe(error: ValidationError) -> str:
    """One line saying where the body broke which rule, without echoing secrets."""
    if error.validator in ("oneOf", "anyOf"):
        closest = field_errors.closest_form(error)
        if closest is not None:
            return describe(closest)
    where = "/".join(str(part) for part in error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        rule = "does not match any of the accepted forms"
    elif error.validator in _SAFE_MESSAGES:
        rule = error.message
    else:
        rule = f"fails {error.validator} {error.validator_value!r}"
    detail = f"'{where}' {rule}" if where else rule
    return detail if len(detail) <= 300 else detail[:300] + "..."


def invalid_body(errors: list[ValidationError]) -> ApiError | None:
    """1001 for a body that broke its schema: the most telling error in `info`, and every
    field and rule in `errors`; None when `errors` is empty."""
    if not errors:
        return None
    return ApiError(
        Error.INVALID_REQUEST,
        f"Invalid request: {describe(best_match(errors))}",
        extra={"errors": field_errors.body_errors(errors)},
    )


class FieldParameterValidator(ParameterValidator):
    """Connexion's parameter validation, answering 1001 with every offending parameter in
    `errors` (Connexion stops at the first, and its message may not name it)."""

    def schema_error(self, schema: dict, value: t.Any) -> ValidationError | None:
        validator = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        return best_match(validator.iter_errors(value))

    def validate_request(self, request) -> None:
        found = []
        if self.strict_validation:
            extra = self.validate_query_parameter_list(
                request, security_params=self.security_query_params
            )
            found += [
                field_errors.entry("query", name, "unknown", "is not a parameter of this operation")
                for name in sorted(extra)
            ]
        values = {
            "query": lambda name: request.query_params.get(name),
            "path": lambda name: request.path_params.get(name.replace("-", "_")),
            "header": lambda name: request.headers.get(name),
            "cookie": lambda name: request.cookies.get(name),
        }
        for where, value_of in values.items():
            for param in self.parameters.get(where, []):
                value = value_of(param["name"])
                if is_nullable(param) and is_null(value):
                    continue
                if value is None:
                    if param.get("required"):
                        found.append(
                            field_errors.entry(where, param["name"], "required", "is required")
                        )
                    continue
                error = self.schema_error(param.get("schema", param), value)
                if error is not None:
                    found.append(field_errors.parameter_error(where, param["name"], error))
        if found:
            first = found[0]
            raise ApiError(
                Error.INVALID_REQUEST,
                f"Invalid request: {first['in']} parameter '{first['field']}' {first['message']}",
                extra={"errors": found[: field_errors.MAX_FIELD_ERRORS]},
            )


def _empty_body() -> ApiError:
    return ApiError(
        Error.INVALID_REQUEST,
        "Invalid request: the body must not be empty",
        extra={"errors": [field_errors.entry("body", "", "required", "is required")]},
    )


class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return Draft4RequestValidator(self._schema, format_checker=FORMAT_CHECKER)

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Connexion takes a body without Content-Length for no body at all, so a chunked one
        (HTTP/1.1 `Transfer-Encoding: chunked`) was refused as missing: read it here, where
        the size limit still cuts it off as it streams in, and give it its length."""
        headers = Headers(scope=scope)
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
        check_json_content_type(scope, has_body=has_body)
        if not has_body and self._required:
            raise _empty_body()
        if "content-length" in headers or "transfer-encoding" not in headers:
            return await super().wrap_receive(receive, scope=scope)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        scope = dict(scope)
        scope["headers"] = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"transfer-encoding", b"content-length")
        ] + [(b"content-length", str(len(body)).encode())]
        whole = [{"type": "http.request", "body": body, "more_body": False}]
        return await super().wrap_receive(
            self._insert_messages(receive, messages=whole), scope=scope
        )

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw:
            return None
        body = parse_json(raw)
        json_body.keep(scope, body)
        return body

    def _validate(self, body: t.Any) -> dict | None:
        if body is None:
            raise _empty_body()
        invalid = invalid_body(list(self._validator.iter_errors(body)))
        if invalid is not None:
            raise invalid
        return None


# -- What a JSON body is -----------------------------------------------------------------

# A JSON number longer than this is refused before Python converts it: no body of the
# contract holds one, and converting thousands of digits costs quadratic time (CPython
# refuses past 4300 digits with a ValueError).
MAX_NUMBER_CHARS = 100

# `; name=value` parameters of a Content-Type, the value a token or a quoted string.
_PARAMETER = re.compile(
    r"""
    ;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)   # the name, a token
    \s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)  # the value: a quoted string or up to the next ;
""",
    re.VERBOSE,
)


def check_json_content_type(scope: Scope, *, has_body: bool) -> None:
    """Refuse a JSON body that two readers could read two ways.

    Raises UNSUPPORTED_CONTENT_TYPE for a charset other than UTF-8 (any spelling RFC 9110
    allows of it is fine) and for a body without a Content-Type. (More than one Content-Type
    header never gets here: `im_api.json_body.OneContentType` refuses it.)
    """
    values = [value for name, value in scope["headers"] if name == b"content-type"]
    if not values:
        if has_body:
            raise ApiError(
                Error.UNSUPPORTED_CONTENT_TYPE,
                "Unsupported Content-Type: a JSON body needs Content-Type: application/json",
            )
        return
    header = values[0].decode("latin-1")
    for name, value in _PARAMETER.findall(header):
        if name.lower() != "charset":
            continue
        charset = value[1:-1] if value.startswith('"') else value.strip()
        if charset.lower() != "utf-8":
            raise ApiError(
                Error.UNSUPPORTED_CONTENT_TYPE,
                f"Unsupported Content-Type: JSON is UTF-8, not {charset[:40]!r}",
            )


class _NotJSON(ValueError):
    """A JSON text Python would read but the contract's JSON does not allow."""


def _one_value_per_key(pairs: list[tuple[str, t.Any]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _NotJSON(f"the key {twice[:64]!r} is given twice")
    return body


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NotJSON(f"a number of more than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _real(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NotJSON(f"a number of more than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotJSON("a number out of range")
    return value


def _not_a_number(text: str) -> t.NoReturn:
    raise _NotJSON(f"{text} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_one_value_per_key,
    parse_int=_integer,
    parse_float=_real,
    parse_constant=_not_a_number,
)


def parse_json(raw: bytes) -> t.Any:
    """The one reading of a JSON body; raises MALFORMED_BODY for anything but strict JSON in
    UTF-8 (no byte order mark)."""
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(Error.MALFORMED_BODY, "Malformed request body: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ApiError(Error.MALFORMED_BODY, f"Malformed request body: {error}") from None
    except _NotJSON as error:
        raise ApiError(Error.MALFORMED_BODY, f"Malformed request body: {error}") from None
    except RecursionError:
        # No body of the contract nests more than a few levels; Python's parser recurses.
        raise ApiError(Error.MALFORMED_BODY, "Malformed request body: nested too deeply") from None


BODY_VALIDATORS = MediaTypeDict(
    {
        "*/*json": JSONBodyValidator,
        "application/x-www-form-urlencoded": FormDataValidator,
        "multipart/form-data": MultipartUploadValidator,
    }
)
