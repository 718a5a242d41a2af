"""Request body validators that answer bad bodies in our envelope instead of a 500.

Connexion's own JSON validator lets a body that is not UTF-8 (or names an unknown charset)
escape as an exception, and words every failure as problem+json; these say MALFORMED_BODY
or INVALID_REQUEST. It also checks `format: email` only for an "@"; ours reads it as
RFC 5321 does, as other validators of the contract (schemathesis among them) do.
"""

from __future__ import annotations

import json
import re
import typing as t

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import FormDataValidator, JSONRequestBodyValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from im_api.errors import ApiError, Error
from im_api.uploads import MultipartUploadValidator

# Where the JSON validator leaves the body it parsed, in the ASGI scope: the object a JSON
# handler should receive (`im_api.speed` hands it over instead of parsing the body again).
PARSED_JSON = "im_api.parsed_json"

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
        closest = _closest_form(error)
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


def _closest_form(error: ValidationError) -> ValidationError | None:
    """When the body has no field that only one of the accepted forms lacks, the first
    error of that form: `{name, password, email}` for a registration is missing its
    `security_code`, not "matching no form"."""
    by_form: dict = {}
    for sub in error.context or []:
        by_form.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in by_form.values()
        if not any(sub.validator == "additionalProperties" for sub in errors)
    ]
    if len(fitting) == 1:
        return best_match(fitting[0])
    return None


def _invalid(error: ValidationError) -> ApiError:
    return ApiError(Error.INVALID_REQUEST, f"Invalid request: {describe(error)}")


class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return Draft4RequestValidator(self._schema, format_checker=FORMAT_CHECKER)

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Connexion takes a body without Content-Length for no body at all, so a chunked one
        (HTTP/1.1 `Transfer-Encoding: chunked`) was refused as missing: read it here, where
        the size limit still cuts it off as it streams in, and give it its length."""
        headers = Headers(scope=scope)
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
        try:
            body = json.loads(raw.decode(self._encoding))
        except (UnicodeDecodeError, LookupError):
            raise ApiError(Error.MALFORMED_BODY, "Malformed request body: not UTF-8 text") from None
        except json.JSONDecodeError as error:
            raise ApiError(Error.MALFORMED_BODY, f"Malformed request body: {error}") from None
        except RecursionError:
            # No body of the contract nests more than a few levels; Python's parser recurses.
            raise ApiError(
                Error.MALFORMED_BODY, "Malformed request body: nested too deeply"
            ) from None
        # UTF-8 text parses as Flask's get_json parses the same bytes; other charsets (read
        # as declared here, sniffed there) are left to Flask.
        if self._encoding.lower() in ("utf-8", "utf8"):
            scope[PARSED_JSON] = body
        return body

    def _validate(self, body: t.Any) -> dict | None:
        if body is None:
            raise ApiError(Error.INVALID_REQUEST, "Invalid request: the body must not be empty")
        error = best_match(self._validator.iter_errors(body))
        if error is not None:
            raise _invalid(error)
        return None


BODY_VALIDATORS = MediaTypeDict(
    {
        "*/*json": JSONBodyValidator,
        "application/x-www-form-urlencoded": FormDataValidator,
        "multipart/form-data": MultipartUploadValidator,
    }
)
