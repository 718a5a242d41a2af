"""Reading the rate-limit header fields of draft-ietf-httpapi-ratelimit-headers (-11):
`RateLimit-Policy` (each policy's quota `q` and window `w`) and `RateLimit` (for one
policy, what is left `r` and the seconds `t` until more is), both Structured Field Lists
(RFC 9651) of Strings with parameters.

Parsed strictly, as a client library would, so that a malformed value fails the test that
reads it rather than passing a loose match.
"""

from __future__ import annotations

import re

import httpx

_STRING = r'"(?:[^"\\\x00-\x1f\x7f]|\\["\\])*"'
_KEY = r"[a-z*][a-z0-9_\-.*]*"
_VALUE = rf"-?\d{{1,15}}|{_STRING}|:[A-Za-z0-9+/=]*:|[A-Za-z*][!#$%&'*+\-.^_`|~:/\w]*|\?[01]"
_PARAMETER = re.compile(rf";[ ]*({_KEY})(?:=({_VALUE}))?")
_MEMBER = re.compile(rf"({_STRING})((?:;[ ]*{_KEY}(?:=(?:{_VALUE}))?)*)")


def parse_list(value: str) -> list[tuple[str, dict]]:
    """A List of String items with parameters: [(name, {key: value}), ...]; integers as
    int, the rest as their text. Raises AssertionError when `value` is not one."""
    items, rest = [], value.strip(" ")
    while True:
        match = _MEMBER.match(rest)
        assert match, f"not a Structured Field List of Strings: {value!r}"
        name = match.group(1)[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        parameters = {}
        for key, raw in _PARAMETER.findall(match.group(2)):
            parameters[key] = int(raw) if re.fullmatch(r"-?\d+", raw or "") else raw
        items.append((name, parameters))
        rest = rest[match.end() :].lstrip(" \t")
        if not rest:
            return items
        assert rest.startswith(","), f"not a Structured Field List: {value!r}"
        rest = rest[1:].lstrip(" \t")


def policies(response: httpx.Response) -> dict[str, dict]:
    """`RateLimit-Policy`: each policy's parameters by name; each has an integer quota `q`
    of at least 1 and window `w` of at least 1 second."""
    value = response.headers.get("RateLimit-Policy")
    assert value, f"no RateLimit-Policy on {response.status_code}: {dict(response.headers)}"
    found = dict(parse_list(value))
    for parameters in found.values():
        assert isinstance(parameters.get("q"), int) and parameters["q"] >= 1, value
        assert isinstance(parameters.get("w"), int) and parameters["w"] >= 1, value
    return found


def current(response: httpx.Response) -> tuple[str, int, int]:
    """`RateLimit`: the one policy it speaks of (listed in `RateLimit-Policy`), what is left
    of it (`r`) and the seconds until more is (`t`), both within the policy's bounds."""
    listed = policies(response)
    value = response.headers.get("RateLimit")
    assert value, f"no RateLimit on {response.status_code}: {dict(response.headers)}"
    items = parse_list(value)
    assert len(items) == 1, f"RateLimit names one policy, the closest to its limit: {value!r}"
    name, parameters = items[0]
    assert name in listed, f"RateLimit {value!r} names no policy of {listed}"
    left, reset = parameters.get("r"), parameters.get("t")
    assert isinstance(left, int) and 0 <= left < listed[name]["q"], value
    assert isinstance(reset, int) and 0 <= reset <= listed[name]["w"], value
    return name, left, reset


def spent(response: httpx.Response) -> str:
    """A 429's `RateLimit`: nothing left (`r=0`) of the policy it names, for as long as
    `Retry-After` says. The policy's name."""
    assert response.status_code == 429, response.text
    name, left, reset = current(response)
    assert left == 0, response.headers["RateLimit"]
    assert str(reset) == response.headers["Retry-After"], dict(response.headers)
    return name
