"""The rate-limit header fields of draft-ietf-httpapi-ratelimit-headers (-11) on the answers
of limited operations: `RateLimit-Policy` lists every limit the request was counted against
(quota `q` requests per window `w` seconds), `RateLimit` says, for the one closest to being
hit, what is left (`r`) and the seconds until more is (`t`).

The numbers are those the limits' own bookkeeping noted on the request (`request_info`,
from `models.throttle` and the login and code checks): the count that decided whether to
refuse, shared by every worker, not a guess of this process. Sent on successes and 429s
only, the answers the contract declares them on.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from im_core import request_info
from im_core.request_info import Limit

POLICY = b"ratelimit-policy"
CURRENT = b"ratelimit"


def closest(limits: list[Limit]) -> Limit:
    """The limit `RateLimit` speaks of: on a refusal, the refusing one with the longest wait
    (the one `Retry-After` gives); otherwise the one with the least left, the longest wait
    among equals."""
    refused = [limit for limit in limits if limit.refused]
    if refused:
        return max(refused, key=lambda limit: limit.reset)
    return min(limits, key=lambda limit: (limit.left, -limit.reset))


def fields(limits: list[Limit]) -> list[tuple[bytes, bytes]]:
    """The two header fields, as Structured Field Lists of Strings with parameters."""
    policy = ", ".join(f'"{limit.name}";q={limit.quota};w={limit.window}' for limit in limits)
    chosen = closest(limits)
    current = f'"{chosen.name}";r={chosen.left};t={chosen.reset}'
    return [(POLICY, policy.encode()), (CURRENT, current.encode())]


class RateLimitHeaders:
    """Adds the fields to a 2xx or 429 answer of a request that was counted against a limit.

    Inside `RequestIds`, which opens the request's `request_info`.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = request_info.current() if scope["type"] == "http" else None
        if info is None:
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            status = message.get("status", 0)
            declared = 200 <= status < 300 or status == 429
            if message["type"] == "http.response.start" and info.limits and declared:
                added = fields(list(info.limits.values()))
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_limits)
