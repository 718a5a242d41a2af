"""Which field of a request broke which rule: the `errors` list of a 1001 envelope.

A form marks the fields a 1001 names, so each entry says where (`in`: body, query, path or
header; `field`: a JSON pointer into the body, or the parameter's name), which rule of the
contract (`rule`: the JSON Schema keyword, e.g. `minLength`, `required`, `type`), and a short
`message` built from the schema's own words: never from the value sent, which may be a
password.
"""

from __future__ import annotations

import typing as t

from jsonschema import ValidationError
from jsonschema.exceptions import best_match

from im_core.errors import field_error

# More entries than a form has fields helps nobody, and bounds the answer to a hostile body.
MAX_FIELD_ERRORS = 20


def pointer(path: t.Iterable[t.Any]) -> str:
    """The JSON pointer (RFC 6901) of a path into the body: `/members/2`, `` for the body."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


# One entry of the list (im_core.errors, where the models' own checks make theirs too).
entry = field_error


def _by_form(error: ValidationError) -> dict[int, list[ValidationError]]:
    """The errors of a `oneOf`/`anyOf`, by the index of the form each belongs to."""
    by_form: dict = {}
    for sub in error.context or []:
        by_form.setdefault(sub.relative_schema_path[0], []).append(sub)
    return by_form


def closest_form(error: ValidationError) -> ValidationError | None:
    """Of a `oneOf`/`anyOf` the body matches no form of, the form it was meant as, if one
    stands out: the only form whose fields it has no stray one of (`{name, password,
    security_code}` is a registration with an email, missing the `email`), or else the only
    one it lacks no field of (`{name, password}` with a short password is a registration
    without an email, whose password is too short). None when the body fits several forms
    as well, or none."""
    by_form = _by_form(error)
    for shape_rules in (("additionalProperties",), ("additionalProperties", "required")):
        fitting = [
            errors
            for errors in by_form.values()
            if not any(sub.validator in shape_rules and not sub.relative_path for sub in errors)
        ]
        if len(fitting) == 1:
            return best_match(fitting[0])
        if not fitting:
            return None
    return None


def _entries(error: ValidationError) -> list[dict]:
    """The entries for one error: for a `oneOf`/`anyOf`, those of the form `closest_form`
    picks, or else those every form has (a field all of them require), or else one entry
    for the value as a whole."""
    if error.validator not in ("oneOf", "anyOf"):
        return _entries_of(error)
    by_form = _by_form(error)
    chosen = closest_form(error)
    if chosen is not None:
        return [item for sub in by_form[chosen.relative_schema_path[0]] for item in _entries(sub)]
    per_form = [[item for sub in errors for item in _entries(sub)] for errors in by_form.values()]
    common = [item for item in per_form[0] if all(item in other for other in per_form[1:])]
    return common or _entries_of(error)


def _rule_message(error: ValidationError) -> str:
    value = error.validator_value
    return {
        "type": f"must be of type {value}",
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"must be at most {value} characters long",
        "pattern": f"must match the pattern {value}",
        "format": f"must be a valid {value}",
        "enum": f"must be one of {value}",
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "minItems": f"must have at least {value} items",
        "maxItems": f"must have at most {value} items",
        "uniqueItems": "must not hold the same item twice",
        "minProperties": f"must have at least {value} fields",
        "maxProperties": f"must have at most {value} fields",
        "oneOf": "does not match any of the accepted forms",
        "anyOf": "does not match any of the accepted forms",
        "not": "is not allowed here",
    }.get(str(error.validator), f"fails {error.validator} {value!r}")


def _entries_of(error: ValidationError) -> list[dict]:
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        return [
            entry("body", pointer([*path, name]), "required", "is required")
            for name in error.validator_value
            if name not in instance
        ]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        return [
            entry("body", pointer([*path, name]), "additionalProperties", "is not a known field")
            for name in instance
            if name not in known
        ]
    return [entry("body", pointer(path), str(error.validator), _rule_message(error))]


def body_errors(errors: t.Iterable[ValidationError]) -> list[dict]:
    """The `errors` list for what a JSON body broke, one entry per field and rule."""
    found: list[dict] = []
    for error in errors:
        for item in _entries(error):
            if item not in found:
                found.append(item)
    return found[:MAX_FIELD_ERRORS]


def parameter_error(where: str, name: str, error: ValidationError) -> dict:
    """The entry for a parameter whose value broke its schema."""
    return entry(where, name, str(error.validator), _rule_message(error))
