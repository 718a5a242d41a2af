"""The error table of the contract (`ErrorCode` in the spec) and the one exception type.

Code anywhere below the HTTP layer raises `ApiError(Error.SOMETHING)`; the handlers in
`im_api.envelope` turn it, and every other failure, into the `{code, info}` envelope.
"""

from __future__ import annotations

import enum

from im_core import request_info

# The contract's bound on `info` (`ApiError` in the spec). The server's own texts stay well
# below it; a longer one (Connexion's words can echo a header the client sent) is cut.
MAX_INFO = 1000


def field_error(where: str, field: str, rule: str, message: str) -> dict:
    """One entry of a 1001's `errors` (`FieldError` in the spec): where the field is (body,
    query, path, header), which (a JSON pointer into the body, or the parameter's name), the
    rule it broke, and what that rule asks."""
    return {"in": where, "field": field[:300], "rule": rule, "message": message}


class Error(enum.Enum):
    """(code, HTTP status, default info): one member per row of the spec's ErrorCode table."""

    INVALID_REQUEST = (1001, 400, "Invalid request")
    MALFORMED_BODY = (1002, 400, "Malformed request body")
    MISSING_TOKEN = (1003, 401, "Missing token")
    INVALID_TOKEN = (1004, 401, "Invalid or expired token")
    NOT_FOUND = (1005, 404, "Not found")
    METHOD_NOT_ALLOWED = (1006, 405, "Method not allowed")
    TOO_LARGE = (1007, 413, "Request body too large")
    UNSUPPORTED_CONTENT_TYPE = (1008, 415, "Unsupported Content-Type")
    TOO_MANY_ATTEMPTS = (1009, 429, "Too many attempts")
    INTERNAL = (1010, 500, "Internal server error")
    NOT_IMPLEMENTED = (1011, 501, "Not implemented yet")
    UNAVAILABLE = (1012, 503, "Service unavailable")
    SERVER_BUSY = (1013, 503, "Server busy, retry in {retry_after} s")

    USERNAME_DUPLICATE = (2001, 409, "Username duplicate")
    EMAIL_EXISTS = (2002, 409, "Email already exists")
    USERNAME_NOT_FOUND = (2003, 400, "Username not found")
    WRONG_PASSWORD = (2004, 400, "Wrong Password")
    VERIFY_EMAIL = (2005, 400, "Please verify your email")
    WRONG_CODE = (2006, 400, "Wrong verify code")
    CODE_EXPIRED = (2007, 400, "Verify code expired")
    CODE_USED = (2008, 400, "Verify code already used")
    CODE_TRIES_EXHAUSTED = (2009, 400, "Too many wrong codes, ask for a new one")

    GROUP_NOT_FOUND = (3001, 404, "Group not found")
    NOT_A_MEMBER = (3002, 403, "Not a member of this group")
    OWNER_ONLY = (3003, 403, "Only the group's owner can do this")
    ALREADY_A_MEMBER = (3004, 409, "Already a member")
    MEMBER_NOT_FOUND = (3005, 404, "Member not found")
    DIRECT_CHAT = (3006, 409, "A direct chat has no members to add or remove")
    ADMIN_ONLY = (3007, 403, "Only the group's owner and admins can do this")
    NOT_AN_ADMIN = (3008, 404, "Not an admin of this group")
    TOO_MANY_ADMINS = (3009, 409, "A group has at most {limit} admins")
    JOIN_REQUEST_NOT_FOUND = (3010, 404, "Join request not found")
    JOIN_REQUEST_PENDING = (3011, 409, "A request to add this user waits for an admin already")
    # 409 as 3009: the group's state refuses it, not the caller's role (the owner meets it too).
    GROUP_FULL = (3012, 409, "A group has at most {limit} members")

    MISSING_PART = (4001, 400, "Missing or error type of [{part}]")
    WRONG_MEDIA_TYPE = (4002, 415, "Invalid type of [{part}]")
    MEDIA_TOO_LARGE = (4003, 413, "[{part}] too large: the limit is {limit} bytes")
    BROKEN_IMAGE = (4004, 400, "Broken [{part}]: it cannot be decoded")
    TOO_MANY_PIXELS = (4005, 400, "[{part}] has too many pixels: the limit is {limit}")
    MEDIA_NOT_FOUND = (4006, 404, "Media not found")
    BAD_MEDIA_LINK = (4007, 403, "Invalid or expired media link")
    RANGE_NOT_SATISFIABLE = (4008, 416, "Range not satisfiable")
    TOO_MANY_UPLOADS = (
        4009,
        429,
        "Too many uploads at once: at most {limit}, retry in {retry_after} s",
    )
    INSUFFICIENT_STORAGE = (4010, 507, "Not enough free disk for uploads, try again later")
    MEDIA_STORE_UNAVAILABLE = (4015, 503, "The media store did not answer")

    INVALID_TEXT = (5001, 400, "Text must be 1 to 4000 characters, without NUL or lone surrogates")
    # A rule code, not 1001: the contract cannot say that two query parameters exclude each
    # other, so a request with both is schema-valid.
    PAGING_CONFLICT = (5002, 400, "Give after_seq or cursor, not both")
    READ_BEYOND_LAST = (5003, 400, "Beyond the last message: its seq is {last_seq}")
    MESSAGE_NOT_FOUND = (5004, 404, "Message not found")
    NOT_YOUR_MESSAGE = (5005, 403, "Only its sender may do this to a message")
    NOT_EDITABLE = (5006, 400, "Only text messages can be edited")
    RECALL_TOO_LATE = (5007, 403, "Too late to recall: the window is {window} s")
    RECALLED = (5008, 409, "The message was recalled")
    REPLY_NOT_FOUND = (5009, 400, "reply_to_seq names no message of this conversation")
    NOT_FORWARDABLE = (5010, 400, "Message {seq} cannot be forwarded (none, recalled or deleted)")
    FORWARD_SOURCE = (5011, 400, "from_group_id names no conversation of yours")

    # Sent in socket error frames (the socket stays open), never as an HTTP answer; 400 for
    # the table, as the frame is the client's mistake.
    BAD_FRAME = (6001, 400, "Malformed frame")  # info: "Malformed frame: <what>"
    UNKNOWN_FRAME_TYPE = (6002, 400, "Unknown frame type")
    ALREADY_AUTHENTICATED = (6003, 400, "Already authenticated")
    SYNC_UNDER_WAY = (6004, 400, "A sync is under way: send the next one after its ready")
    REPLAY_LIMIT = (
        6005,
        429,
        "Too many messages replayed, retry in {retry_after} s; page the rest with "
        "GET /groups/{{group_id}}/messages?after_seq=",
    )

    USER_NOT_FOUND = (7001, 404, "User not found")
    NOT_YOURSELF = (7002, 400, "Not with yourself")
    REQUEST_PENDING = (7003, 409, "Contact request already sent")
    ALREADY_CONTACTS = (7004, 409, "Already contacts")
    REQUEST_NOT_FOUND = (7005, 404, "Contact request not found")
    CONTACT_NOT_FOUND = (7006, 404, "Not a contact")
    # Neutral on purpose: it does not say "blocked" (see the spec's ErrorCode table).
    NOT_ACCEPTED = (7007, 403, "This user does not accept this from you")
    YOU_BLOCKED = (7008, 403, "You blocked this user: unblock them first")
    BLOCK_NOT_FOUND = (7009, 404, "Not blocked")
    # A rule code, not 1001: the contract cannot say that two parameters exclude each other.
    SEARCH_TERMS = (7010, 400, "Give name or prefix, one of them")
    CONTACTS_ONLY = (7011, 403, "Direct chats are between contacts: send a contact request first")
    REQUEST_NOT_YOURS = (
        7012,
        403,
        "Only the addressee answers a request, only its requester withdraws it",
    )

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def status(self) -> int:
        return self.value[1]


class ApiError(Exception):
    """An error the contract documents.

    `info` defaults to the table's text, formatted with `fields` (e.g. `part`, `limit`);
    `headers` are added to the response (e.g. `Retry-After`), `extra` to its body.
    """

    def __init__(
        self,
        error: Error,
        info: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
        **fields,
    ):
        self.error = error
        info = info if info is not None else error.value[2].format(**fields)
        self.info = info if len(info) <= MAX_INFO else info[: MAX_INFO - 3] + "..."
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.info)

    @property
    def status(self) -> int:
        return self.error.status

    def body(self) -> dict:
        """The envelope; while a request is served, with its `request_id`."""
        return {
            "code": self.error.code,
            "info": self.info,
            **self.extra,
            **request_info.envelope_fields(),
        }


def server_busy(retry_after: int) -> ApiError:
    """503 when every request thread stayed busy: the wait in `Retry-After`."""
    return ApiError(
        Error.SERVER_BUSY, headers={"Retry-After": str(retry_after)}, retry_after=retry_after
    )


def too_many_uploads(limit: int, retry_after: int) -> ApiError:
    """429 when the account has `limit` uploads going: the wait in `Retry-After` and the body."""
    return ApiError(
        Error.TOO_MANY_UPLOADS,
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
        limit=limit,
        retry_after=retry_after,
    )


def too_many_attempts(retry_after: int) -> ApiError:
    """429 with the wait in the `Retry-After` header and in the body."""
    retry_after = max(1, int(retry_after))
    return ApiError(
        Error.TOO_MANY_ATTEMPTS,
        f"Too many attempts, retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )
