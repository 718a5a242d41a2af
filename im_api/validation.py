"""Request body validators that answer bad bodies in our envelope instead of a 500.

Connexion's own JSON validator lets a body that is not UTF-8 (or names an unknown charset)
escape as an exception, and words every failure as problem+json; these say MALFORMED_BODY
or INVALID_REQUEST.
"""

from __future__ import annotations

import json
import typing as t

from connexion.datastructures import MediaTypeDict
from connexion.validators import FormDataValidator, JSONRequestBodyValidator
from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from starlette.types import Scope

from im_api.errors import ApiError, Error

# Messages that name only the schema's words; for any other rule, jsonschema's message would
# quote the value sent, which may be a password, so the rule is named instead.
_SAFE_MESSAGES = {"required", "additionalProperties", "enum"}


def describe(error: ValidationError) -> str:
    """One line saying where the body broke which rule, without echoing secrets."""
    where = "/".join(str(part) for part in error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        rule = "does not match any of the accepted forms"
    elif error.validator in _SAFE_MESSAGES:
        rule = error.message
    else:
        rule = f"fails {error.validator} {error.validator_value!r}"
    detail = f"'{where}' {rule}" if where else rule
    return detail if len(detail) <= 300 else detail[:300] + "..."


def _invalid(error: ValidationError) -> ApiError:
    return ApiError(Error.INVALID_REQUEST, f"Invalid request: {describe(error)}")


class JSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw:
            return None
        try:
            return json.loads(raw.decode(self._encoding))
        except (UnicodeDecodeError, LookupError):
            raise ApiError(Error.MALFORMED_BODY, "Malformed request body: not UTF-8 text") from None
        except json.JSONDecodeError as error:
            raise ApiError(Error.MALFORMED_BODY, f"Malformed request body: {error}") from None
        except RecursionError:
            # No body of the contract nests more than a few levels; Python's parser recurses.
            raise ApiError(
                Error.MALFORMED_BODY, "Malformed request body: nested too deeply"
            ) from None

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
    }
)
